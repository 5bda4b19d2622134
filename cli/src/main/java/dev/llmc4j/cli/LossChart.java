package dev.llmc4j.cli;

import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.Trainer.LossPoint;
import dev.llmc4j.util.AtomicFiles;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Rectangle;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;
import org.jfree.svg.SVGGraphics2D;

/**
 * The train and val loss curves of a run, drawn by JFreeChart (round tick values, a legend, the y axis fitted to the
 * losses rather than to zero): loss.png for a quick look and loss.svg, the same chart as a vector drawing for pages.
 */
final class LossChart {
    private LossChart() {}

    private static final int WIDTH = 900, HEIGHT = 540;
    private static final Color TRAIN = new Color(0x1f77b4), VAL = new Color(0xd62728);

    /** With an output folder: loss.png and loss.svg of the run there, and a line saying where they and the log are. */
    static void writeIfOutput(Path outputDir, Trainer.Result result, String title) {
        if (outputDir == null) return;
        Path picture = outputDir.resolve("loss.png");
        write(picture, result.trainLosses(), result.valLosses(), title);
        System.out.println("loss curves: " + picture + " (and loss.svg), log: " + outputDir.resolve("main.log"));
    }

    /** Writes {@code file} (PNG) and, next to it, the same chart as SVG (file name with .svg), each atomically. */
    static void write(Path file, List<LossPoint> train, List<LossPoint> val, String title) {
        System.setProperty("java.awt.headless", "true");
        writePngAndSvg(file, chart(train, val, title), WIDTH, HEIGHT);
    }

    /** Any chart as {@code file} (PNG) and, next to it, as SVG (file name with .svg), each written atomically. */
    static void writePngAndSvg(Path file, JFreeChart chart, int width, int height) {
        var png = new ByteArrayOutputStream();
        try {
            ChartUtils.writeChartAsPNG(png, chart, width, height);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        AtomicFiles.write(file, png.toByteArray());
        var svg = new SVGGraphics2D(width, height);
        chart.draw(svg, new Rectangle(0, 0, width, height));
        String name = file.getFileName().toString().replaceFirst("\\.png$", "") + ".svg";
        AtomicFiles.write(file.resolveSibling(name), svg.getSVGDocument().getBytes(StandardCharsets.UTF_8));
    }

    /** The chart: step on x, loss on y, one series per curve; points that are not finite are left out. */
    static JFreeChart chart(List<LossPoint> train, List<LossPoint> val, String title) {
        var data = new XYSeriesCollection();
        data.addSeries(series("train loss", train));
        data.addSeries(series("val loss", val));
        JFreeChart chart = ChartFactory.createXYLineChart(
                title, "step", "loss", data, PlotOrientation.VERTICAL, true, false, false);
        chart.setBackgroundPaint(Color.WHITE);
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xdddddd));
        plot.setRangeGridlinePaint(new Color(0xdddddd));
        ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
        ((NumberAxis) plot.getDomainAxis()).setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        var renderer = new XYLineAndShapeRenderer(true, true);
        renderer.setSeriesPaint(0, TRAIN);
        renderer.setSeriesPaint(1, VAL);
        for (int s = 0; s < 2; s++) {
            renderer.setSeriesStroke(s, new BasicStroke(2f));
            renderer.setSeriesShape(s, new java.awt.geom.Ellipse2D.Double(-2.5, -2.5, 5, 5));
        }
        plot.setRenderer(renderer);
        return chart;
    }

    private static XYSeries series(String name, List<LossPoint> points) {
        var series = new XYSeries(name);
        for (var p : points) if (Float.isFinite(p.loss())) series.add(p.step(), p.loss());
        return series;
    }
}
