package dev.llmc4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayInputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The ladder's machinery on a tiny GPT-2 and one step per rung: what it prints and writes, never how fast. */
class SpeedLadderTest {

    @Test
    void everyRungRunsInItsOwnJvmAndTheTableAddsUp(@TempDir Path dir) throws Exception {
        int B = 1, T = 8;
        // two rungs of the real list (plain loops and Vector API, one thread each) and one with recompute
        var rungs = List.of(SpeedLadder.RUNGS.get(0), SpeedLadder.RUNGS.get(2), SpeedLadder.RUNGS.get(5));
        var results = SpeedLadder.climb(rungs, "2,2,32", B, T, 2, 0, true);
        assertEquals(3, results.size());
        for (var r : results) {
            assertTrue(r.stepMs() > 0, r.rung().name());
            assertEquals(B * T / (r.stepMs() / 1000), r.tokensPerSecond(B, T), 1e-9);
        }
        // the rung's recompute level reached the model in the child JVM: -r 2 keeps fewer activations than -r 0
        assertTrue(results.get(2).activationFloats() < results.get(0).activationFloats(), "-r 2 vs -r 0");
        assertEquals(results.get(0).activationFloats(), results.get(1).activationFloats(), "same -r, same buffers");

        String table = SpeedLadder.table(results, B, T);
        System.out.print(table);
        var lines = table.lines().toList();
        assertEquals(4, lines.size(), "a header and one line per rung");
        assertTrue(lines.get(1).startsWith("plain loops, 1 thread"), lines.get(1));
        assertTrue(lines.get(1)
                .trim()
                .endsWith(String.format("%.1f", results.get(0).activationFloats() * 4 / 1048576.0)));
        assertTrue(lines.get(1).contains(" 1.00x "), "the first rung is 1.00x itself");
        assertEquals(
                SpeedLadder.speedup(results.get(0), results.get(2)),
                String.format(
                        java.util.Locale.ROOT,
                        "%.2fx",
                        results.get(0).stepMs() / results.get(2).stepMs()));

        String adoc = SpeedLadder.asciidocTable(results, B, T);
        assertTrue(adoc.startsWith("[cols="), adoc);
        assertEquals(7, adoc.lines().count(), "[cols], |===, the header, 3 rows, |===");

        String svg = SpeedLadder.svgChart(results, "tiny ladder", B, T);
        var parser = DocumentBuilderFactory.newInstance();
        // JFreeSVG writes a DOCTYPE naming the SVG 1.1 DTD: well-formedness needs no DTD, and no network
        parser.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        var document =
                parser.newDocumentBuilder().parse(new ByteArrayInputStream(svg.getBytes(StandardCharsets.UTF_8)));
        assertEquals("svg", document.getDocumentElement().getTagName());
        for (var r : rungs) assertTrue(svg.contains(r.name()), "the chart names " + r.name());

        // the command-line entry writes both files
        Path table2 = dir.resolve("ladder.adoc"), chart = dir.resolve("ladder.svg");
        assertTrue(Files.notExists(table2));
        SpeedLadder.writeOutputs(results, "2,2,32", B, T, "a tiny GPT-2", table2, chart);
        String written = Files.readString(table2);
        assertTrue(written.contains("Measured: a tiny GPT-2, "), written);
        assertTrue(written.endsWith(adoc), "the setup line, then the table");
        assertTrue(Files.readString(chart).contains("GPT-2 2,2,32 training step"), "the chart's title");

        // one rung after another: the same machinery, one JVM at a time
        var oneByOne = SpeedLadder.climb(rungs.subList(0, 1), "2,2,32", B, T, 1, 0, false);
        assertEquals(results.get(0).activationFloats(), oneByOne.get(0).activationFloats());
    }

    @Test
    void aBadModelIsOneClearLine() {
        var e = assertThrows(LlmcException.class, () -> SpeedLadder.model("2,2"));
        assertEquals("model: expected d6, d12, ... or L,NH,C, found 2,2", e.getMessage());
        assertThrows(LlmcException.class, () -> SpeedLadder.model("d7"));
        assertEquals(12, SpeedLadder.model("d12").numLayers());
        assertEquals(64, SpeedLadder.model("2, 2, 64").channels());
    }
}
