package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import java.lang.foreign.MemorySegment;

/** Residual connection: out = a + b; the gradient flows to both unchanged. */
public final class Residual {
    private Residual() {}

    public static void forward(MemorySegment out, MemorySegment a, MemorySegment b, long N) {
        if (Kernels.fast()) { FastKernels.residualForward(out, a, b, N); return; }
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) set(out, i, get(a, i) + get(b, i));
        });
    }

    public static void backward(MemorySegment da, MemorySegment db, MemorySegment dout, long N) {
        if (Kernels.fast()) { FastKernels.residualBackward(da, db, dout, N); return; }
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) {
                float d = get(dout, i);
                add(da, i, d);
                add(db, i, d);
            }
        });
    }
}
