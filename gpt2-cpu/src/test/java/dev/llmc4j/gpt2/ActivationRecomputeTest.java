package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.params.provider.ValueSource;

/** Activation checkpointing (-r 1, -r 2): less memory, and the same losses and gradients bit for bit. */
class ActivationRecomputeTest {
    // three layers, so that the shared one-layer buffers are reused by layers that come after one another
    static final GPT2Config TINY = new GPT2Config(32, 96, 128, 3, 2, 16);
    static final int B = 2, T = 8;

    /** Losses of three training steps and the gradients after each, at one recompute level. */
    record Run(List<Float> losses, List<float[]> gradients, long activations) {}

    static Run train(int recompute, GPT2Kernels kernels) {
        var random = new Random(7);
        var losses = new ArrayList<Float>();
        var gradients = new ArrayList<float[]>();
        try (var model = GPT2.randomInit(TINY, kernels).recompute(recompute)) {
            for (int step = 1; step <= 3; step++) {
                int[] x = random.ints(B * T, 0, TINY.vocabSize()).toArray();
                int[] y = random.ints(B * T, 0, TINY.vocabSize()).toArray();
                model.zeroGrad();
                losses.add(model.forward(x, y, B, T));
                model.backward();
                gradients.add(model.gradients().toArray(ValueLayout.JAVA_FLOAT));
                model.update(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step);
            }
            return new Run(losses, gradients, model.numActivations());
        }
    }

    // The baseline kernels are plain Java float arithmetic, bit-reproducible by the language's rules. The fast
    // ones use the Vector API, whose tanh (GELU) may differ by an ulp between the interpreter's fallback and
    // C2's intrinsic; both runs of one comparison then see the same JIT state only by luck, so the fast kernels
    // are compared with the baseline's exactness only after a warm-up (see the second test).
    @ParameterizedTest(name = "-r {0}, baseline kernels")
    @ValueSource(ints = {1, 2})
    void sameLossesAndGradientsBitForBit(int recompute) {
        var all = train(0, GPT2Kernels.BASELINE);
        var recomputed = train(recompute, GPT2Kernels.BASELINE);
        assertEquals(all.losses(), recomputed.losses());
        for (int step = 0; step < 3; step++)
            assertArrayEquals(all.gradients().get(step), recomputed.gradients().get(step), 0f, "step " + (step + 1));
    }

    @Test
    void fastKernelsAgreeToo() {
        for (int warmup = 0; warmup < 3; warmup++) train(warmup % 3, GPT2Kernels.VECTORIZED);
        var all = train(0, GPT2Kernels.VECTORIZED);
        for (int recompute = 1; recompute <= 2; recompute++) {
            var recomputed = train(recompute, GPT2Kernels.VECTORIZED);
            for (int step = 0; step < 3; step++) {
                assertEquals(all.losses().get(step), recomputed.losses().get(step), 1e-6f, "-r " + recompute);
                assertArrayEquals(
                        all.gradients().get(step),
                        recomputed.gradients().get(step),
                        1e-6f,
                        "-r " + recompute + " step " + (step + 1));
            }
        }
    }

    @Test
    void activationsShrinkByTheDroppedLayers() {
        long N = (long) B * T, C = TINY.channels(), L = TINY.numLayers();
        long[] floats = new long[3];
        for (int r = 0; r < 3; r++) {
            try (var model = GPT2.randomInit(TINY).recompute(r)) {
                model.forward(new int[B * T], null, B, T);
                floats[r] = model.numActivations();
            }
            assertEquals(GPT2.Activations.count(TINY, B, T, r), floats[r]);
        }
        assertEquals(GPT2.Activations.count(TINY, B, T), floats[0]);
        assertEquals((L - 1) * 4 * N * C, floats[0] - floats[1], "-r 1 keeps one layer of fchGelu instead of L");
        assertEquals((L - 1) * 2 * N * C, floats[1] - floats[2], "-r 2 also keeps one layer of ln1 and ln2");
    }

    @Test
    void levelIsCheckedAndFixedOnceAllocated() {
        try (var model = GPT2.randomInit(TINY)) {
            assertEquals(0, model.recompute());
            assertThrows(LlmcException.class, () -> model.recompute(3));
            assertThrows(LlmcException.class, () -> model.recompute(-1));
            model.recompute(2).forward(new int[B * T], null, B, T);
            model.recompute(2); // unchanged: fine
            assertThrows(IllegalStateException.class, () -> model.recompute(1));
        }
    }

    @ParameterizedTest(name = "{0} kernels")
    @EnumSource(CpuKernels.Choice.class)
    void layernormRecomputeRepeatsTheForwardsBits(CpuKernels.Choice choice) {
        var kernels = GPT2Kernels.of(choice);
        int C = 37; // not a multiple of the vector width
        var random = new Random(3);
        try (var arena = Arena.ofShared()) {
            long n = (long) B * T * C;
            var inp = arena.allocate(n * 4, 64);
            var weight = arena.allocate(C * 4L, 64);
            var bias = arena.allocate(C * 4L, 64);
            for (long i = 0; i < n; i++)
                inp.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian() * 3 + 1);
            for (int i = 0; i < C; i++) {
                weight.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
                bias.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
            }
            var out = arena.allocate(n * 4, 64);
            var again = arena.allocate(n * 4, 64);
            var mean = arena.allocate((long) B * T * 4, 64);
            var rstd = arena.allocate((long) B * T * 4, 64);
            kernels.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
            kernels.layernormRecompute(again, inp, mean, rstd, weight, bias, B, T, C);
            assertArrayEquals(out.toArray(ValueLayout.JAVA_FLOAT), again.toArray(ValueLayout.JAVA_FLOAT), 0f);
        }
    }
}
