package dev.llmc4j.cli;

import dev.llmc4j.cli.AblateCommand.Curves;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.CombinedDomainXYPlot;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.chart.ui.RectangleEdge;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The ablation study's chart, drawn by JFreeChart: above, each variant's train loss (a running mean, the raw losses
 * of a small batch being noisy); below, its val loss; one colour per variant, the full model in black. The y axes
 * leave out the first steps' fall from ln(50257) ≈ 10.8, where every variant looks the same, to show the gaps.
 */
final class AblationChart {
    private AblationChart() {}

    static final int WIDTH = 1000, HEIGHT = 820;

    // the full model black, the others a colour-blind-safe palette (Okabe and Ito's), then grey shades
    private static final Color[] COLORS = {
        new Color(0xE69F00),
        new Color(0x56B4E9),
        new Color(0x009E73),
        new Color(0xD55E00),
        new Color(0x0072B2),
        new Color(0xCC79A7),
        new Color(0xB8A800),
        new Color(0x999999),
        new Color(0x666666)
    };

    /** Writes {@code png} and the same chart as SVG next to it, each atomically. */
    static void write(Path png, List<Curves> results, String title, String subtitle) {
        System.setProperty("java.awt.headless", "true");
        LossChart.writePngAndSvg(png, chart(results, title, subtitle), WIDTH, HEIGHT);
    }

    static JFreeChart chart(List<Curves> results, String title, String subtitle) {
        var train = new XYSeriesCollection();
        var val = new XYSeriesCollection();
        int lastStep = 1;
        for (var curves : results) {
            var trainSeries = new XYSeries(curves.variant().label());
            var points = curves.train();
            for (int i = 0; i < points.size(); i++) {
                float mean = AblateCommand.Curves.meanEndingAt(points, i); // one window per point: linear, not O(n²)
                if (Float.isFinite(mean)) trainSeries.add(points.get(i).step(), mean);
                lastStep = Math.max(lastStep, points.get(i).step());
            }
            train.addSeries(trainSeries);
            var valSeries = new XYSeries(curves.variant().label());
            for (var point : curves.val()) if (Float.isFinite(point.loss())) valSeries.add(point.step(), point.loss());
            val.addSeries(valSeries);
        }
        var steps = new NumberAxis("step");
        steps.setStandardTickUnits(NumberAxis.createIntegerTickUnits());
        steps.setRange(0, lastStep);
        var plot = new CombinedDomainXYPlot(steps);
        plot.setGap(12);
        int skip = Math.max(1, lastStep / 10); // the y range: from the tenth of the run on
        String trainLabel = "train loss (mean of last %d steps)".formatted(AblateCommand.TRAIN_WINDOW);
        plot.add(subplot(train, trainLabel, skip, false), 1);
        plot.add(subplot(val, "val loss", skip, true), 1);
        var chart = new JFreeChart(title, new Font(Font.SANS_SERIF, Font.BOLD, 16), plot, true);
        chart.addSubtitle(new TextTitle(subtitle, new Font(Font.SANS_SERIF, Font.PLAIN, 12)));
        chart.getLegend().setPosition(RectangleEdge.BOTTOM);
        chart.setBackgroundPaint(Color.WHITE);
        return chart;
    }

    /** One panel; the val panel marks its points, the train panel alone feeds the legend (shared by both). */
    private static XYPlot subplot(XYSeriesCollection data, String label, int fromStep, boolean val) {
        var axis = new NumberAxis(label);
        axis.setAutoRangeIncludesZero(false);
        double low = Double.POSITIVE_INFINITY, high = Double.NEGATIVE_INFINITY;
        for (int s = 0; s < data.getSeriesCount(); s++) {
            var series = data.getSeries(s);
            for (int i = 0; i < series.getItemCount(); i++) {
                if (series.getX(i).doubleValue() < fromStep) continue;
                low = Math.min(low, series.getY(i).doubleValue());
                high = Math.max(high, series.getY(i).doubleValue());
            }
        }
        if (low < high) {
            double margin = 0.05 * (high - low);
            axis.setRange(low - margin, high + margin);
        }
        var renderer = new XYLineAndShapeRenderer(true, false);
        for (int s = 0, other = 0; s < data.getSeriesCount(); s++) {
            boolean full = data.getSeries(s).getKey().equals(AblateCommand.FULL);
            renderer.setSeriesPaint(s, full ? Color.BLACK : COLORS[other++ % COLORS.length]);
            renderer.setSeriesStroke(s, new BasicStroke(full ? 2.8f : 1.8f));
            renderer.setSeriesShapesVisible(s, val);
            renderer.setSeriesVisibleInLegend(s, !val);
        }
        var plot = new XYPlot(data, null, axis, renderer);
        plot.setBackgroundPaint(Color.WHITE);
        plot.setDomainGridlinePaint(new Color(0xdddddd));
        plot.setRangeGridlinePaint(new Color(0xdddddd));
        return plot;
    }
}
