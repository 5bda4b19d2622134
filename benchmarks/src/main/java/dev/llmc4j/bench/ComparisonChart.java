package dev.llmc4j.bench;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.Locale;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.DefaultCategoryDataset;

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
        JFreeChart chart =
                BarCharts.barChart(title, "median ms (lower is better)", data, PlotOrientation.VERTICAL, true, 14);
        var renderer = BarCharts.bars(chart);
        renderer.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator(
                "{2} ms",
                new java.text.DecimalFormat("#,##0", java.text.DecimalFormatSymbols.getInstance(Locale.ROOT))));
        renderer.setDefaultItemLabelsVisible(true);
        chart.getCategoryPlot().getRangeAxis().setUpperMargin(0.15); // room for the labels above the bars
        return BarCharts.svg(chart, 640, 360);
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
