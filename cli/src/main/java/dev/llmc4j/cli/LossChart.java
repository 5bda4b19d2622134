package dev.llmc4j.cli;

import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.Trainer.LossPoint;
import dev.llmc4j.util.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Graphics2D;
import java.awt.RenderingHints;
import java.awt.image.BufferedImage;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Path;
import java.util.List;
import javax.imageio.ImageIO;

/** Draws the train and val loss curves of a run as a PNG (plain Java2D, headless). */
final class LossChart {
    private LossChart() {}

    private static final int WIDTH = 900, HEIGHT = 540, LEFT = 70, RIGHT = 30, TOP = 50, BOTTOM = 60;
    private static final Color TRAIN = new Color(0x1f77b4), VAL = new Color(0xd62728);

    /** With an output folder: loss.png of the run there, and a line saying where it and the log are. */
    static void writeIfOutput(Path outputDir, Trainer.Result result, String title) {
        if (outputDir == null) return;
        Path picture = outputDir.resolve("loss.png");
        write(picture, result.trainLosses(), result.valLosses(), title);
        System.out.println("loss curves: " + picture + ", log: " + outputDir.resolve("main.log"));
    }

    static void write(Path file, List<LossPoint> train, List<LossPoint> val, String title) {
        System.setProperty("java.awt.headless", "true");
        var image = new BufferedImage(WIDTH, HEIGHT, BufferedImage.TYPE_INT_RGB);
        Graphics2D g = image.createGraphics();
        g.setRenderingHint(RenderingHints.KEY_ANTIALIASING, RenderingHints.VALUE_ANTIALIAS_ON);
        g.setColor(Color.WHITE);
        g.fillRect(0, 0, WIDTH, HEIGHT);

        int maxStep = 1;
        float minLoss = Float.MAX_VALUE, maxLoss = -Float.MAX_VALUE;
        for (var points : List.of(train, val)) {
            for (var p : points) {
                if (!Float.isFinite(p.loss())) continue;
                maxStep = Math.max(maxStep, p.step());
                minLoss = Math.min(minLoss, p.loss());
                maxLoss = Math.max(maxLoss, p.loss());
            }
        }
        if (minLoss > maxLoss) { minLoss = 0; maxLoss = 1; }
        if (maxLoss - minLoss < 1e-3f) { maxLoss += 0.5f; minLoss -= 0.5f; }
        float pad = (maxLoss - minLoss) * 0.05f;
        float low = minLoss - pad, high = maxLoss + pad;
        int plotWidth = WIDTH - LEFT - RIGHT, plotHeight = HEIGHT - TOP - BOTTOM;

        // axes, grid and labels
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 12));
        for (int i = 0; i <= 5; i++) {
            int y = TOP + plotHeight - plotHeight * i / 5;
            g.setColor(new Color(0xe0e0e0));
            g.drawLine(LEFT, y, LEFT + plotWidth, y);
            g.setColor(Color.DARK_GRAY);
            g.drawString("%.2f".formatted(low + (high - low) * i / 5), 10, y + 4);
            int x = LEFT + plotWidth * i / 5;
            g.drawString(Integer.toString(maxStep * i / 5), x - 8, TOP + plotHeight + 18);
        }
        g.setColor(Color.BLACK);
        g.drawRect(LEFT, TOP, plotWidth, plotHeight);
        g.drawString("step", LEFT + plotWidth / 2 - 12, HEIGHT - 18);
        g.drawString("loss", 14, TOP - 12);
        g.setFont(new Font(Font.SANS_SERIF, Font.BOLD, 15));
        g.drawString(title, LEFT, 28);

        drawCurve(g, train, TRAIN, maxStep, low, high, plotWidth, plotHeight);
        drawCurve(g, val, VAL, maxStep, low, high, plotWidth, plotHeight);
        g.setFont(new Font(Font.SANS_SERIF, Font.PLAIN, 13));
        g.setColor(TRAIN);
        g.drawString("train loss", LEFT + plotWidth - 150, TOP + 20);
        g.setColor(VAL);
        g.drawString("val loss", LEFT + plotWidth - 150, TOP + 38);
        g.dispose();

        var png = new ByteArrayOutputStream();
        try {
            ImageIO.write(image, "png", png);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        AtomicFiles.write(file, png.toByteArray());
    }

    private static void drawCurve(Graphics2D g, List<LossPoint> points, Color color, int maxStep, float low, float high,
                                  int plotWidth, int plotHeight) {
        g.setColor(color);
        g.setStroke(new BasicStroke(2f));
        int previousX = -1, previousY = -1;
        for (var p : points) {
            if (!Float.isFinite(p.loss())) continue;
            int x = LEFT + (int) ((long) plotWidth * p.step() / maxStep);
            int y = TOP + plotHeight - (int) (plotHeight * (p.loss() - low) / (high - low));
            if (previousX >= 0) g.drawLine(previousX, previousY, x, y);
            g.fillOval(x - 2, y - 2, 5, 5);
            previousX = x;
            previousY = y;
        }
    }
}
