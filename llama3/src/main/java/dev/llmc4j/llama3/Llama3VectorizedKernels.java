package dev.llmc4j.llama3;

import static dev.llmc4j.cpu.VectorMath.LANES;
import static dev.llmc4j.cpu.VectorMath.SPECIES;
import static dev.llmc4j.cpu.VectorMath.inRow;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.cpu.VectorMath;
import dev.llmc4j.cpu.VectorizedCpuKernels;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import java.util.List;
import jdk.incubator.vector.FloatVector;

/**
 * {@link Llama3Kernels#VECTORIZED}: the shared vectorized layers ({@link VectorizedCpuKernels}) plus the fast
 * versions of Llama3.java's own layers that exist so far: the same arithmetic as the plain loops there, LANES floats
 * at a time with the Vector API (a masked vector for the ragged end of a row), reductions in
 * {@link VectorMath#sum}'s fixed order. Tests compare every override with the baseline it replaces
 * (Llama3KernelsTest).
 */
final class Llama3VectorizedKernels extends VectorizedCpuKernels implements Llama3Kernels {

    // Vector loads and stores are written out (byte offsets = 4 * index), as in GPT2VectorizedKernels: C2 keeps
    // vectors in registers only when these calls inline.
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    @Override
    public List<String> missingFastVersions() {
        return List.of("embedding", "rope", "swiglu", "grouped-query attention (NKV < NH)");
    }

    @Override
    public void rmsnormForward(MemorySegment out, MemorySegment rstd, MemorySegment inp, MemorySegment weight,
                               long rows, int C, float eps) {
        Parallel.forRange(rows, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * C;
                var sumOfSquares = FloatVector.zero(SPECIES); // masked loads: the lanes past the row add 0
                for (int i = 0; i < C; i += LANES) {
                    var x = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER, inRow(i, C));
                    sumOfSquares = x.fma(x, sumOfSquares);
                }
                float s = (float) (1.0 / Math.sqrt(VectorMath.sum(sumOfSquares) / C + eps));
                for (int i = 0; i < C; i += LANES) {
                    var mask = inRow(i, C);
                    var x = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER, mask);
                    var w = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER, mask);
                    x.mul(s).mul(w).intoMemorySegment(out, (row + i) * 4L, ORDER, mask);
                }
                if (rstd != null) rstd.setAtIndex(JAVA_FLOAT, bt, s);
            }
        });
    }

    /** Rows split into one chunk per thread; each chunk sums its dweight in its own padded array, added in order. */
    @Override
    public void rmsnormBackward(MemorySegment dinp, MemorySegment dweight, MemorySegment dout, MemorySegment inp,
                                MemorySegment weight, MemorySegment rstd, long rows, int C) {
        int chunks = Parallel.threads();
        int padded = (C + LANES - 1) / LANES * LANES;
        float[][] partialDweight = new float[chunks][padded];
        Parallel.forRange(chunks, (firstChunk, endChunk) -> {
            for (long chunk = firstChunk; chunk < endChunk; chunk++) {
                float[] dw = partialDweight[(int) chunk];
                for (long bt = rows * chunk / chunks; bt < rows * (chunk + 1) / chunks; bt++) {
                    long row = bt * C;
                    float s = rstd.getAtIndex(JAVA_FLOAT, bt);
                    var gnSum = FloatVector.zero(SPECIES);
                    for (int i = 0; i < C; i += LANES) {
                        var mask = inRow(i, C);
                        var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER, mask).mul(s);
                        var w = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER, mask);
                        var g = w.mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER, mask));
                        gnSum = g.fma(n, gnSum);
                    }
                    float gnMean = VectorMath.sum(gnSum) / C;
                    for (int i = 0; i < C; i += LANES) {
                        var mask = inRow(i, C);
                        var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER, mask).mul(s);
                        var d = FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER, mask);
                        n.fma(d, FloatVector.fromArray(SPECIES, dw, i)).intoArray(dw, i);
                        var g = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER, mask).mul(d);
                        var dx = g.sub(n.mul(gnMean)).mul(s); // rstd * (g - n * mean(g n))
                        FloatVector.fromMemorySegment(SPECIES, dinp, (row + i) * 4L, ORDER, mask).add(dx)
                                .intoMemorySegment(dinp, (row + i) * 4L, ORDER, mask);
                    }
                }
            }
        });
        for (int chunk = 0; chunk < chunks; chunk++) { // fixed order: the same sums for the same thread count
            for (int i = 0; i < C; i += LANES) {
                var mask = inRow(i, C);
                FloatVector.fromMemorySegment(SPECIES, dweight, i * 4L, ORDER, mask)
                        .add(FloatVector.fromArray(SPECIES, partialDweight[chunk], i))
                        .intoMemorySegment(dweight, i * 4L, ORDER, mask);
            }
        }
    }
}
