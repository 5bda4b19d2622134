package dev.llmc4j.bench;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.awt.Color;
import java.awt.Font;
import java.awt.Rectangle;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.data.category.DefaultCategoryDataset;
import org.jfree.svg.SVGGraphics2D;

/**
 * The chart of benchmarks/scripts/cpu-vs-pytorch.sh (with BENCH_SVG): median ms of ours and of PyTorch for each
 * measured command, grouped bars drawn by JFreeChart, written atomically as SVG.
 *
 * <pre>
 *   ComparisonChart OUT.svg "TITLE" COMMAND=OURS_MS,PYTORCH_MS ...      e.g. step=1705,3157 forward=488,490
 * </pre>
 */
public final class ComparisonChart {
    private ComparisonChart() {}

    /** The SVG document: one group per command, a bar for ours and one for PyTorch, each labelled with its ms. */
    public static String svg(String title, String[] commands, double[] ours, double[] pytorch) {
        var data = new DefaultCategoryDataset();
        for (int i = 0; i < commands.length; i++) {
            String group = String.format(Locale.ROOT, "%s (ours/PyTorch %.2f)", commands[i], ours[i] / pytorch[i]);
            data.addValue(ours[i], "ours", group);
            data.addValue(pytorch[i], "PyTorch", group);
        }
        JFreeChart chart = ChartFactory.createBarChart(
                title, null, "median ms (lower is better)", data, PlotOrientation.VERTICAL, true, false, false);
        chart.setBackgroundPaint(Color.WHITE);
        chart.getTitle().setFont(new Font("SansSerif", Font.BOLD, 14));
        CategoryPlot plot = chart.getCategoryPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xcccccc));
        plot.setOutlineVisible(false);
        var renderer = (BarRenderer) plot.getRenderer();
        renderer.setBarPainter(new StandardBarPainter());
        renderer.setShadowVisible(false);
        renderer.setSeriesPaint(0, new Color(0x1f77b4));
        renderer.setSeriesPaint(1, new Color(0xd62728));
        renderer.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator(
                "{2} ms",
                new java.text.DecimalFormat("#,##0", java.text.DecimalFormatSymbols.getInstance(Locale.ROOT))));
        renderer.setDefaultItemLabelsVisible(true);
        plot.getRangeAxis().setUpperMargin(0.15); // room for the labels above the bars
        int width = 640, height = 360;
        var svg = new SVGGraphics2D(width, height);
        chart.draw(svg, new Rectangle(0, 0, width, height));
        return svg.getSVGDocument();
    }

    public static void main(String[] args) throws IOException {
        if (args.length < 3) {
            System.err.println("usage: ComparisonChart OUT.svg TITLE COMMAND=OURS_MS,PYTORCH_MS ...");
            System.exit(2);
        }
        int n = args.length - 2;
        String[] commands = new String[n];
        double[] ours = new double[n], pytorch = new double[n];
        for (int i = 0; i < n; i++) {
            String[] parts = args[i + 2].split("[=,]");
            if (parts.length != 3)
                throw new LlmcException(
                        "argument " + (i + 3) + ": expected COMMAND=OURS_MS,PYTORCH_MS, found " + args[i + 2]);
            commands[i] = parts[0];
            ours[i] = Double.parseDouble(parts[1]);
            pytorch[i] = Double.parseDouble(parts[2]);
        }
        AtomicFiles.write(
                Path.of(args[0]), svg(args[1], commands, ours, pytorch).getBytes(StandardCharsets.UTF_8));
        System.out.println("chart: " + args[0]);
    }
}
