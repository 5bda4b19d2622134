package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.MatmulTest.random;
import static dev.llmc4j.gpt2.GPT2Kernels.BASELINE;
import static dev.llmc4j.gpt2.GPT2Kernels.VECTORIZED;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.VectorizedCpuKernelsTest;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.List;
import java.util.Random;
import java.util.function.BiConsumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** GPT2.java's layers: {@link GPT2Kernels#VECTORIZED}'s versions equal {@link GPT2Kernels#BASELINE}'s on ragged shapes. */
class GPT2KernelsTest {

    /** The baseline, then the vectorized set, on copies of the buffers; every buffer compared. */
    static void assertSameOutputs(
            MemorySegment[] buffers, BiConsumer<GPT2Kernels, MemorySegment[]> body, double tolerance, String what) {
        VectorizedCpuKernelsTest.assertSame(BASELINE, VECTORIZED, buffers, body, tolerance, what);
    }

    @Test
    void everyLayerHasAFastVersion() {
        assertEquals("vectorized", VECTORIZED.name());
        assertEquals(List.of(), VECTORIZED.missingFastVersions());
        assertSame(BASELINE, GPT2Kernels.of(CpuKernels.Choice.BASELINE));
        assertSame(VECTORIZED, GPT2Kernels.of(CpuKernels.Choice.VECTORIZED));
    }

    /** The fused matmul + GELU; shapes past one block of outputs (96) and of positions (256) of the fast matmul. */
    @ParameterizedTest(name = "BT={0} C={1} OC={2}")
    @CsvSource({"1,1,1", "3,5,7", "7,13,100", "300,20,200", "64,48,192"})
    void matmulGeluForward(int BT, int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(BT * 1000 + C * 10 + OC);
            var inp = random(arena, (long) BT * C, random);
            var weight = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            var out = random(arena, (long) BT * OC, random);
            var gelu = random(arena, (long) BT * OC, random);
            assertSameOutputs(
                    new MemorySegment[] {out, gelu, inp, weight, bias},
                    (k, b) -> k.matmulGeluForward(b[0], b[1], b[2], b[3], b[4], BT, C, OC),
                    1e-6,
                    "matmul + gelu forward");
        }
    }

    @ParameterizedTest(name = "B={0} T={1} C={2}")
    @CsvSource({"1,1,1", "2,3,5", "1,7,17", "2,5,48", "3,4,100"})
    void layers(int B, int T, int C) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(B * 1000 + T * 10 + C);
            long btc = (long) B * T * C, bt = (long) B * T;
            var inp = random(arena, btc, random);
            var out = random(arena, btc, random);
            var other = random(arena, btc, random);
            var weight = random(arena, C, random);
            var bias = random(arena, C, random);
            var mean = random(arena, bt, random);
            var rstd = random(arena, bt, random);
            int V = 11;
            var wte = random(arena, (long) V * C, random);
            var wpe = random(arena, (long) T * C, random);
            int[] tokens = random.ints(B * T, 0, V).toArray();
            tokens[0] = tokens[B * T - 1]; // a repeated token

            assertSameOutputs(
                    new MemorySegment[] {out, mean, rstd, inp, weight, bias},
                    (k, b) -> k.layernormForward(b[0], b[1], b[2], b[3], b[4], b[5], B, T, C),
                    1e-6,
                    "layernorm forward");
            var residual = random(arena, btc, random);
            assertSameOutputs(
                    new MemorySegment[] {residual, out, mean, rstd, inp, other, weight, bias},
                    (k, b) -> k.residualLayernormForward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], B, T, C),
                    1e-6,
                    "fused residual + layernorm forward");
            GPT2.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
            var dweight = random(arena, C, random);
            var dbias = random(arena, C, random);
            assertSameOutputs(
                    new MemorySegment[] {other, dweight, dbias, out, inp, weight, mean, rstd},
                    (k, b) -> k.layernormBackward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], B, T, C),
                    1e-6,
                    "layernorm backward");

            for (long i = 0; i < btc; i++)
                inp.setAtIndex(ValueLayout.JAVA_FLOAT, i, 3 * inp.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            assertSameOutputs(
                    new MemorySegment[] {out, inp}, (k, b) -> k.geluForward(b[0], b[1], btc), 1e-6, "gelu forward");
            assertSameOutputs(
                    new MemorySegment[] {other, inp, out},
                    (k, b) -> k.geluBackward(b[0], b[1], b[2], btc),
                    1e-6,
                    "gelu backward");
            assertSameOutputs(
                    new MemorySegment[] {out, inp, other},
                    (k, b) -> k.residualForward(b[0], b[1], b[2], btc),
                    1e-7,
                    "residual forward");
            assertSameOutputs(
                    new MemorySegment[] {out, inp, other},
                    (k, b) -> k.residualBackward(b[0], b[1], b[2], btc),
                    1e-7,
                    "residual backward");
            assertSameOutputs(
                    new MemorySegment[] {out, wte, wpe},
                    (k, b) -> k.encoderForward(b[0], tokens, b[1], b[2], B, T, C),
                    1e-7,
                    "encoder forward");
            assertSameOutputs(
                    new MemorySegment[] {wte, wpe, out},
                    (k, b) -> k.encoderBackward(b[0], b[1], b[2], tokens, B, T, C),
                    1e-6,
                    "encoder backward");
        }
    }
}
