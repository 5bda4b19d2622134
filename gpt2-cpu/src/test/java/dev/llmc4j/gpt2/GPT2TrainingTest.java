package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The training loop's promises on a tiny GPT-2 (vocabulary 96) and synthetic token shards. */
class GPT2TrainingTest {
    static final GPT2Config TINY = new GPT2Config(32, 96, 128, 2, 2, 16);

    @TempDir
    Path dir;

    @Test
    void gradientAccumulationEqualsOneBigBatch() {
        int T = 8;
        int[] x = RandomTokens.of(4 * T, 96, 1), y = RandomTokens.of(4 * T, 96, 2);
        try (var big = GPT2.randomInit(TINY);
                var small = GPT2.randomInit(TINY)) {
            big.zeroGrad();
            big.forward(x, y, 4, T);
            big.backward(1);

            small.zeroGrad(); // two micro-batches of B=2, each contributing half
            for (int half = 0; half < 2; half++) {
                int[] xs = java.util.Arrays.copyOfRange(x, half * 2 * T, (half + 1) * 2 * T);
                int[] ys = java.util.Arrays.copyOfRange(y, half * 2 * T, (half + 1) * 2 * T);
                small.forward(xs, ys, 2, T);
                small.backward(2);
            }
            double diff = 0, norm = 0;
            for (long i = 0; i < TINY.numParameters(); i++) {
                double a = big.gradients().getAtIndex(ValueLayout.JAVA_FLOAT, i);
                double b = small.gradients().getAtIndex(ValueLayout.JAVA_FLOAT, i);
                diff += (a - b) * (a - b);
                norm += a * a;
            }
            assertTrue(Math.sqrt(diff / norm) < 1e-6, "relative difference " + Math.sqrt(diff / norm));
        }
    }

    private TrainingConfig config(Path out, int steps, boolean resume) {
        return new TrainingConfig(
                dir.resolve("train.bin").toString(),
                dir.resolve("val.bin").toString(),
                2,
                8,
                32,
                steps,
                1e-3f,
                2,
                0.1f,
                "cosine",
                0.1f,
                1.0f,
                3,
                2,
                0,
                0,
                false,
                out,
                3,
                0,
                0,
                resume,
                0,
                0,
                null,
                1,
                0);
    }

    private void writeShards() {
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, RandomTokens.of(2000, 96, 3));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, RandomTokens.of(300, 96, 4));
    }

    private static java.util.List<String> stepLines(String output) {
        // "step    4/6 | loss ... | norm ... | lr ... |" without the timing columns
        return output.lines()
                .filter(l -> l.startsWith("step "))
                .map(l -> l.substring(0, l.indexOf(" ms")).replaceAll("\\| [0-9.]+$", ""))
                .collect(Collectors.toCollection(ArrayList::new));
    }

    @Test
    void resumedRunReproducesTheUninterruptedLosses() throws Exception {
        writeShards();
        var uninterrupted = new ByteArrayOutputStream();
        try (var model = GPT2.randomInit(TINY)) {
            new Trainer(
                            model,
                            config(dir.resolve("a"), 6, false),
                            new PrintStream(uninterrupted, true, StandardCharsets.UTF_8))
                    .run();
        }
        // a second run stops after 3 steps (checkpoint at 3), then resumes to 6
        try (var model = GPT2.randomInit(TINY)) {
            new Trainer(
                            model,
                            config(dir.resolve("b"), 3, false),
                            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8))
                    .run();
        }
        assertTrue(Files.exists(dir.resolve("b/DONE_00000003")));
        var resumed = new ByteArrayOutputStream();
        try (var model = GPT2.fromCheckpoint(Trainer.resumeModelFile(dir.resolve("b")))) {
            new Trainer(
                            model,
                            config(dir.resolve("b"), 6, true),
                            new PrintStream(resumed, true, StandardCharsets.UTF_8))
                    .run();
        }
        var expected = stepLines(uninterrupted.toString(StandardCharsets.UTF_8));
        var found = stepLines(resumed.toString(StandardCharsets.UTF_8));
        assertEquals(6, expected.size());
        // the schedule depends on the total steps: the 3-step run differs, but steps 4..6 after resume must not
        assertEquals(
                expected.subList(3, 6).stream()
                        .map(l -> l.replaceAll("step +\\d+/\\d+", ""))
                        .toList(),
                found.stream().map(l -> l.replaceAll("step +\\d+/\\d+", "")).toList());
        // and bit for bit: the step-6 model and optimizer state of both runs are the same files
        assertEquals(
                -1, Files.mismatch(dir.resolve("a/model_00000006.bin"), dir.resolve("b/model_00000006.bin")), "model");
        assertEquals(
                -1,
                Files.mismatch(dir.resolve("a/state_00000006_00000.bin"), dir.resolve("b/state_00000006_00000.bin")),
                "state");
        // an fp32 CPU model has no master weights and no rounding rng: header[4] = 0, [20..23] = 0, and no master
        // block, so the file is byte for byte what it was before those fields were written
        var state = java.nio.ByteBuffer.wrap(Files.readAllBytes(dir.resolve("a/state_00000006_00000.bin")))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(0, state.getInt(4 * 4), "master weights flag");
        assertEquals(0, state.getLong(4 * 20), "rng_state");
        assertEquals(0, state.getLong(4 * 22), "rng_state_last_update");
        int samples =
                state.getInt(1024 + 8 * (int) TINY.numParameters() + 8 + 4 + 0); // after m, v, n_shards = 1, shard 0
        assertEquals(1024 + 8 * TINY.numParameters() + 8 + 4 + 8 + 4L * samples + 2520, state.capacity());
    }

    @Test
    void kvCacheGenerationEqualsFullRecomputation() {
        try (var model = GPT2.randomInit(TINY)) {
            int[] prompt = {5, 17, 42};
            int count = 12;
            var cached = model.generator().generate(prompt, count, new Sampler(new XorShift(1337), 1.0f, 0), t -> {});

            // llm.c's way: run the whole sequence again for every new token and sample from the last position
            var sampler = new Sampler(new XorShift(1337), 1.0f, 0);
            var sequence = new ArrayList<Integer>();
            for (int t : prompt) sequence.add(t);
            var inference = new GPT2Inference(model);
            for (int i = 0; i < count; i++) {
                int T = sequence.size();
                int[] tokens = sequence.stream().mapToInt(Integer::intValue).toArray();
                model.forward(tokens, null, 1, T);
                float[] logits = new float[TINY.vocabSize()];
                for (int v = 0; v < logits.length; v++)
                    logits[v] = model.logits()
                            .getAtIndex(ValueLayout.JAVA_FLOAT, (long) (T - 1) * TINY.paddedVocabSize() + v);
                // the cache's logits for this position agree with the recomputed ones
                inference.reset();
                float[] viaCache = null;
                for (int token : tokens) viaCache = inference.next(token);
                for (int v = 0; v < logits.length; v++)
                    assertEquals(logits[v], viaCache[v], 1e-5f * Math.max(1, Math.abs(logits[v])));
                sequence.add(sampler.sample(logits, 0, logits.length));
            }
            inference.close();
            int[] recomputed = sequence.subList(prompt.length, sequence.size()).stream()
                    .mapToInt(Integer::intValue)
                    .toArray();
            assertArrayEquals(recomputed, cached);
        }
    }

    @Test
    void promptLongerThanTheContextIsRefused() {
        try (var model = GPT2.randomInit(TINY)) {
            var error = assertThrows(
                    LlmcException.class,
                    () -> model.generator().generate(RandomTokens.of(30, 96, 5), 5, Sampler.llmc(), t -> {}));
            assertTrue(error.getMessage().contains("context length 32"), error.getMessage());
        }
    }

    @Test
    void tokenBeyondTheVocabularyIsRefused() {
        try (var model = GPT2.randomInit(TINY)) {
            int[] x = RandomTokens.of(8, 96, 6);
            x[3] = 96;
            var error = assertThrows(LlmcException.class, () -> model.forward(x, null, 1, 8));
            assertTrue(error.getMessage().contains("found 96"), error.getMessage());
        }
    }

    @Test
    void missingDataIsAClearError() {
        try (var model = GPT2.randomInit(TINY)) {
            var error = assertThrows(
                    LlmcException.class, () -> new Trainer(model, config(dir.resolve("c"), 3, false), System.out));
            assertTrue(error.getMessage().contains("train.bin"), error.getMessage());
        }
    }

    @Test
    void shardShorterThanOneBatchIsAClearError() {
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, RandomTokens.of(10, 96, 7));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, RandomTokens.of(300, 96, 8));
        try (var model = GPT2.randomInit(TINY)) {
            var error = assertThrows(
                    LlmcException.class, () -> new Trainer(model, config(dir.resolve("d"), 3, false), System.out));
            assertTrue(error.getMessage().contains("train.bin"), error.getMessage());
        }
    }
}
