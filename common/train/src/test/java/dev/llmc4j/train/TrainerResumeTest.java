package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.util.AtomicFiles;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Trainer's checkpoints carry what a mixed-precision model needs to resume bit for bit: its fp32 master weights
 * (state file header[4] = 1, a block after v) and its stochastic-rounding rng (header[20..23]). The model here is a
 * stand-in with the GPU model's structure on the host: bf16 parameters (what the model file holds), fp32 master
 * weights, AdamW, and an xorshift that seeds the stochastic rounding of every update.
 */
class TrainerResumeTest {
    static final int VOCAB = 50;

    @TempDir
    Path dir;

    /** 16 bf16 parameters kept as fp32 master weights, rounded stochastically after each AdamW step. */
    static final class MixedPrecisionModel implements TrainableModel, MixedPrecisionState {
        static final int N = 16;
        final boolean keepsMaster; // false: a model whose master weights are not saved (today's CPU models)
        boolean ignoreRngRestore; // a broken model for the negative control
        final Arena arena = Arena.ofConfined();
        final MemorySegment m = arena.allocate(4L * N), v = arena.allocate(4L * N), hostMaster = arena.allocate(4L * N);
        final float[] params = new float[N]; // bf16 values, widened
        final float[] master = new float[N];
        final float[] grads = new float[N];
        final XorShift rng = new XorShift(13371337);
        long rngBeforeLastUpdate = rng.state();
        float lossScale = 1024f; // a dynamic loss scaler's state: doubles after every 2 updates
        int goodSteps;
        private int[] lastInputs;

        MixedPrecisionModel(boolean keepsMaster, float[] bf16Params) {
            this.keepsMaster = keepsMaster;
            System.arraycopy(bf16Params, 0, params, 0, N);
            System.arraycopy(bf16Params, 0, master, 0, N); // master weights start as the exact widening
        }

        static MixedPrecisionModel initial(boolean keepsMaster) {
            float[] p = new float[N];
            for (int i = 0; i < N; i++) p[i] = roundToBf16(0.1f * (i - 8), 0x8000);
            return new MixedPrecisionModel(keepsMaster, p);
        }

        /** The model file: the bf16 parameters (as fp32 bits), like llm.c's checkpoint holds them. */
        static MixedPrecisionModel fromFile(Path file, boolean keepsMaster) throws Exception {
            var buffer = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
            float[] p = new float[N];
            for (int i = 0; i < N; i++) p[i] = buffer.getFloat(4 * i);
            return new MixedPrecisionModel(keepsMaster, p);
        }

        /** x to bf16, rounding up with probability (dropped bits)/2^16 when random16 is uniform in [0, 2^16). */
        static float roundToBf16(float x, int random16) {
            int bits = Float.floatToRawIntBits(x);
            return Float.intBitsToFloat((bits + random16) & 0xFFFF0000);
        }

        public long numParameters() {
            return N;
        }

        public int vocabSize() {
            return VOCAB;
        }

        public int maxSeqLen() {
            return 64;
        }

        public float forward(int[] inputs, int[] targets, int B, int T) {
            lastInputs = inputs.clone();
            double loss = 0;
            for (int i = 0; i < B * T; i++) loss += params[inputs[i] % N] * (targets[i] - VOCAB / 2.0) / VOCAB;
            return (float) (loss / (B * T));
        }

        public void zeroGrad() {
            java.util.Arrays.fill(grads, 0);
        }

        public void backward(int microSteps) {
            for (int i = 0; i < lastInputs.length; i++)
                grads[lastInputs[i] % N] += (1.0f + (lastInputs[i] & 3)) / (lastInputs.length * microSteps);
        }

        public float gradientNorm() {
            double sum = 0;
            for (float g : grads) sum += (double) g * g;
            return (float) Math.sqrt(sum);
        }

        public void update(float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {
            rngBeforeLastUpdate = rng.state();
            int seed = (int) rng.nextInt32(); // one seed per update, as the GPU model draws per tensor
            var rounding = new Random(seed);
            for (int i = 0; i < N; i++) {
                float g = grads[i] * gradScale;
                float mi = beta1 * m.getAtIndex(ValueLayout.JAVA_FLOAT, i) + (1 - beta1) * g;
                float vi = beta2 * v.getAtIndex(ValueLayout.JAVA_FLOAT, i) + (1 - beta2) * g * g;
                m.setAtIndex(ValueLayout.JAVA_FLOAT, i, mi);
                v.setAtIndex(ValueLayout.JAVA_FLOAT, i, vi);
                float mHat = mi / (1 - (float) Math.pow(beta1, t)), vHat = vi / (1 - (float) Math.pow(beta2, t));
                float weights = keepsMaster ? master[i] : params[i];
                weights -= lr * (mHat / ((float) Math.sqrt(vHat) + eps) + weightDecay * weights);
                if (keepsMaster) master[i] = weights;
                params[i] = roundToBf16(weights, rounding.nextInt(1 << 16));
            }
            if (++goodSteps == 2) {
                lossScale *= 2;
                goodSteps = 0;
            }
        }

        public MemorySegment adamFirstMoments() {
            return m;
        }

        public MemorySegment adamSecondMoments() {
            return v;
        }

        @Override
        public MemorySegment masterWeights() {
            if (!keepsMaster) return null;
            MemorySegment.copy(master, 0, hostMaster, ValueLayout.JAVA_FLOAT, 0, N);
            return hostMaster;
        }

        @Override
        public void loadMasterWeights(MemorySegment weights) {
            MemorySegment.copy(weights, ValueLayout.JAVA_FLOAT, 0, master, 0, N);
        }

        @Override
        public long optimizerRngState() {
            return rng.state();
        }

        @Override
        public long optimizerRngStateBeforeLastUpdate() {
            return rngBeforeLastUpdate;
        }

        @Override
        public void restoreOptimizerRng(long state, long stateBeforeLastUpdate) {
            if (ignoreRngRestore) return;
            rng.setState(state);
            rngBeforeLastUpdate = stateBeforeLastUpdate;
        }

        @Override
        public LossScale lossScale() {
            return new LossScale(lossScale, goodSteps);
        }

        @Override
        public void restoreLossScale(LossScale saved) {
            lossScale = saved.scale();
            goodSteps = saved.goodSteps();
        }

        public void saveCheckpoint(Path file) {
            var buffer = ByteBuffer.allocate(4 * N).order(ByteOrder.LITTLE_ENDIAN);
            for (float p : params) buffer.putFloat(p);
            AtomicFiles.write(file, buffer.array());
        }

        public TokenGenerator generator() {
            return null;
        }

        public void close() {
            arena.close();
        }
    }

    private TrainingConfig config(Path out, int steps, boolean resume) {
        // B=2, T=8, 2 micro-steps, checkpoints every 3 steps
        return new TrainingConfig(
                dir.resolve("train.bin").toString(),
                dir.resolve("val.bin").toString(),
                2,
                8,
                32,
                steps,
                1e-2f,
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
        var random = new Random(5);
        int[] train = new int[3000], val = new int[400];
        for (int i = 0; i < train.length; i++) train[i] = random.nextInt(VOCAB);
        for (int i = 0; i < val.length; i++) val[i] = random.nextInt(VOCAB);
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, train);
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, val);
    }

    private String train(TrainableModel model, Path out, int steps, boolean resume) {
        var text = new ByteArrayOutputStream();
        new Trainer(model, config(out, steps, resume), new PrintStream(text, true, StandardCharsets.UTF_8)).run();
        return text.toString(StandardCharsets.UTF_8);
    }

    private static ByteBuffer header(Path stateFile) throws Exception {
        return ByteBuffer.wrap(Files.readAllBytes(stateFile), 0, 1024).order(ByteOrder.LITTLE_ENDIAN);
    }

    @Test
    void aRunStoppedAtStep3AndResumedEndsAsTheUninterruptedOne() throws Exception {
        writeShards();
        float[] expectedMaster;
        long expectedRng, expectedRngBefore;
        try (var model = MixedPrecisionModel.initial(true)) {
            train(model, dir.resolve("a"), 6, false);
            expectedMaster = model.master.clone();
            expectedRng = model.rng.state();
            expectedRngBefore = model.rngBeforeLastUpdate;
        }
        float[] master3;
        try (var model = MixedPrecisionModel.initial(true)) {
            train(model, dir.resolve("b"), 3, false);
            master3 = model.master.clone();
        }
        // the step-3 state file: header[4] = 1, the rng states, and the master weights after m and v
        Path state3 = dir.resolve("b/state_00000003_00000.bin");
        var head = header(state3);
        assertEquals(1, head.getInt(4 * 4));
        assertNotEquals(0, head.getLong(4 * 20));
        assertNotEquals(head.getLong(4 * 20), head.getLong(4 * 22), "the state before the last update is another one");
        // the loss scaler after 3 updates: doubled once (after 2), one good step since
        assertEquals(2048f, head.getFloat(4 * 40));
        assertEquals(1, head.getInt(4 * 41));
        int N = MixedPrecisionModel.N;
        long tail = Files.size(state3) - 1024 - 3L * N * 4; // the shuffling loader's permutations and mt19937
        assertTrue(tail > 2520, "loader tail " + tail);
        var block = ByteBuffer.wrap(Files.readAllBytes(state3)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < N; i++)
            assertEquals(master3[i], block.getFloat(1024 + 2 * N * 4 + 4 * i), "step-3 master weight " + i);

        String resumedOutput;
        try (var model = MixedPrecisionModel.fromFile(Trainer.resumeModelFile(dir.resolve("b")), true)) {
            resumedOutput = train(model, dir.resolve("b"), 6, true);
            assertTrue(resumedOutput.contains("resumed from"), resumedOutput);
            assertFalse(resumedOutput.contains("warning"), resumedOutput);
            assertArrayEquals(expectedMaster, model.master);
            assertEquals(expectedRng, model.rng.state());
            assertEquals(expectedRngBefore, model.rngBeforeLastUpdate);
        }
        for (String name : new String[] {"model_00000006.bin", "state_00000006_00000.bin"})
            assertEquals(
                    -1,
                    Files.mismatch(
                            dir.resolve("a").resolve(name), dir.resolve("b").resolve(name)),
                    name);
        var master6 = ByteBuffer.wrap(Files.readAllBytes(dir.resolve("a/state_00000006_00000.bin")))
                .order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < N; i++)
            assertEquals(expectedMaster[i], master6.getFloat(1024 + 2 * N * 4 + 4 * i), "master weight " + i);
    }

    /** The test above would notice a model whose rounding rng starts again from its seed: it then ends elsewhere. */
    @Test
    void withoutTheRngRestoredTheResumedRunDiffers() throws Exception {
        writeShards();
        try (var model = MixedPrecisionModel.initial(true)) {
            train(model, dir.resolve("a"), 6, false);
        }
        try (var model = MixedPrecisionModel.initial(true)) {
            train(model, dir.resolve("b"), 3, false);
        }
        try (var model = MixedPrecisionModel.fromFile(Trainer.resumeModelFile(dir.resolve("b")), true)) {
            model.ignoreRngRestore = true;
            train(model, dir.resolve("b"), 6, true);
        }
        assertNotEquals(-1, Files.mismatch(dir.resolve("a/model_00000006.bin"), dir.resolve("b/model_00000006.bin")));
    }

    /** Resuming across the two kinds of model: a one-line warning each way, and the run goes on. */
    @Test
    void aMismatchOfMasterWeightsWarnsAndGoesOn() throws Exception {
        writeShards();
        try (var model = MixedPrecisionModel.initial(true)) {
            train(model, dir.resolve("with"), 3, false);
        }
        try (var model = MixedPrecisionModel.fromFile(Trainer.resumeModelFile(dir.resolve("with")), false)) {
            String output = train(model, dir.resolve("with"), 6, true);
            assertTrue(output.contains("holds fp32 master weights, but this model keeps none"), output);
        }
        try (var model = MixedPrecisionModel.initial(false)) {
            train(model, dir.resolve("without"), 3, false);
        }
        assertEquals(0, header(dir.resolve("without/state_00000003_00000.bin")).getInt(4 * 4));
        try (var model = MixedPrecisionModel.fromFile(Trainer.resumeModelFile(dir.resolve("without")), true)) {
            String output = train(model, dir.resolve("without"), 6, true);
            assertTrue(output.contains("holds no fp32 master weights"), output);
            assertTrue(Files.exists(dir.resolve("without/DONE_00000006")));
        }
    }
}
