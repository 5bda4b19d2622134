package dev.llmc4j.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The Vector API matmul must equal the baseline to fp32 rounding, on ragged shapes too. */
public class MatmulTest {

    public static MemorySegment random(Arena arena, long n, Random random) {
        var segment = arena.allocate(n * Float.BYTES, 64);
        for (long i = 0; i < n; i++) segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
        return segment;
    }

    public static double relativeError(MemorySegment a, MemorySegment b, long n) {
        double diff = 0, norm = 0;
        for (long i = 0; i < n; i++) {
            double x = a.getAtIndex(ValueLayout.JAVA_FLOAT, i), y = b.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            diff += (x - y) * (x - y);
            norm += y * y;
        }
        return Math.sqrt(diff / norm);
    }

    /**
     * How far two fp32 results of sums of K products may differ: 1e-6, more for long sums, where the baseline's one
     * running sum drifts as √K (at K = 4,500 it is 1.2e-6 from the exact sums in double, the register tiles' sums in
     * blocks 0.4e-6).
     */
    private static double tolerance(int K) {
        return 1e-6 * Math.max(1, Math.sqrt(K / 1024.0));
    }

    @ParameterizedTest(name = "BT={0} C={1} OC={2}")
    @CsvSource({
        "1,1,1",
        "3,5,7",
        "4,8,4",
        "8,16,12",
        "13,33,17",
        "64,64,96",
        "37,130,75",
        "256,768,20",
        "263,257,67",
        "7,1031,130",
        "300,70,521", // several k blocks (the backward's 512 over OC), a leftover row of the tile
        "600,40,30", // dweight over two k blocks of positions (512 + 88)
        // the forward's two ways: weight rows packed transposed (two batches of them per thread: C ragged, K in three
        // blocks of 512 + 1,476), or positions transposed (one block of them, then two: 512 + 1)
        "460,4500,470",
        "40,300,530",
        "513,1100,1100"
    })
    void vectorEqualsBaseline(int BT, int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(BT * 1000 + C * 10 + OC);
            var inp = random(arena, (long) BT * C, random);
            var weight = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            var dout = random(arena, (long) BT * OC, random);
            MemorySegment[] outs = new MemorySegment[2],
                    dinps = new MemorySegment[2],
                    dweights = new MemorySegment[2],
                    dbiases = new MemorySegment[2];
            var kernels = new Matmul[] {Matmul.BASELINE, Matmul.VECTOR};
            for (int k = 0; k < 2; k++) {
                outs[k] = arena.allocate((long) BT * OC * Float.BYTES, 64);
                dinps[k] = random(arena, (long) BT * C, new Random(7)); // same nonzero start: backward accumulates
                dweights[k] = random(arena, (long) OC * C, new Random(8));
                dbiases[k] = random(arena, OC, new Random(9));
                kernels[k].forward(outs[k], inp, weight, bias, BT, C, OC);
                kernels[k].backward(dinps[k], dweights[k], dbiases[k], dout, inp, weight, BT, C, OC);
            }
            assertTrue(relativeError(outs[1], outs[0], (long) BT * OC) < tolerance(C), "forward");
            assertTrue(relativeError(dinps[1], dinps[0], (long) BT * C) < tolerance(OC), "dinp");
            assertTrue(relativeError(dweights[1], dweights[0], (long) OC * C) < tolerance(BT), "dweight");
            assertTrue(relativeError(dbiases[1], dbiases[0], OC) < tolerance(BT), "dbias");
        }
    }

    /**
     * Without accumulate, both kernels overwrite dweight and dbias and never read them: they start as NaN here, which
     * would poison any sum. dinp still accumulates.
     */
    @ParameterizedTest(name = "BT={0} C={1} OC={2}")
    @CsvSource({"1,1,1", "13,33,17", "263,257,67", "300,70,521", "600,65,13"})
    void overwrittenGradientsIgnoreTheirOldValues(int BT, int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(BT * 1000 + C * 10 + OC);
            var inp = random(arena, (long) BT * C, random);
            var weight = random(arena, (long) OC * C, random);
            var dout = random(arena, (long) BT * OC, random);
            var expectedWeight = arena.allocate((long) OC * C * Float.BYTES, 64);
            var expectedBias = arena.allocate((long) OC * Float.BYTES, 64);
            var expectedInp = random(arena, (long) BT * C, new Random(7));
            Matmul.BASELINE.backward(expectedInp, expectedWeight, expectedBias, dout, inp, weight, BT, C, OC);
            for (var kernel : new Matmul[] {Matmul.BASELINE, Matmul.VECTOR}) {
                var dinp = random(arena, (long) BT * C, new Random(7));
                var dweight = arena.allocate((long) OC * C * Float.BYTES, 64);
                var dbias = arena.allocate((long) OC * Float.BYTES, 64);
                for (long i = 0; i < (long) OC * C; i++) dweight.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
                for (long i = 0; i < OC; i++) dbias.setAtIndex(ValueLayout.JAVA_FLOAT, i, Float.NaN);
                kernel.backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, false);
                assertTrue(relativeError(dinp, expectedInp, (long) BT * C) < 1e-6, "dinp");
                assertTrue(relativeError(dweight, expectedWeight, (long) OC * C) < 1e-6, "dweight");
                assertTrue(relativeError(dbias, expectedBias, OC) < 1e-6, "dbias");
            }
        }
    }

    /** The fast forward's epilogue covers every output exactly once, after the output is written (here: doubles it). */
    @ParameterizedTest(name = "BT={0} C={1} OC={2}")
    @CsvSource({"1,1,1", "5,3,7", "300,20,200", "257,9,97", "20,300,200"}) // the last: positions transposed
    void epilogueSeesEveryOutputOnce(int BT, int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(BT + C + OC);
            var inp = random(arena, (long) BT * C, random);
            var weight = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            var expected = arena.allocate((long) BT * OC * Float.BYTES, 64);
            var doubled = arena.allocate((long) BT * OC * Float.BYTES, 64);
            Matmul.BASELINE.forward(expected, inp, weight, bias, BT, C, OC);
            for (long i = 0; i < (long) BT * OC; i++)
                expected.setAtIndex(ValueLayout.JAVA_FLOAT, i, 2 * expected.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            Matmul.VECTOR.forward(doubled, inp, weight, bias, BT, C, OC, (btStart, btEnd, oStart, oEnd) -> {
                for (long bt = btStart; bt < btEnd; bt++)
                    for (long o = oStart; o < oEnd; o++) {
                        long i = bt * OC + o;
                        doubled.setAtIndex(
                                ValueLayout.JAVA_FLOAT, i, 2 * doubled.getAtIndex(ValueLayout.JAVA_FLOAT, i));
                    }
            });
            assertTrue(relativeError(doubled, expected, (long) BT * OC) < 1e-6, "epilogue");
        }
    }

    /**
     * The GEMM under every fast matmul and attention, against a triple loop, for each way A can lie in memory: rows
     * contiguous, transposed (columns contiguous), or strided both ways; B's rows longer than N. Ragged sizes cover
     * partial tiles, several k blocks (512), several A blocks (144 rows) and a K too long for one packed chunk of B
     * (20,000 x 70). Each case also overwrites C (accumulate false) from NaN.
     */
    @ParameterizedTest(name = "M={0} N={1} K={2} A={3}")
    @CsvSource({
        "1,1,1,rows",
        "7,65,3,rows",
        "150,70,700,rows",
        "13,129,257,transposed",
        "150,64,40,transposed",
        "151,70,600,transposed", // a second A block of 7 rows: its last panel padded, in both k blocks
        "6,64,256,strided",
        "31,100,513,strided",
        "5,70,20000,rows"
    })
    void gemmEqualsTripleLoop(int M, int N, int K, String aLayout) {
        gemmEqualsTripleLoop(M, N, K, aLayout, true);
        gemmEqualsTripleLoop(M, N, K, aLayout, false);
    }

    private static void gemmEqualsTripleLoop(int M, int N, int K, String aLayout, boolean accumulate) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(M * 31 + N * 7 + K);
            long aRowStride, aColStride;
            switch (aLayout) {
                case "rows" -> {
                    aRowStride = K;
                    aColStride = 1;
                }
                case "transposed" -> {
                    aRowStride = 1;
                    aColStride = M;
                }
                default -> {
                    aRowStride = 2L * K + 1;
                    aColStride = 2;
                }
            }
            long aOffset = 5, ldb = N + 3, ldc = N + 2;
            var a = random(arena, aOffset + (M - 1) * aRowStride + (K - 1) * aColStride + 1, random);
            var b = random(arena, (long) K * ldb, random);
            var c = random(arena, (long) M * ldc, random);
            var expected = arena.allocate(c.byteSize(), 64).copyFrom(c);
            if (!accumulate) { // C's values between rows (n >= N) stay; the rest is NaN, and must never be read
                for (long m = 0; m < M; m++)
                    for (long n = 0; n < N; n++) c.setAtIndex(ValueLayout.JAVA_FLOAT, m * ldc + n, Float.NaN);
            }
            for (long m = 0; m < M; m++)
                for (long n = 0; n < N; n++) {
                    double sum = accumulate ? expected.getAtIndex(ValueLayout.JAVA_FLOAT, m * ldc + n) : 0;
                    for (long k = 0; k < K; k++)
                        sum += (double) a.getAtIndex(ValueLayout.JAVA_FLOAT, aOffset + m * aRowStride + k * aColStride)
                                * b.getAtIndex(ValueLayout.JAVA_FLOAT, k * ldb + n);
                    expected.setAtIndex(ValueLayout.JAVA_FLOAT, m * ldc + n, (float) sum);
                }
            VectorMatmul.gemm(c, ldc, a, aOffset, aRowStride, aColStride, b, ldb, M, N, K, accumulate);
            assertTrue(relativeError(c, expected, (long) M * ldc) < 1e-6, "gemm, accumulate " + accumulate);
        }
    }
}
