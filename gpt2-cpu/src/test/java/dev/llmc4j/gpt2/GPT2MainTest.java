package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.testing.RandomTokens;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GPT2.java's closing lines, the train_gpt2.c-style loop, run as they stand: a tiny model for three steps. */
class GPT2MainTest {
    // T = 64 is what main trains at, so the context must hold 64 positions
    static final GPT2Config TINY = new GPT2Config(64, 96, 128, 2, 2, 16);

    @TempDir
    Path dir;

    @Test
    void mainTrainsACheckpointAndPrintsEachStepsLoss() {
        Path model = dir.resolve("model.bin"), tokens = dir.resolve("train.bin");
        try (var gpt2 = GPT2.randomInit(TINY)) {
            gpt2.save(model, 3);
        }
        TokenShard.write(tokens, TokenShard.Kind.GPT2, RandomTokens.of(3000, 96, 5));

        var captured = new ByteArrayOutputStream();
        PrintStream stdout = System.out;
        System.setOut(new PrintStream(captured, true, StandardCharsets.UTF_8));
        try {
            GPT2.main(new String[] {model.toString(), tokens.toString(), "3"});
        } finally {
            System.setOut(stdout);
        }
        List<String> lines = captured.toString(StandardCharsets.UTF_8).lines().toList();
        assertTrue(lines.getFirst().contains("vectorized kernels"), lines.getFirst());
        List<String> steps = lines.stream().filter(l -> l.startsWith("step ")).toList();
        assertEquals(3, steps.size(), String.join("\n", lines));
        for (String step : steps) { // "step 1: train loss 4.56 (took 12.3 ms)": random tokens, about ln 96
            float loss = Float.parseFloat(step.replaceAll(".*train loss ([0-9.]+).*", "$1"));
            assertTrue(loss > 3.5f && loss < 5.5f, step);
        }
    }

    @Test
    void theLoopsLossesAreTheModelsLosses() {
        Path tokens = dir.resolve("train.bin");
        TokenShard.write(tokens, TokenShard.Kind.GPT2, RandomTokens.of(3000, 96, 6));
        var printed = new ByteArrayOutputStream();
        try (var a = GPT2.randomInit(TINY, GPT2Kernels.BASELINE);
                var b = GPT2.randomInit(TINY, GPT2Kernels.BASELINE)) {
            GPT2.train(a, tokens.toString(), 2, 16, 2, new PrintStream(printed, true, StandardCharsets.UTF_8));
            // the same two steps written out: llm.c's test settings, batches in the loader's (seeded) order
            try (var loader = new DataLoader(tokens.toString(), 2, 16, 0, 1, true, 96)) {
                var expected = new StringBuilder();
                for (int step = 1; step <= 2; step++) {
                    loader.nextBatch();
                    float loss = b.forward(loader.inputs(), loader.targets(), 2, 16);
                    b.zeroGrad();
                    b.backward();
                    b.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, step);
                    expected.append("step %d: train loss %f".formatted(step, loss))
                            .append('\n');
                }
                String actual = printed.toString(StandardCharsets.UTF_8)
                        .lines()
                        .filter(l -> l.startsWith("step "))
                        .map(l -> l.substring(0, l.indexOf(" (took")))
                        .reduce("", (x, y) -> x + y + "\n");
                assertEquals(expected.toString(), actual);
            }
        }
    }
}
