package dev.llmc4j.bench;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The cpu-vs-pytorch chart: a JFreeChart SVG with a group per command, each bar labelled with its ms. */
class ComparisonChartTest {

    @Test
    void writesGroupedBarsWithTheirLabels(@TempDir Path dir) throws Exception {
        Path out = dir.resolve("chart.svg");
        ComparisonChart.main(new String[] {out.toString(), "GPT-2 d12", "step=1705,3157", "forward=488,490"});
        String svg = Files.readString(out);
        assertTrue(svg.startsWith("<?xml") || svg.startsWith("<svg"), svg.substring(0, 40));
        for (String text : new String[] {
            "GPT-2 d12",
            "step (ours/PyTorch 0.54)",
            "forward (ours/PyTorch 1.00)",
            "1,705 ms",
            "3,157 ms",
            ">ours<", // the legend's entries as text of their own, not inside a group's label
            ">PyTorch<"
        }) assertTrue(svg.contains(text), "missing " + text);
    }
}
