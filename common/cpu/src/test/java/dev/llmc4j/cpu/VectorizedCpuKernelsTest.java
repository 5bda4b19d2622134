package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.CpuKernels.BASELINE;
import static dev.llmc4j.cpu.CpuKernels.VECTORIZED;
import static dev.llmc4j.cpu.MatmulTest.random;
import static dev.llmc4j.cpu.MatmulTest.relativeError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
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
 * {@link CpuKernels#VECTORIZED}'s softmax/cross-entropy, AdamW, residual and attention equal
 * {@link CpuKernels#BASELINE}'s to fp32 rounding, on shapes that are not multiples of the vector width. Each case
 * runs the baseline kernel and the vectorized one on copies of the same inputs (outputs start nonzero where the
 * kernels accumulate) and compares every buffer they write. (The matmuls: {@link MatmulTest}.)
 */
public class VectorizedCpuKernelsTest {

    /**
     * Runs body with the baseline set, then with the fast set, each on its own copies of the buffers, and compares
     * all of them. K: CpuKernels or a model's kernel set that extends it.
     */
    public static <K> void assertSame(
            K baseline,
            K fast,
            MemorySegment[] buffers,
            BiConsumer<K, MemorySegment[]> body,
            double tolerance,
            String what) {
        try (var arena = Arena.ofShared()) { // shared: the kernels run on our pool's threads
            MemorySegment[][] copies = new MemorySegment[2][buffers.length];
            for (int version = 0; version < 2; version++) {
                for (int k = 0; k < buffers.length; k++) {
                    copies[version][k] =
                            arena.allocate(buffers[k].byteSize(), 64).copyFrom(buffers[k]);
                }
                body.accept(version == 0 ? baseline : fast, copies[version]);
            }
            for (int k = 0; k < buffers.length; k++) {
                long n = buffers[k].byteSize() / Float.BYTES;
                double error = relativeError(copies[1][k], copies[0][k], n);
                assertTrue(error < tolerance, what + " buffer " + k + ": relative error " + error);
            }
        }
    }

    @ParameterizedTest(name = "BT={0} V={1} Vp={2}")
    @CsvSource({"1,1,1", "3,5,8", "4,37,40", "5,100,128", "2,1000,1003"})
    void softmaxAndCrossEntropy(int BT, int V, int Vp) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(V);
            var logits = random(arena, (long) BT * Vp, random);
            var probs = random(arena, (long) BT * Vp, random);
            var dlogits = random(arena, (long) BT * Vp, random);
            var dlosses = random(arena, BT, random);
            int[] targets = random.ints(BT, 0, V).toArray();
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {probs, logits},
                    (k, b) -> k.softmaxForward(b[0], b[1], BT, V, Vp),
                    1e-6,
                    "softmax");
            SoftmaxCrossEntropy.softmaxForward(probs, logits, BT, V, Vp);
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {dlogits, dlosses, probs},
                    (k, b) -> k.crossentropySoftmaxBackward(b[0], b[1], b[2], targets, BT, V, Vp),
                    1e-6,
                    "crossentropy backward");
        }
    }

    /**
     * Softmax and cross-entropy without the probabilities (each row's max and sum kept, the backward recomputing
     * them) equal both the baseline's and the softmax-then-cross-entropy kernels' (losses, and dlogits written over a
     * nonzero start).
     */
    @ParameterizedTest(name = "BT={0} V={1} Vp={2}")
    @CsvSource({"1,2,2", "3,5,8", "4,37,40", "5,100,128", "2,1000,1003", "3,32768,32768"})
    void softmaxCrossEntropyInOnePass(int BT, int V, int Vp) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(V);
            var logits = random(arena, (long) BT * Vp, random);
            var losses = random(arena, BT, random);
            var maxAndSum = random(arena, 2L * BT, random);
            var dlogits = random(arena, (long) BT * Vp, random);
            var dlosses = random(arena, BT, random);
            int[] targets = random.ints(BT, 0, V).toArray();
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {losses, maxAndSum, logits},
                    (k, b) -> k.softmaxCrossEntropyForward(b[0], b[1], b[2], targets, BT, V, Vp),
                    1e-5, // sums of V exponentials: the baseline's one running sum drifts as √V (2.4e-6 at 32k)
                    "softmax + crossentropy");
            SoftmaxCrossEntropy.softmaxCrossEntropyForward(losses, maxAndSum, logits, targets, BT, V, Vp);
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {dlogits, dlosses, logits, maxAndSum},
                    (k, b) -> k.softmaxCrossEntropyBackward(b[0], b[1], b[2], b[3], targets, BT, V, Vp),
                    1e-6,
                    "softmax + crossentropy backward");

            // the same as through the probabilities
            var probs = arena.allocate((long) BT * Vp * Float.BYTES, 64);
            var lossesViaProbs = arena.allocate((long) BT * Float.BYTES, 64);
            var dlogitsViaProbs = arena.allocate((long) BT * Vp * Float.BYTES, 64); // zero: that backward adds
            SoftmaxCrossEntropy.softmaxForward(probs, logits, BT, V, Vp);
            SoftmaxCrossEntropy.crossentropyForward(lossesViaProbs, probs, targets, BT, Vp);
            SoftmaxCrossEntropy.crossentropySoftmaxBackward(dlogitsViaProbs, dlosses, probs, targets, BT, V, Vp);
            SoftmaxCrossEntropy.softmaxCrossEntropyBackward(dlogits, dlosses, logits, maxAndSum, targets, BT, V, Vp);
            assertTrue(relativeError(losses, lossesViaProbs, BT) < 1e-6, "losses");
            assertTrue(relativeError(dlogits, dlogitsViaProbs, (long) BT * Vp) < 1e-6, "dlogits");
        }
    }

    @ParameterizedTest(name = "offset={0} count={1}")
    @CsvSource({"0,1", "3,17", "5,100", "0,1000", "16,33"})
    void adamw(int offset, int count) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(count);
            long n = offset + count + 5;
            var params = random(arena, n, random);
            var grads = random(arena, n, random);
            var m = random(arena, n, random);
            var v = random(arena, n, random);
            for (long i = 0; i < n; i++)
                v.setAtIndex(ValueLayout.JAVA_FLOAT, i, Math.abs(v.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
            var step = new AdamW.Step(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 3);
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {params, grads, m, v},
                    (k, b) -> k.adamwUpdate(b[0], b[1], b[2], b[3], offset, count, step),
                    1e-6,
                    "adamw");
        }
    }

    /** Multi-head (NKV = NH) and grouped-query (NKV < NH, each key/value head shared by NH / NKV query heads). */
    @ParameterizedTest(name = "B={0} T={1} C={2} NH={3} NKV={4}")
    @CsvSource({
        "1,1,4,1,1",
        "2,5,12,3,3",
        "1,17,40,2,2",
        "2,9,64,4,4",
        "1,33,96,2,2",
        "2,5,12,3,1",
        "2,9,64,4,2",
        "1,17,60,6,3",
        "1,33,96,8,2",
        "1,250,96,2,2", // several blocks of 120 queries, a ragged last one
        "2,130,40,4,2" // hs 10: narrower than a vector
    })
    void attention(int B, int T, int C, int NH, int NKV) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(T * 100 + C + NKV);
            int hs = C / NH;
            long btc = (long) B * T * C, att = (long) B * NH * T * T, qkv = (long) B * T * (NH + 2 * NKV) * hs;
            var inp = random(arena, qkv, random);
            var out = random(arena, btc, random);
            var preatt = random(arena, att, random);
            var attention = random(arena, att, random);
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {out, preatt, attention, inp},
                    (k, b) -> k.attentionForward(b[0], b[1], b[2], b[3], B, T, NH, NKV, hs),
                    1e-6,
                    "attention forward");
            CausalSelfAttention.forward(out, preatt, attention, inp, B, T, NH, NKV, hs);
            var dinp = random(arena, qkv, random);
            var dpreatt = random(arena, att, random);
            var datt = random(arena, att, random);
            var dout = random(arena, btc, random);
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {dinp, dpreatt, datt, dout, inp, attention},
                    (k, b) -> k.attentionBackward(b[0], b[1], b[2], b[3], b[4], b[5], B, T, NH, NKV, hs),
                    1e-5,
                    "attention backward");
        }
    }

    @ParameterizedTest(name = "N={0}")
    @CsvSource({"1", "7", "100", "1000"})
    void residual(int N) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(N);
            var out = random(arena, N, random);
            var a = random(arena, N, random);
            var b = random(arena, N, random);
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {out, a, b},
                    (k, m) -> k.residualForward(m[0], m[1], m[2], N),
                    1e-7,
                    "residual forward");
            assertSame(
                    BASELINE,
                    VECTORIZED,
                    new MemorySegment[] {out, a, b},
                    (k, m) -> k.residualBackward(m[0], m[1], m[2], N),
                    1e-7,
                    "residual backward");
        }
    }

    @Test
    void theSetsSayWhatTheyAre() {
        assertEquals("baseline", BASELINE.name());
        assertEquals("vectorized", VECTORIZED.name());
        assertEquals(List.of(), VECTORIZED.missingFastVersions());
        assertEquals(CpuKernels.Choice.VECTORIZED, CpuKernels.Choice.parse("fast"));
        assertEquals(CpuKernels.Choice.BASELINE, CpuKernels.Choice.parse("Baseline"));
        var error = assertThrows(LlmcException.class, () -> CpuKernels.Choice.parse("turbo"));
        assertEquals("kernels (-Dllmc.kernels): expected baseline or vectorized, found turbo", error.getMessage());
    }
}
