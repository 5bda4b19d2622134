package dev.llmc4j.gpt2.cuda;

import static dev.llmc4j.gpt2.cuda.GpuAsserts.assertClose;
import static dev.llmc4j.gpt2.cuda.GpuAsserts.maxAbs;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * GPT2Cuda against the CPU reference (Gpt2Reference) on a small GPT-2: loss, logits, every gradient tensor, the
 * grad norm, AdamW steps, gradient accumulation, recompute levels, bitwise determinism, fp16 loss scaling.
 * Needs a GPU.
 */
@Tag("gpu")
class CudaParityTest {
    // head size 64 (flash-capable), ragged vocabulary (V=250 padded to 256)
    static final GPT2Config SMALL = new GPT2Config(64, 250, 256, 2, 2, 128);
    static final int B = 2, T = 64;
    static float[] params;
    static int[] inputs, targets;

    @BeforeEach
    void requireGpu() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device"); // each test reports the skip
    }

    @BeforeAll
    static void setUp() {
        params = Gpt2Reference.randomParameters(SMALL, 42);
        var rng = new Random(5);
        inputs = new int[B * T];
        targets = new int[B * T];
        for (int i = 0; i < B * T; i++) {
            inputs[i] = rng.nextInt(SMALL.vocabSize());
            targets[i] = rng.nextInt(SMALL.vocabSize());
        }
    }

    static GPT2Cuda model(Precision p, GPT2Cuda.Attention attention, int recompute) {
        var m = new GPT2Cuda(SMALL, new GPT2Cuda.Options(p, attention, recompute, true, false));
        m.loadParameters(params);
        return m;
    }

    /** Per-tensor gradient comparison with llm.c's shape of tolerance: thr + rel * |ref|, thr scaled per tensor. */
    static void assertGradientsClose(float[] expected, float[] actual, double thr, double rel) {
        var layout = ParameterLayout.of(SMALL);
        for (int t = 0; t < ParameterLayout.NUM_TENSORS; t++) {
            int off = (int) layout.offset(t), n = (int) layout.size(t);
            float[] e = java.util.Arrays.copyOfRange(expected, off, off + n),
                    a = java.util.Arrays.copyOfRange(actual, off, off + n);
            assertClose("grad " + GPT2Config.PARAMETER_NAMES[t], e, a, thr * Math.max(maxAbs(e), 1e-6), rel);
        }
    }

    @ParameterizedTest(name = "{0} {1} recompute={2}")
    @CsvSource({"FP32, PLAIN, 0", "FP32, PLAIN, 2", "BF16, FLASH, 1", "BF16, PLAIN, 0", "FP16, FLASH, 2"})
    void lossLogitsAndGradientsMatchTheCpu(Precision p, GPT2Cuda.Attention attention, int recompute) {
        var ref = new Gpt2Reference(SMALL, p == Precision.FP32 ? params : Device.round(params, p));
        float refLoss = ref.forward(inputs, targets, B, T);
        ref.backward(1);
        try (var gpu = model(p, attention, recompute)) {
            float loss = gpu.forward(inputs, targets, B, T);
            float[] logits = new float[B * T * SMALL.paddedVocabSize()];
            gpu.copyLogitsToHost(logits);
            gpu.zeroGrad();
            gpu.backward();
            float[] grads = new float[(int) gpu.numParameters()];
            gpu.copyGradientsToHost(grads);
            if (p == Precision.FP32) {
                assertEquals(refLoss, loss, 1e-4);
                assertClose("logits", ref.logits(), logits, 1e-4, 1e-3);
                assertGradientsClose(ref.grads, grads, 1e-4, 1e-3);
                assertEquals(ref.gradNorm(), gpu.gradNorm(), 1e-4 * ref.gradNorm());
            } else {
                assertEquals(refLoss, loss, 0.05);
                assertClose("logits", ref.logits(), logits, 0.05, 0.05);
                assertGradientsClose(ref.grads, grads, 0.05, 0.1);
                assertEquals(ref.gradNorm(), gpu.gradNorm(), 0.05 * ref.gradNorm());
            }
        }
    }

    @Test
    void trainingStepsFollowTheCpuInFp32() {
        // eps 1e-3 instead of 1e-8: with a tiny eps, Adam turns a gradient element that is pure rounding noise into
        // a full +-lr step, and the GPU and CPU would disagree on its sign. A larger eps keeps the update
        // continuous in the gradient, so the comparison tests the arithmetic, not the noise.
        float eps = 1e-3f;
        var ref = new Gpt2Reference(SMALL, params);
        try (var gpu = model(Precision.FP32, GPT2Cuda.Attention.PLAIN, 1)) {
            for (int step = 0; step < 5; step++) {
                float refLoss = ref.forward(inputs, targets, B, T);
                ref.zeroGrad();
                ref.backward(1);
                float refNorm = ref.gradNorm();
                ref.update(1e-3f, 0.9f, 0.95f, eps, 0.1f, refNorm > 1 ? 1 / refNorm : 1, step + 1);

                float loss = gpu.forward(inputs, targets, B, T);
                gpu.zeroGrad();
                gpu.backward();
                float norm = gpu.gradNorm();
                assertTrue(gpu.update(1e-3f, 0.9f, 0.95f, eps, 0.1f, norm > 1 ? 1 / norm : 1, step + 1));
                assertEquals(refLoss, loss, 2e-4, "step " + step);
                assertEquals(refNorm, norm, 1e-3 * refNorm, "norm at step " + step);
            }
            float[] after = new float[(int) gpu.numParameters()];
            gpu.copyParametersToHost(after);
            assertClose("parameters after 5 steps", ref.params, after, 1e-4, 1e-3);
        }
    }

    @Test
    void gradientAccumulationEqualsOneBigBatch() {
        float[] whole = new float[(int) ParameterLayout.of(SMALL).numParameters()], accumulated = whole.clone();
        try (var gpu = model(Precision.FP32, GPT2Cuda.Attention.PLAIN, 0)) {
            gpu.zeroGrad();
            gpu.forward(inputs, targets, B, T);
            gpu.backward(1);
            gpu.copyGradientsToHost(whole);

            gpu.zeroGrad();
            for (int half = 0; half < 2; half++) {
                int[] in = java.util.Arrays.copyOfRange(inputs, half * T, (half + 1) * T);
                int[] tg = java.util.Arrays.copyOfRange(targets, half * T, (half + 1) * T);
                gpu.forward(in, tg, 1, T);
                gpu.backward(2);
            }
            gpu.copyGradientsToHost(accumulated);
        }
        assertGradientsClose(whole, accumulated, 1e-5, 1e-4);
    }

    @Test
    void bf16FlashTrainingIsBitwiseReproducibleAndLearns() {
        float[][] finalParams = new float[2][];
        float[][] losses = new float[2][10];
        for (int run = 0; run < 2; run++) {
            try (var gpu = model(Precision.BF16, GPT2Cuda.Attention.FLASH, 1)) {
                for (int step = 0; step < 10; step++) {
                    gpu.zeroGrad();
                    losses[run][step] = gpu.forward(inputs, targets, B, T);
                    gpu.backward();
                    float norm = gpu.gradNorm();
                    gpu.update(3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, norm > 1 ? 1 / norm : 1, step + 1);
                }
                finalParams[run] = new float[(int) gpu.numParameters()];
                gpu.copyParametersToHost(finalParams[run]);
            }
        }
        assertArrayEquals(losses[0], losses[1]);
        assertArrayEquals(finalParams[0], finalParams[1]);
        assertTrue(losses[0][9] < losses[0][0] - 0.5, "overfits one batch: " + losses[0][0] + " -> " + losses[0][9]);
    }

    @Test
    void fp16WithLossScalingTrainsAndSkipsOverflowingSteps() {
        try (var gpu = model(Precision.FP16, GPT2Cuda.Attention.FLASH, 1)) {
            var scaler = gpu.lossScaler();
            assertNotNull(scaler);
            float first = 0, last = 0;
            for (int step = 0; step < 10; step++) {
                gpu.zeroGrad();
                float loss = gpu.forward(inputs, targets, B, T);
                if (step == 0) first = loss;
                last = loss;
                gpu.backward();
                float norm = gpu.gradNorm();
                gpu.update(3e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, Float.isFinite(norm) && norm > 1 ? 1 / norm : 1, step + 1);
            }
            assertTrue(Float.isFinite(last));
            assertTrue(last < first, first + " -> " + last);
            assertTrue(scaler.scale() >= 1.0f);
        }
    }

    @Test
    void parametersLoadFromNativeMemoryAndFromBf16() {
        float[] back = new float[params.length];
        try (var arena = java.lang.foreign.Arena.ofConfined();
                var gpu = new GPT2Cuda(
                        SMALL, new GPT2Cuda.Options(Precision.BF16, GPT2Cuda.Attention.FLASH, 1, true, true))) {
            gpu.loadParameters(arena.allocateFrom(java.lang.foreign.ValueLayout.JAVA_FLOAT, params));
            gpu.copyParametersToHost(back);
            assertArrayEquals(Device.round(params, Precision.BF16), back);
            // raw bf16 = the upper 16 bits of the rounded floats
            var bf16 = arena.allocate(params.length * 2L);
            for (int i = 0; i < params.length; i++)
                bf16.setAtIndex(java.lang.foreign.ValueLayout.JAVA_SHORT, i, (short)
                        (Float.floatToRawIntBits(Device.round(params[i], Precision.BF16)) >>> 16));
            gpu.loadParametersBf16(bf16);
            java.util.Arrays.fill(back, 0);
            gpu.copyParametersToHost(back);
            assertArrayEquals(Device.round(params, Precision.BF16), back);
        }
    }

    @Test
    void badInputsGiveClearErrors() {
        try (var gpu = model(Precision.BF16, GPT2Cuda.Attention.FLASH, 1)) {
            int[] bad = inputs.clone();
            bad[3] = SMALL.vocabSize();
            var e = assertThrows(LlmcException.class, () -> gpu.forward(bad, targets, B, T));
            assertTrue(e.getMessage().contains("inputs[3]"), e.getMessage());
            assertThrows(LlmcException.class, () -> gpu.forward(inputs, targets, 1, SMALL.maxSeqLen() + 1));
            assertThrows(LlmcException.class, () -> gpu.loadParameters(new float[5]));
            assertEquals(-1.0f, gpu.forward(inputs, null, B, T));
            assertThrows(IllegalStateException.class, gpu::backward);
        }
    }
}
