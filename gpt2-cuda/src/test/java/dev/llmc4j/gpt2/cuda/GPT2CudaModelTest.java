package dev.llmc4j.gpt2.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** GPT2CudaModel, the Trainer's view of the GPU model: checkpoints, moments, generation, resume. */
class GPT2CudaModelTest {
    // head size 64 (flash-capable), ragged vocabulary
    static final GPT2Config SMALL = new GPT2Config(64, 250, 256, 2, 2, 128);

    @TempDir
    Path dir;

    static GPT2Cuda.Options options(Precision p) {
        return new GPT2Cuda.Options(
                p, p == Precision.FP32 ? GPT2Cuda.Attention.PLAIN : GPT2Cuda.Attention.FLASH, 1, true, false);
    }

    // ---- no GPU needed

    @Test
    void checkpointVersionFollowsLlmc() {
        assertEquals(GPT2Checkpoint.VERSION_BF16, GPT2CudaModel.checkpointVersion(Precision.BF16));
        assertEquals(GPT2Checkpoint.VERSION_BF16, GPT2CudaModel.checkpointVersion(Precision.FP16));
        assertEquals(GPT2Checkpoint.VERSION_FP32, GPT2CudaModel.checkpointVersion(Precision.FP32));
    }

    @Test
    void generationRunsAtFewSequenceLengths() {
        assertEquals(64, GPT2CudaModel.generationLength(1, 1024));
        assertEquals(64, GPT2CudaModel.generationLength(64, 1024));
        assertEquals(128, GPT2CudaModel.generationLength(65, 1024));
        assertEquals(1024, GPT2CudaModel.generationLength(1000, 1024));
        assertEquals(32, GPT2CudaModel.generationLength(5, 32));
    }

    @Test
    void withoutAGpuTheErrorIsOneClearLine() {
        assumeFalse(CudaDriver.isAvailable(), "a CUDA device is present");
        var e = assertThrows(LlmcException.class, GPT2CudaModel::requireDevice);
        assertTrue(e.getMessage().startsWith("no CUDA device: "), e.getMessage());
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        var load = assertThrows(LlmcException.class, () -> GPT2CudaModel.randomInit(SMALL, options(Precision.BF16)));
        assertTrue(load.getMessage().startsWith("no CUDA device: "), load.getMessage());
        var file = assertThrows(
                LlmcException.class,
                () -> GPT2CudaModel.fromCheckpoint(dir.resolve("none.bin"), options(Precision.BF16)));
        assertTrue(file.getMessage().startsWith("no CUDA device: "), file.getMessage());
    }

    // ---- GPU

    static float[] parameters(GPT2CudaModel model) {
        float[] out = new float[(int) model.numParameters()];
        model.gpu().copyParametersToHost(out);
        return out;
    }

    @Tag("gpu")
    @Test
    void checkpointsRoundTripInTheirPrecision() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        for (Precision p : List.of(Precision.BF16, Precision.FP32)) {
            Path file = dir.resolve("model_" + p + ".bin");
            try (var model = GPT2CudaModel.randomInit(SMALL, options(p))) {
                model.saveCheckpoint(file);
                try (var arena = Arena.ofConfined()) {
                    assertEquals(
                            GPT2CudaModel.checkpointVersion(p),
                            GPT2Checkpoint.open(file, arena).version());
                }
                try (var loaded = GPT2CudaModel.fromCheckpoint(file, options(p))) {
                    assertArrayEquals(parameters(model), parameters(loaded), "round trip " + p);
                }
            }
        }
        // a v3 (fp32) file loads into a bf16 model, rounded; a v5 (bf16) file into an fp32 model, widened exactly
        try (var bf16 = GPT2CudaModel.fromCheckpoint(dir.resolve("model_FP32.bin"), options(Precision.BF16));
                var fp32 = GPT2CudaModel.fromCheckpoint(dir.resolve("model_BF16.bin"), options(Precision.FP32))) {
            assertEquals(SMALL, bf16.config());
            assertEquals(SMALL, fp32.config());
        }
    }

    @Tag("gpu")
    @Test
    void adamMomentsGoToTheHostAndBack() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        var random = new Random(3);
        int B = 2, T = 32;
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) {
            x[i] = random.nextInt(250);
            y[i] = random.nextInt(250);
        }
        try (var trained = GPT2CudaModel.randomInit(SMALL, options(Precision.FP32));
                var fresh = GPT2CudaModel.randomInit(SMALL, options(Precision.FP32))) {
            trained.zeroGrad();
            trained.forward(x, y, B, T);
            trained.backward(1);
            trained.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 1);
            float[] m = trained.adamFirstMoments().toArray(JAVA_FLOAT);
            float[] v = trained.adamSecondMoments().toArray(JAVA_FLOAT);
            assertTrue(v[0] != 0 || v[1] != 0, "moments were updated");
            assertArrayEquals(new float[m.length], fresh.adamFirstMoments().toArray(JAVA_FLOAT));
            fresh.loadAdamMoments(trained.adamFirstMoments(), trained.adamSecondMoments());
            assertArrayEquals(m, fresh.adamFirstMoments().toArray(JAVA_FLOAT));
            assertArrayEquals(v, fresh.adamSecondMoments().toArray(JAVA_FLOAT));
            // a heap segment works too
            fresh.loadAdamMoments(MemorySegment.ofArray(new float[m.length]), MemorySegment.ofArray(v));
            assertArrayEquals(new float[m.length], fresh.adamFirstMoments().toArray(JAVA_FLOAT));
        }
    }

    @Tag("gpu")
    @Test
    void generationIsDeterministicAndInTheVocabulary() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16))) {
            int[] a =
                    model.generator().generate(new int[] {5, 6}, 20, new Sampler(new XorShift(1337), 1.0f, 0), t -> {});
            // a training-shaped forward in between must not disturb the next sample
            int[] batch = new int[4 * 64];
            model.forward(batch, batch, 4, 64);
            int[] b =
                    model.generator().generate(new int[] {5, 6}, 20, new Sampler(new XorShift(1337), 1.0f, 0), t -> {});
            assertArrayEquals(a, b);
            for (int token : a) assertTrue(token >= 0 && token < SMALL.vocabSize(), "token " + token);
        }
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16))) {
            assertThrows(
                    LlmcException.class, () -> model.generator().generate(new int[60], 10, Sampler.llmc(), t -> {}));
        }
    }

    private TrainingConfig config(Path out, int steps, boolean resume) {
        return new TrainingConfig(
                dir.resolve("train.bin").toString(),
                dir.resolve("val.bin").toString(),
                2,
                32,
                128,
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

    private static List<String> stepLines(String output) {
        return output.lines()
                .filter(l -> l.startsWith("step "))
                .map(l -> l.substring(0, l.indexOf(" ms"))
                        .replaceAll("\\| [0-9.]+$", "")
                        .replaceAll("step +\\d+/\\d+", ""))
                .toList();
    }

    /** fp32 without master weights or stochastic rounding: a resumed run replays the uninterrupted one exactly. */
    @Tag("gpu")
    @Test
    void resumedFp32RunReproducesTheUninterruptedLosses() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, RandomTokens.of(4000, 250, 3));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, RandomTokens.of(600, 250, 4));
        var uninterrupted = new ByteArrayOutputStream();
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.FP32))) {
            new Trainer(
                            model,
                            config(dir.resolve("a"), 6, false),
                            new PrintStream(uninterrupted, true, StandardCharsets.UTF_8))
                    .run();
        }
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.FP32))) {
            new Trainer(
                            model,
                            config(dir.resolve("b"), 3, false),
                            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8))
                    .run();
        }
        assertTrue(Files.exists(dir.resolve("b/DONE_00000003")));
        var resumed = new ByteArrayOutputStream();
        try (var model =
                GPT2CudaModel.fromCheckpoint(Trainer.resumeModelFile(dir.resolve("b")), options(Precision.FP32))) {
            new Trainer(
                            model,
                            config(dir.resolve("b"), 6, true),
                            new PrintStream(resumed, true, StandardCharsets.UTF_8))
                    .run();
        }
        var expected = stepLines(uninterrupted.toString(StandardCharsets.UTF_8));
        assertEquals(6, expected.size());
        assertEquals(expected.subList(3, 6), stepLines(resumed.toString(StandardCharsets.UTF_8)));
    }

    /**
     * bf16 with master weights and stochastic rounding: the state file carries the fp32 master weights and the
     * rounding rng, so a run stopped at step 3 and resumed ends bit for bit where the uninterrupted one ends.
     */
    @Tag("gpu")
    @Test
    void resumedBf16RunEndsBitIdenticalToTheUninterruptedOne() throws Exception {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, RandomTokens.of(4000, 250, 3));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, RandomTokens.of(600, 250, 4));
        var uninterrupted = new ByteArrayOutputStream();
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16))) {
            new Trainer(
                            model,
                            config(dir.resolve("a"), 6, false),
                            new PrintStream(uninterrupted, true, StandardCharsets.UTF_8))
                    .run();
        }
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16))) {
            new Trainer(
                            model,
                            config(dir.resolve("b"), 3, false),
                            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8))
                    .run();
        }
        var state3 = java.nio.ByteBuffer.wrap(Files.readAllBytes(dir.resolve("b/state_00000003_00000.bin")))
                .order(java.nio.ByteOrder.LITTLE_ENDIAN);
        assertEquals(1, state3.getInt(4 * 4), "header[4]: master weights follow v");
        assertNotEquals(0, state3.getLong(4 * 20), "rng_state");
        var resumed = new ByteArrayOutputStream();
        try (var model =
                GPT2CudaModel.fromCheckpoint(Trainer.resumeModelFile(dir.resolve("b")), options(Precision.BF16))) {
            new Trainer(
                            model,
                            config(dir.resolve("b"), 6, true),
                            new PrintStream(resumed, true, StandardCharsets.UTF_8))
                    .run();
        }
        String output = resumed.toString(StandardCharsets.UTF_8);
        assertFalse(output.contains("warning"), output);
        assertEquals(stepLines(uninterrupted.toString(StandardCharsets.UTF_8)).subList(3, 6), stepLines(output));
        assertEquals(
                -1,
                Files.mismatch(dir.resolve("a/model_00000006.bin"), dir.resolve("b/model_00000006.bin")),
                "model file of step 6");
        assertEquals(
                -1,
                Files.mismatch(dir.resolve("a/state_00000006_00000.bin"), dir.resolve("b/state_00000006_00000.bin")),
                "state file of step 6");
    }

    /** The master weights and the rounding rng go to the host and back, and the next update then rounds alike. */
    @Tag("gpu")
    @Test
    void masterWeightsAndRoundingRngGoToTheHostAndBack() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        var random = new Random(3);
        int B = 2, T = 32;
        int[] x = new int[B * T], y = new int[B * T];
        for (int i = 0; i < B * T; i++) {
            x[i] = random.nextInt(250);
            y[i] = random.nextInt(250);
        }
        try (var trained = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16));
                var copy = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16))) {
            long seed = trained.optimizerRngState();
            trained.zeroGrad();
            trained.forward(x, y, B, T);
            trained.backward(1);
            trained.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 1);
            assertEquals(seed, trained.optimizerRngStateBeforeLastUpdate());
            assertNotEquals(seed, trained.optimizerRngState());
            float[] master = trained.masterWeights().toArray(JAVA_FLOAT);
            assertEquals(SMALL.numParameters(), master.length);
            assertFalse(
                    java.util.Arrays.equals(master, copy.masterWeights().toArray(JAVA_FLOAT)), "the update moved them");

            // a model built from its checkpoint takes its moments, master weights and rng: it is the trained model
            // again
            Path file = dir.resolve("model.bin");
            trained.saveCheckpoint(file);
            try (var resumed = GPT2CudaModel.fromCheckpoint(file, options(Precision.BF16))) {
                resumed.loadAdamMoments(trained.adamFirstMoments(), trained.adamSecondMoments());
                resumed.loadMasterWeights(MemorySegment.ofArray(master)); // heap memory works too
                resumed.restoreOptimizerRng(trained.optimizerRngState(), trained.optimizerRngStateBeforeLastUpdate());
                assertArrayEquals(master, resumed.masterWeights().toArray(JAVA_FLOAT));
                for (var model : List.of(trained, resumed)) {
                    model.zeroGrad();
                    model.forward(x, y, B, T);
                    model.backward(1);
                    model.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, 2);
                }
                assertArrayEquals(parameters(trained), parameters(resumed));
                assertArrayEquals(
                        trained.masterWeights().toArray(JAVA_FLOAT),
                        resumed.masterWeights().toArray(JAVA_FLOAT));
                assertEquals(trained.optimizerRngState(), resumed.optimizerRngState());
            }
        }
        try (var fp32 = GPT2CudaModel.randomInit(SMALL, options(Precision.FP32))) {
            assertNull(fp32.masterWeights(), "fp32 computes with its fp32 weights: no master copy");
        }
    }

    /** bf16 with master weights: the loop runs, writes v5 checkpoints, and the loss falls. */
    @Tag("gpu")
    @Test
    void bf16TrainingWritesVersion5Checkpoints() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, RandomTokens.of(4000, 250, 3));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, RandomTokens.of(600, 250, 4));
        try (var model = GPT2CudaModel.randomInit(SMALL, options(Precision.BF16))) {
            var result = new Trainer(
                            model,
                            config(dir.resolve("c"), 6, false),
                            new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8))
                    .run();
            var losses = result.trainLosses();
            assertTrue(losses.getLast().loss() < losses.getFirst().loss(), losses.toString());
        }
        try (var arena = Arena.ofConfined()) {
            assertEquals(
                    GPT2Checkpoint.VERSION_BF16,
                    GPT2Checkpoint.open(dir.resolve("c/model_00000006.bin"), arena)
                            .version());
        }
    }
}
