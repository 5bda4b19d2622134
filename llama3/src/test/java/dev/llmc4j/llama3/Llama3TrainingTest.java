package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A tiny Llama 3 (vocabulary 96) trains through the shared Trainer on synthetic uint32 shards, and resumes exactly. */
class Llama3TrainingTest {
    static final Llama3Config TINY = new Llama3Config(32, 96, 2, 4, 2, 32, 1.0f, 16, 1e-5f, 500000f, true, 3, 1);

    @TempDir
    Path dir;

    @Test
    void gradientAccumulationEqualsOneBigBatch() {
        int T = 8;
        int[] x = RandomTokens.of(4 * T, 96, 1), y = RandomTokens.of(4 * T, 96, 2);
        try (var big = Llama3.randomInit(TINY, 42);
                var small = Llama3.randomInit(TINY, 42)) {
            big.zeroGrad();
            big.forward(x, y, 4, T);
            big.backward(1);

            small.zeroGrad(); // two micro-batches of B=2, each contributing half
            for (int half = 0; half < 2; half++) {
                small.forward(
                        Arrays.copyOfRange(x, half * 2 * T, (half + 1) * 2 * T),
                        Arrays.copyOfRange(y, half * 2 * T, (half + 1) * 2 * T),
                        2,
                        T);
                small.backward(2);
            }
            double diff = 0, norm = 0;
            for (long i = 0; i < TINY.numParameters(); i++) {
                double a = Floats.get(big.gradients(), i), b = Floats.get(small.gradients(), i);
                diff += (a - b) * (a - b);
                norm += a * a;
            }
            assertTrue(Math.sqrt(diff / norm) < 1e-6, "relative difference " + Math.sqrt(diff / norm));
        }
    }

    @Test
    void weightDecayOnlyTouchesTheMatrices() {
        try (var model = Llama3.randomInit(TINY, 42)) {
            model.zeroGrad(); // zero gradients: AdamW moves a parameter only through weight decay
            float lnfBefore = Floats.get(model.params.lnfw(), 0), wteBefore = Floats.get(model.params.wte(), 0);
            model.update(1e-2f, 0.9f, 0.95f, 1e-8f, 0.5f, 1.0f, 1);
            assertEquals(lnfBefore, Floats.get(model.params.lnfw(), 0)); // 1-D RMSNorm weight: no decay
            assertEquals(wteBefore * (1 - 1e-2f * 0.5f), Floats.get(model.params.wte(), 0), 1e-9f);
        }
    }

    private TrainingConfig config(Path out, int steps, boolean resume) {
        // B=2, T=8, total batch 32 tokens (2 micro-steps), lr 1e-3 cosine with 2 warmup steps to 10%, decay 0.1,
        // val every 3 steps over 2 batches, a 4-token sample every 3 steps, a checkpoint every 3 steps
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
                3,
                4,
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

    private static final Trainer.SampleText IDS_FROM_ZERO = new Trainer.SampleText(0, null);

    private void writeShards() {
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.LLAMA3, RandomTokens.of(2000, 96, 3));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.LLAMA3, RandomTokens.of(300, 96, 4));
    }

    private static List<String> stepLines(String output) {
        // "step    4/6 | loss ... | norm ... | lr ... |" without the timing columns
        return output.lines()
                .filter(l -> l.startsWith("step "))
                .map(l -> l.substring(0, l.indexOf(" ms"))
                        .replaceAll("\\| [0-9.]+$", "")
                        .replaceAll("step +\\d+/\\d+", ""))
                .collect(Collectors.toCollection(ArrayList::new));
    }

    private static String run(Llama3 model, TrainingConfig config) {
        var out = new ByteArrayOutputStream();
        new Trainer(model, config, new PrintStream(out, true, StandardCharsets.UTF_8), IDS_FROM_ZERO).run();
        return out.toString(StandardCharsets.UTF_8);
    }

    @Test
    void trainsThroughTheTrainerAndResumesExactly() throws Exception {
        writeShards();
        String uninterrupted;
        try (var model = Llama3.randomInit(TINY, 42)) {
            uninterrupted = run(model, config(dir.resolve("a"), 6, false));
        }
        assertEquals(6, stepLines(uninterrupted).size(), uninterrupted);
        assertTrue(uninterrupted.contains("val loss") && uninterrupted.contains("generating:"), uninterrupted);
        assertTrue(Files.exists(dir.resolve("a/model_00000006.bin"))
                && Files.exists(dir.resolve("a/state_00000006_00000.bin")));
        try (var checkpoint = Llama3Checkpoint.read(dir.resolve("a/model_00000006.bin"))) {
            assertEquals(TINY, checkpoint.config()); // the checkpoint is a llama3-branch file of the same shape
        }

        // a second run stops after 3 steps (checkpoint at 3), then resumes to 6
        try (var model = Llama3.randomInit(TINY, 42)) {
            run(model, config(dir.resolve("b"), 3, false));
        }
        assertTrue(Files.exists(dir.resolve("b/DONE_00000003")));
        String resumed;
        try (var model = Llama3.fromCheckpoint(Trainer.resumeModelFile(dir.resolve("b")))) {
            resumed = run(model, config(dir.resolve("b"), 6, true));
        }
        assertTrue(resumed.contains("resumed from"), resumed);
        // the schedule depends on the total steps: the 3-step run differs, but steps 4..6 after resume must not
        assertEquals(stepLines(uninterrupted).subList(3, 6), stepLines(resumed));
    }

    @Test
    void overfitsOneBatch() {
        writeShards();
        // -a 1: one val batch over and over, constant lr 1e-2, no warmup, no decay: the loss must fall well below ln 96
        var config = new TrainingConfig(
                dir.resolve("train.bin").toString(),
                dir.resolve("val.bin").toString(),
                2,
                8,
                -1,
                12,
                1e-2f,
                0,
                1.0f,
                "constant",
                0f,
                1.0f,
                100,
                1,
                0,
                0,
                true,
                null,
                0,
                0,
                0,
                false,
                0,
                0,
                null,
                1,
                0);
        try (var model = Llama3.randomInit(TINY, 42)) {
            var out = new ByteArrayOutputStream();
            var result =
                    new Trainer(model, config, new PrintStream(out, true, StandardCharsets.UTF_8), IDS_FROM_ZERO).run();
            var losses = result.trainLosses();
            assertEquals(12, losses.size());
            assertTrue(losses.get(11).loss() < 0.5f * losses.get(0).loss(), "losses " + losses);
        }
    }

    @Test
    void aSampleStartTokenOutsideTheVocabularyIsAClearError() {
        writeShards();
        try (var model = Llama3.randomInit(TINY, 42)) {
            // without a Llama 3 start token the trainer would start samples from GPT-2's EOT, 50256
            var error = assertThrows(
                    LlmcException.class, () -> new Trainer(model, config(dir.resolve("c"), 3, false), System.out));
            assertTrue(error.getMessage().contains("50256"), error.getMessage());
        }
    }
}
