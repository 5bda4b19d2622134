package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step12.ActivationMemory;
import dev.llmc4j.tutorials.step12.CheckpointedMlpStack;
import dev.llmc4j.tutorials.step12.CheckpointedMlpStack.Policy;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** Step 12: recomputation changes memory, never the gradients; the activation count matches GPT2's buffers. */
class Step12MemoryTest {

    /** The stack's forward, written here from the math: x_{l+1} = x_l + gelu(x_l · W1ᵀ) · W2ᵀ; returns x_L. */
    static double[] forward(double[] x, double[][] w1, double[][] w2, int N, int C, int H) {
        for (int l = 0; l < w1.length; l++) {
            double[] next = x.clone();
            for (int n = 0; n < N; n++) {
                for (int h = 0; h < H; h++) {
                    double pre = 0;
                    for (int c = 0; c < C; c++) pre += x[n * C + c] * w1[l][h * C + c];
                    double a = 0.5 * pre * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (pre + 0.044715 * pre * pre * pre)));
                    for (int c = 0; c < C; c++) next[n * C + c] += a * w2[l][c * H + h];
                }
            }
            x = next;
        }
        return x;
    }

    @Test
    void everyPolicysGradientsPassAGradientCheck() {
        // the policies are compared with each other below; this checks them against the math itself
        int L = 3, N = 2, C = 4, H = 6;
        var random = new Random(121);
        double[][] w1 = new double[L][], w2 = new double[L][];
        for (int l = 0; l < L; l++) {
            w1[l] = Tensors.gaussian(random, H * C, 0.5);
            w2[l] = Tensors.gaussian(random, C * H, 0.5);
        }
        double[] x = Tensors.gaussian(random, N * C, 1), dout = Tensors.gaussian(random, N * C, 1);
        var stack = new CheckpointedMlpStack(w1, w2, N, C, H);
        double worst = 0;
        for (var policy : Policy.values()) {
            var grads = stack.forwardBackward(x, dout, policy);
            worst = Math.max(
                    worst,
                    Tensors.relativeError(
                            grads.dx(),
                            Tensors.numericGradient(x.clone(), v -> forward(v, w1, w2, N, C, H), dout, 1e-6)));
            for (int l = 0; l < L; l++) {
                int layer = l;
                worst = Math.max(
                        worst,
                        Tensors.relativeError(
                                grads.weights()[l][0],
                                Tensors.numericGradient(
                                        w1[l].clone(),
                                        v -> forward(x, replace(w1, layer, v), w2, N, C, H),
                                        dout,
                                        1e-6)));
                worst = Math.max(
                        worst,
                        Tensors.relativeError(
                                grads.weights()[l][1],
                                Tensors.numericGradient(
                                        w2[l].clone(),
                                        v -> forward(x, w1, replace(w2, layer, v), N, C, H),
                                        dout,
                                        1e-6)));
            }
        }
        System.out.printf("gradient check of all three policies (dx, W1, W2 of every layer): worst %.1e%n", worst);
        assertTrue(worst < 1e-7, "gradient check: " + worst);
    }

    static double[][] replace(double[][] weights, int layer, double[] values) {
        double[][] copy = weights.clone();
        copy[layer] = values;
        return copy;
    }

    @Test
    void recomputingGivesTheSameGradientsBitForBit() {
        int L = 4, N = 3, C = 5, H = 20;
        var random = new Random(12);
        double[][] w1 = new double[L][], w2 = new double[L][];
        for (int l = 0; l < L; l++) {
            w1[l] = Tensors.gaussian(random, H * C, 0.3);
            w2[l] = Tensors.gaussian(random, C * H, 0.3);
        }
        double[] x = Tensors.gaussian(random, N * C, 1), dout = Tensors.gaussian(random, N * C, 1);
        var stack = new CheckpointedMlpStack(w1, w2, N, C, H);

        var stored = stack.forwardBackward(x, dout, Policy.STORE_ALL);
        long storedFloats = stack.floatsKept();
        for (var policy : new Policy[] {Policy.RECOMPUTE_GELU, Policy.CHECKPOINT}) {
            var recomputed = stack.forwardBackward(x, dout, policy);
            assertArrayEquals(stored.dx(), recomputed.dx(), 0, policy + ": dx");
            for (int l = 0; l < L; l++)
                for (int k = 0; k < 2; k++)
                    assertArrayEquals(stored.weights()[l][k], recomputed.weights()[l][k], 0, policy + " layer " + l);
            System.out.printf(
                    "%-14s keeps %4d activation floats (STORE_ALL: %d); gradients identical%n",
                    policy, stack.floatsKept(), storedFloats);
            assertTrue(stack.floatsKept() < storedFloats);
        }
        // L layers of x, h, a (STORE_ALL) vs L of x, h and one shared a (RECOMPUTE_GELU) vs L of x and one h and a
        assertEquals(L * (N * C + 2 * N * H), storedFloats);
        stack.forwardBackward(x, dout, Policy.CHECKPOINT);
        assertEquals(L * N * C + 2 * N * H, stack.floatsKept());
        assertEquals(2 * N * H, stack.gradientFloats(), "da and dh: one pair for all layers");
    }

    @ParameterizedTest(name = "-r {0}")
    @ValueSource(ints = {0, 1, 2})
    void activationCountMatchesGPT2sBuffers(int recompute) {
        var config = new GPT2Config(64, 100, 128, 3, 4, 32);
        int B = 2, T = 16;
        long lesson = ActivationMemory.activationFloats(
                config.numLayers(), config.channels(), config.numHeads(), config.paddedVocabSize(), B, T, recompute);
        assertEquals(GPT2.activationCount(config, B, T, recompute), lesson);
        try (var model = GPT2.randomInit(config).recompute(recompute)) {
            model.forward(new int[B * T], null, B, T);
            assertEquals(lesson, model.numActivations(), "what GPT2 allocated for its activations at -r " + recompute);
        }
    }

    @Test
    void whatRecomputeSavesOnGPT2Small() {
        var d12 = GPT2Config.fromDescriptor("d12");
        int B = 4, T = 1024;
        System.out.println("GPT-2 124M (d12), B=4, T=1024, fp32 activations:");
        long[] floats = new long[3];
        for (int r = 0; r < 3; r++) {
            floats[r] = ActivationMemory.activationFloats(
                    d12.numLayers(), d12.channels(), d12.numHeads(), d12.paddedVocabSize(), B, T, r);
            System.out.printf("  -r %d: %,d floats = %.2f GiB%n", r, floats[r], floats[r] * 4.0 / (1 << 30));
        }
        long N = (long) B * T, C = d12.channels(), L = d12.numLayers();
        assertEquals((L - 1) * 4 * N * C, floats[0] - floats[1], "-r 1 saves L-1 layers of fchGelu");
        assertEquals((L - 1) * 2 * N * C, floats[1] - floats[2], "-r 2 also saves L-1 layers of ln1 and ln2");
        for (int r = 0; r < 3; r++)
            assertEquals(GPT2.activationCount(d12, B, T, r), floats[r], "GPT2's layout at -r " + r);
    }
}
