package dev.llmc4j.llama3;

import static dev.llmc4j.cpu.MatmulTest.random;
import static dev.llmc4j.llama3.Llama3Kernels.BASELINE;
import static dev.llmc4j.llama3.Llama3Kernels.VECTORIZED;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.VectorizedCpuKernelsTest;
import dev.llmc4j.testing.RandomTokens;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * Llama 3's kernel sets: each fast version of Llama3.java's layers equals the baseline on ragged shapes (sizes
 * that are not multiples of the vector length), and a model built with either set trains to the same losses and
 * gradients up to fp32 rounding.
 */
class Llama3KernelsTest {
    // grouped-query attention (NKV = 2 < NH = 4), as Llama 3 itself
    static final Llama3Config TINY = Llama3TrainingTest.TINY;

    @Test
    void theVectorizedSetNamesItsMissingFastVersions() {
        assertEquals(List.of("embedding"), Llama3Kernels.VECTORIZED.missingFastVersions());
        assertEquals("vectorized", Llama3Kernels.VECTORIZED.name());
        assertEquals("baseline", Llama3Kernels.BASELINE.name());
        assertEquals(List.of(), Llama3Kernels.BASELINE.missingFastVersions());
        assertSame(Llama3Kernels.BASELINE, Llama3Kernels.of(CpuKernels.Choice.BASELINE));
        assertSame(Llama3Kernels.VECTORIZED, Llama3Kernels.of(CpuKernels.Choice.VECTORIZED));
    }

    @Test
    void bothSetsTrainAlike() {
        int B = 2, T = 8;
        int[] x = RandomTokens.of(B * T, TINY.vocabSize(), 1), y = RandomTokens.of(B * T, TINY.vocabSize(), 2);
        float[][] losses = new float[2][2];
        float[][] gradients = new float[2][];
        var sets = new Llama3Kernels[] {Llama3Kernels.BASELINE, Llama3Kernels.VECTORIZED};
        for (int s = 0; s < 2; s++) {
            try (var model = Llama3.randomInit(TINY, 42, sets[s])) {
                assertSame(sets[s], model.kernels());
                for (int step = 1; step <= 2; step++) {
                    model.zeroGrad();
                    losses[s][step - 1] = model.forward(x, y, B, T);
                    model.backward();
                    if (step == 2) gradients[s] = model.gradients().toArray(ValueLayout.JAVA_FLOAT);
                    model.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, step);
                }
            }
        }
        assertArrayEquals(losses[0], losses[1], 1e-5f);
        assertArrayEquals(gradients[0], gradients[1], 1e-5f);
    }

    /** The baseline, then the vectorized set, on copies of the buffers; every buffer compared. */
    static void assertSameOutputs(
            MemorySegment[] buffers, BiConsumer<Llama3Kernels, MemorySegment[]> body, double tolerance, String what) {
        VectorizedCpuKernelsTest.assertSame(BASELINE, VECTORIZED, buffers, body, tolerance, what);
    }

    @ParameterizedTest(name = "rows={0} C={1}")
    @CsvSource({"1,1", "3,5", "7,17", "5,48", "12,100"})
    void rmsnorm(int rows, int C) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(rows * 1000 + C);
            long n = (long) rows * C;
            var inp = random(arena, n, random);
            var out = random(arena, n, random);
            var dinp = random(arena, n, random);
            var weight = random(arena, C, random);
            var dweight = random(arena, C, random);
            var rstd = random(arena, rows, random);
            assertSameOutputs(
                    new MemorySegment[] {out, rstd, inp, weight},
                    (k, b) -> k.rmsnormForward(b[0], b[1], b[2], b[3], rows, C, 1e-5f),
                    1e-6,
                    "rmsnorm forward");
            Llama3.rmsnormForward(out, rstd, inp, weight, rows, C, 1e-5f);
            assertSameOutputs(
                    new MemorySegment[] {dinp, dweight, out, inp, weight, rstd},
                    (k, b) -> k.rmsnormBackward(b[0], b[1], b[2], b[3], b[4], b[5], rows, C),
                    1e-6,
                    "rmsnorm backward");
            // inference keeps no rstd
            assertSameOutputs(
                    new MemorySegment[] {out, inp, weight},
                    (k, b) -> k.rmsnormForward(b[0], null, b[1], b[2], rows, C, 1e-5f),
                    1e-6,
                    "rmsnorm inference");
        }
    }

    /** rows = B*T positions from startPosition (inference: one row at a later position); hd not a vector multiple. */
    @ParameterizedTest(name = "rows={0} T={1} start={2} NH={3} NKV={4} hd={5}")
    @CsvSource({"1,1,0,1,1,2", "6,3,0,4,2,6", "8,4,0,3,1,18", "10,5,0,2,2,34", "1,1,7,4,2,20", "6,3,5,2,1,64"})
    void rope(int rows, int T, int startPosition, int NH, int NKV, int hd) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(rows * 1000 + hd);
            int half = hd / 2, maxT = startPosition + T, qkvRows = (NH + 2 * NKV) * hd;
            float[] cos = new float[maxT * half], sin = new float[maxT * half];
            for (int p = 0; p < maxT; p++) {
                for (int i = 0; i < half; i++) {
                    double angle = p * Math.pow(500000, -2.0 * i / hd);
                    cos[p * half + i] = (float) Math.cos(angle);
                    sin[p * half + i] = (float) Math.sin(angle);
                }
            }
            var qkv = random(arena, (long) rows * qkvRows, random);
            for (boolean inverse : new boolean[] {false, true}) {
                assertSameOutputs(
                        new MemorySegment[] {qkv},
                        (k, b) -> k.rope(b[0], cos, sin, rows, T, startPosition, NH + NKV, hd, qkvRows, inverse),
                        1e-7,
                        inverse ? "rope backward" : "rope forward");
            }
        }
    }

    @ParameterizedTest(name = "rows={0} H={1}")
    @CsvSource({"1,1", "3,5", "7,17", "5,48", "4,100"})
    void swiglu(int rows, int H) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(rows * 1000 + H);
            var fch = random(arena, 2L * rows * H, random);
            for (long i = 0; i < 2L * rows * H; i++) { // gates out to |g| ~ 12, where sigmoid saturates
                fch.setAtIndex(ValueLayout.JAVA_FLOAT, i, 4 * fch.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            }
            var dfch = random(arena, 2L * rows * H, random);
            var out = random(arena, (long) rows * H, random);
            var dout = random(arena, (long) rows * H, random);
            assertSameOutputs(
                    new MemorySegment[] {out, fch},
                    (k, b) -> k.swigluForward(b[0], b[1], rows, H),
                    1e-6,
                    "swiglu forward");
            assertSameOutputs(
                    new MemorySegment[] {dfch, fch, dout},
                    (k, b) -> k.swigluBackward(b[0], b[1], b[2], rows, H),
                    1e-6,
                    "swiglu backward");
        }
    }
}
