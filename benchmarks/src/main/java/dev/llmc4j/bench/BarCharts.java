package dev.llmc4j.bench;

import java.awt.Color;
import java.awt.Font;
import java.awt.Rectangle;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.renderer.category.BarRenderer;
import org.jfree.chart.renderer.category.StandardBarPainter;
import org.jfree.data.category.CategoryDataset;
import org.jfree.svg.SVGGraphics2D;

/** The benchmarks' bar charts in one style (JFreeChart): white, flat bars, grey grid lines, blue then red series. */
final class BarCharts {
    private BarCharts() {}

    static final Color BLUE = new Color(0x1f77b4), RED = new Color(0xd62728);

    /** A bar chart of data in the house style, labels on the bars left to the caller (through {@link #bars}). */
    static JFreeChart barChart(
            String title,
            String valueAxis,
            CategoryDataset data,
            PlotOrientation orientation,
            boolean legend,
            int titleSize) {
        JFreeChart chart = ChartFactory.createBarChart(title, null, valueAxis, data, orientation, legend, false, false);
        chart.setBackgroundPaint(Color.WHITE);
        chart.getTitle().setFont(new Font("SansSerif", Font.BOLD, titleSize));
        CategoryPlot plot = chart.getCategoryPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(new Color(0xcccccc));
        plot.setOutlineVisible(false);
        var renderer = bars(chart);
        renderer.setBarPainter(new StandardBarPainter());
        renderer.setShadowVisible(false);
        renderer.setSeriesPaint(0, BLUE);
        renderer.setSeriesPaint(1, RED);
        return chart;
    }

    static BarRenderer bars(JFreeChart chart) {
        return (BarRenderer) chart.getCategoryPlot().getRenderer();
    }

    /** The chart drawn into an SVG document of width x height. */
    static String svg(JFreeChart chart, int width, int height) {
        var svg = new SVGGraphics2D(width, height);
        chart.draw(svg, new Rectangle(0, 0, width, height));
        return svg.getSVGDocument();
    }
}
