package dev.llmc4j.bench;

import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.cpu.VectorMath;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Locale;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The two limits every figure is measured against, on this machine, through the same Vector API and the same
 * threads ({@link Parallel}) the kernels use:
 *
 * <ul>
 *   <li><b>fp32 FMA peak</b> (GFLOP/s): every thread runs 12 independent chains of vector FMAs on
 *       registers, no memory. 8 chains would just cover an FMA latency of 4 cycles on 2 FMA units, and measured 5
 *       to 10% below 12 on this Zen 5 (the matmul micro-kernel, 24 chains, ran faster than such a "peak"); 12
 *       still fit in AVX2's 16 vector registers with the two operands. A training step (matmul-bound) is
 *       quoted as a fraction of it.</li>
 *   <li><b>read bandwidth</b> (GB/s): every thread sums its own contiguous half of a buffer far larger than the
 *       caches, in vectors. Generation with a KV cache reads every weight once per token, so its limit is this
 *       bandwidth divided by the weight bytes of one token.</li>
 * </ul>
 *
 * Each is the best of several rounds after warm-up rounds (the JIT compiles the loops first; on a shared machine
 * the best round is the one least disturbed). {@code java ... dev.llmc4j.bench.MachineLimits} prints both, one
 * {@code name value} line each, for scripts. On a loaded machine the limits move with the load: the benchmarks
 * then also probe them between the runs they measure ({@link #fmaPeakRound}, {@link ReadProbe}) and quote each run
 * against the larger of the measured limit and the probe beside it.
 */
public record MachineLimits(double peakGflops, double readGBytesPerSecond) {
    private static final VectorSpecies<Float> S = VectorMath.SPECIES;
    private static final long BANDWIDTH_BYTES = 512L << 20; // 512 MiB: far beyond any L3 cache

    /** Measures both (a few seconds). */
    public static MachineLimits measure() {
        return new MachineLimits(measureFmaPeak(), measureReadBandwidth());
    }

    /** One line: "fp32 FMA peak X GFLOP/s, read bandwidth Y GB/s (N threads, B-bit vectors)". */
    public String describe() {
        return String.format(
                Locale.ROOT,
                "fp32 FMA peak %.1f GFLOP/s, read bandwidth %.1f GB/s (%d threads, %d-bit vectors)",
                peakGflops,
                readGBytesPerSecond,
                Parallel.threads(),
                S.vectorBitSize());
    }

    public static void main(String[] args) {
        var limits = measure();
        System.out.printf(Locale.ROOT, "peak_gflops %.1f%n", limits.peakGflops());
        System.out.printf(Locale.ROOT, "read_gbps %.1f%n", limits.readGBytesPerSecond());
        System.out.println("# " + limits.describe());
    }

    /** All threads, 12 FMA chains each, best of 6 rounds of about 15 ms (at 400 GFLOP/s) after 3 warm-up rounds. */
    static double measureFmaPeak() {
        double best = 0;
        for (int round = 0; round < 9; round++) {
            double gflops = fmaPeakRound(80);
            if (round >= 3) best = Math.max(best, gflops);
        }
        return best;
    }

    /** The flops of one {@link #fmaPeakRound}: 12 chains of 2 flops per lane, 100,000 steps per call, every thread. */
    public static double fmaRoundFlops(int calls) {
        return (double) CHAINS * 2 * S.length() * FMA_STEPS * calls * Parallel.threads();
    }

    private static final int FMA_STEPS = 100_000;
    private static final int CHAINS = 12;

    /** One round of the peak: every thread runs {@code calls} x 100,000 steps of 12 FMA chains; GFLOP/s. */
    public static double fmaPeakRound(int calls) {
        int threads = Parallel.threads(), iterations = FMA_STEPS;
        float[] sink = new float[threads];
        long start = System.nanoTime();
        Parallel.forRange(threads, (first, end) -> {
            for (long thread = first; thread < end; thread++)
                for (int call = 0; call < calls; call++) sink[(int) thread] += fmaChains(iterations);
        });
        double seconds = (System.nanoTime() - start) / 1e9;
        if (sink[0] == 42) System.out.print(""); // keeps the sums alive
        return fmaRoundFlops(calls) / seconds / 1e9;
    }

    private static float fmaChains(int iterations) { // CHAINS sums, each its own chain of FMAs
        var x = FloatVector.broadcast(S, 0.999f);
        var y = FloatVector.broadcast(S, 1e-6f);
        var a0 = FloatVector.zero(S);
        var a1 = a0;
        var a2 = a0;
        var a3 = a0;
        var a4 = a0;
        var a5 = a0;
        var a6 = a0;
        var a7 = a0;
        var a8 = a0;
        var a9 = a0;
        var a10 = a0;
        var a11 = a0;
        for (int i = 0; i < iterations; i++) {
            a0 = a0.fma(x, y);
            a1 = a1.fma(x, y);
            a2 = a2.fma(x, y);
            a3 = a3.fma(x, y);
            a4 = a4.fma(x, y);
            a5 = a5.fma(x, y);
            a6 = a6.fma(x, y);
            a7 = a7.fma(x, y);
            a8 = a8.fma(x, y);
            a9 = a9.fma(x, y);
            a10 = a10.fma(x, y);
            a11 = a11.fma(x, y);
        }
        var sum = a0.add(a1)
                .add(a2)
                .add(a3)
                .add(a4)
                .add(a5)
                .add(a6)
                .add(a7)
                .add(a8)
                .add(a9)
                .add(a10)
                .add(a11);
        return sum.reduceLanes(VectorOperators.ADD);
    }

    /** All threads, each summing its contiguous part of 512 MiB, best of 6 passes after 2 warm-up passes. */
    static double measureReadBandwidth() {
        try (var probe = new ReadProbe()) {
            probe.gigabytesPerSecond(2);
            return probe.gigabytesPerSecond(6);
        }
    }

    /** A buffer far larger than the caches (512 MiB), every page touched, and timed reads of it. */
    public static final class ReadProbe implements AutoCloseable {
        private final Arena arena = Arena.ofShared();
        private final MemorySegment buffer = arena.allocate(BANDWIDTH_BYTES, 64);

        public ReadProbe() {
            Parallel.forRange(
                    BANDWIDTH_BYTES / Float.BYTES, (start, end) -> { // each page from the thread that reads it
                        for (long i = start; i < end; i += 1024) buffer.setAtIndex(ValueLayout.JAVA_FLOAT, i, 1f);
                    });
            // compile the reading loop before it is timed: a pass calls it once per thread, too few calls for the JIT
            // to compile the method itself (each call would start interpreted and switch over mid-loop)
            float sink = 0;
            for (int call = 0; call < 20_000; call++) sink += sum(buffer, 0, 16L * S.vectorByteSize());
            if (sink == 42) System.out.print("");
        }

        /** The bytes one pass reads. */
        public long bytes() {
            return BANDWIDTH_BYTES;
        }

        /** The best of {@code passes} reads of the whole buffer by all threads, GB/s. */
        public double gigabytesPerSecond(int passes) {
            long vectorBytes = S.vectorByteSize();
            long vectors = BANDWIDTH_BYTES / vectorBytes;
            float[] sink = new float[1];
            double best = 0;
            for (int pass = 0; pass < passes; pass++) {
                long start = System.nanoTime();
                Parallel.forRange(vectors, 4, (first, end) -> {
                    float sum = sum(buffer, first * vectorBytes, end * vectorBytes);
                    synchronized (sink) {
                        sink[0] += sum;
                    }
                });
                best = Math.max(best, BANDWIDTH_BYTES / ((System.nanoTime() - start) / 1e9) / 1e9);
            }
            return best;
        }

        @Override
        public void close() {
            arena.close();
        }
    }

    // bytes [from, to) of m as floats, four vectors per step (four independent sums); to - from is a multiple of 4
    // vectors
    private static float sum(MemorySegment m, long from, long to) {
        var order = ByteOrder.nativeOrder();
        long step = S.vectorByteSize();
        var s0 = FloatVector.zero(S);
        var s1 = s0;
        var s2 = s0;
        var s3 = s0;
        for (long at = from; at < to; at += 4 * step) {
            s0 = s0.add(FloatVector.fromMemorySegment(S, m, at, order));
            s1 = s1.add(FloatVector.fromMemorySegment(S, m, at + step, order));
            s2 = s2.add(FloatVector.fromMemorySegment(S, m, at + 2 * step, order));
            s3 = s3.add(FloatVector.fromMemorySegment(S, m, at + 3 * step, order));
        }
        return s0.add(s1).add(s2).add(s3).reduceLanes(VectorOperators.ADD);
    }
}
