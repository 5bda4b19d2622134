package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cli.AblateCommand.Curves;
import dev.llmc4j.cli.AblateCommand.Variant;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.Ablation;
import dev.llmc4j.train.Trainer.LossPoint;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import javax.imageio.ImageIO;
import javax.xml.parsers.DocumentBuilderFactory;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code ./llmc ablate} end to end on a tiny setting (two variants, three steps of a one-layer model, on token
 * shards written here), and its CSVs from hand-made curves, a diverged run among them.
 */
class AblateCommandTest {
    @TempDir
    Path folder;

    /** tiny_shakespeare_*.bin shards of a repeating token pattern: what --data points at once prepared. */
    private Path data() {
        Path data = folder.resolve("data");
        var tokens = new int[4096];
        for (int i = 0; i < tokens.length; i++) tokens[i] = (i * 7919) % 997;
        TokenShard.write(data.resolve("tiny_shakespeare_train.bin"), TokenShard.Kind.GPT2, tokens);
        TokenShard.write(data.resolve("tiny_shakespeare_val.bin"), TokenShard.Kind.GPT2, Arrays.copyOf(tokens, 512));
        return data;
    }

    @Test
    void trainsEachVariantAndWritesTheCurvesTheTableAndTheChart() throws Exception {
        Path out = folder.resolve("out");
        var run = LlmcRun.of(
                "ablate",
                "--data",
                data().toString(),
                "-o",
                out.toString(),
                "--variants",
                "full,no-residual",
                "--layers",
                "1",
                "--heads",
                "2",
                "--channels",
                "16",
                "-b",
                "2",
                "-t",
                "16",
                "-x",
                "3",
                "-u",
                "1",
                "-v",
                "2",
                "-m",
                "1");
        assertEquals(0, run.exitCode(), run.err() + run.out());
        assertTrue(run.out().contains("already prepared in"), run.out());
        assertTrue(run.out().contains("== no-residual: " + Ablation.NO_RESIDUAL.description()), run.out());

        // steps 0..3 per variant: val at 0, 2 and 3 (the last), train at 1..3
        var rows = Files.readAllLines(out.resolve("ablations.csv"));
        assertEquals("variant,step,train_loss,val_loss", rows.getFirst());
        assertEquals(1 + 2 * 4, rows.size(), String.join("\n", rows));
        assertTrue(rows.get(1).matches("full,0,,\\d+\\.\\d{4}"), rows.get(1));
        assertTrue(rows.get(2).matches("full,1,\\d+\\.\\d{4},"), rows.get(2));
        assertTrue(rows.get(4).matches("full,3,\\d+\\.\\d{4},\\d+\\.\\d{4}"), rows.get(4));
        assertTrue(rows.get(8).startsWith("no-residual,3,"), rows.get(8));

        var summary = Files.readAllLines(out.resolve("ablations-summary.csv"));
        assertEquals(3, summary.size(), String.join("\n", summary));
        assertTrue(summary.get(1).matches("full,\"[^\"]+\",\\d+\\.\\d{3},,\\d+\\.\\d{3}"), summary.get(1));
        assertTrue(
                summary.get(2).matches("no-residual,\"[^\"]+\",\\d+\\.\\d{3},[+-]\\d+\\.\\d{3},\\d+\\.\\d{3}"),
                summary.get(2));

        byte[] png = Files.readAllBytes(out.resolve("ablations.png"));
        assertArrayEquals(new byte[] {(byte) 0x89, 'P', 'N', 'G'}, Arrays.copyOf(png, 4));
        assertEquals(
                AblationChart.WIDTH,
                ImageIO.read(out.resolve("ablations.png").toFile()).getWidth());
        var factory = DocumentBuilderFactory.newInstance();
        factory.setFeature("http://apache.org/xml/features/nonvalidating/load-external-dtd", false);
        factory.newDocumentBuilder().parse(out.resolve("ablations.svg").toFile()); // well-formed
        String svg = Files.readString(out.resolve("ablations.svg"));
        // (the y axes' labels are drawn rotated, as outlines rather than text)
        for (String label : new String[] {"full", "no-residual", "one piece taken out", "step"})
            assertTrue(svg.contains(label), "the SVG shows \"" + label + "\"");
    }

    @Test
    void badVariantsAreOneLineUsageErrors() {
        var unknown = LlmcRun.of("ablate", "--variants", "full,no-attention");
        assertEquals(2, unknown.exitCode());
        assertTrue(
                unknown.err()
                        .startsWith("error: --variants: expected full or one of " + Ablation.labels()
                                + ", found no-attention"),
                unknown.err());
        var twice = LlmcRun.of("ablate", "--variants", "relu,relu");
        assertEquals(2, twice.exitCode());
        assertTrue(twice.err().startsWith("error: --variants: relu is listed twice"), twice.err());
        var shape = LlmcRun.of("ablate", "--heads", "3");
        assertEquals(2, shape.exitCode());
        assertTrue(shape.err().contains("must be a multiple of heads (3)"), shape.err());
    }

    @Test
    void theHelpNamesEveryVariantAndTheDefaultIsAllOfThem() {
        var help = LlmcRun.of("ablate", "--help");
        assertEquals(0, help.exitCode());
        String text = help.out().replaceAll("\\s+", " ");
        for (var ablation : Ablation.values()) assertTrue(text.contains(ablation.label()), ablation.label());
        var all = new AblateCommand().variants();
        assertEquals(1 + Ablation.values().length, all.size());
        assertEquals(AblateCommand.FULL, all.getFirst().label());
    }

    @Test
    void aDivergedRunKeepsItsCurveAndShowsAsDivergedInTheTable() {
        var full = new Curves(
                Variant.of("full"),
                List.of(new LossPoint(1, 10.5f), new LossPoint(2, 9.5f)),
                List.of(new LossPoint(0, 10.8f), new LossPoint(2, 9.25f)),
                null,
                1);
        var diverged = new Curves(
                Variant.of("no-layernorm"),
                List.of(new LossPoint(1, 10.5f), new LossPoint(2, Float.NaN)),
                List.of(new LossPoint(0, 10.8f)),
                "diverged at step 2",
                1);
        assertEquals(10.0f, full.trainMean(2));
        String curves = AblateCommand.curvesCsv(List.of(full, diverged));
        assertTrue(curves.contains("full,2,9.5000,9.2500\n"), curves);
        assertTrue(curves.contains("no-layernorm,2,NaN,\n"), curves);
        String summary = AblateCommand.summaryCsv(List.of(full, diverged));
        assertTrue(summary.contains("\nfull,\"nothing: llm.c's GPT-2 and trainer\",9.250,,10.000\n"), summary);
        assertTrue(summary.contains(",diverged at step 2,,"), summary);
        // NaN points are left out, not drawn: the diverged run keeps 1 train and 1 val point
        var panels = ((org.jfree.chart.plot.CombinedDomainXYPlot)
                        AblationChart.chart(List.of(full, diverged), "t", "s").getPlot())
                .getSubplots();
        var trainSeries = (org.jfree.data.xy.XYSeriesCollection) panels.get(0).getDataset();
        var valSeries = (org.jfree.data.xy.XYSeriesCollection) panels.get(1).getDataset();
        assertEquals(1, trainSeries.getSeries(1).getItemCount());
        assertEquals(1, valSeries.getSeries(1).getItemCount());
    }
}
