package dev.llmc4j.bench;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.SplittableRandom;
import org.openjdk.jmh.annotations.AuxCounters;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;

/** Inputs for the kernel benchmarks, and the counters they report. */
public final class Data {
    private Data() {}

    /** n floats, normal(0, 1), 64-byte aligned. */
    public static MemorySegment random(Arena arena, long n, long seed) {
        var random = new SplittableRandom(seed);
        var segment = arena.allocate(n * Float.BYTES, 64);
        for (long i = 0; i < n; i++) segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
        return segment;
    }

    public static MemorySegment zeros(Arena arena, long n) {
        return arena.allocate(n * Float.BYTES, 64);
    }

    /** JMH reports this counter as a rate: GFLOP/s when a benchmark adds its GFLOP per call. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Flops {
        public double gflops;

        @Setup(Level.Iteration)
        public void reset() {
            gflops = 0;
        }
    }

    /** The same for memory-bound kernels: GB/s of the bytes a call must read and write. */
    @AuxCounters(AuxCounters.Type.OPERATIONS)
    @State(Scope.Thread)
    public static class Bytes {
        public double gbytes;

        @Setup(Level.Iteration)
        public void reset() {
            gbytes = 0;
        }
    }
}
