package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.VectorMath.LANES;
import static dev.llmc4j.cpu.VectorMath.SPECIES;
import static dev.llmc4j.cpu.VectorMath.inRow;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import dev.llmc4j.cpu.Matmul;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.cpu.VectorMath;
import dev.llmc4j.cpu.VectorizedCpuKernels;
import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;

/**
 * {@link GPT2Kernels#VECTORIZED}: the shared vectorized layers ({@link VectorizedCpuKernels}) plus the fast versions
 * of GPT2.java's own layers (encoder, layernorm, GELU): the same arithmetic as the plain loops there, LANES floats at
 * a time with the Vector API (a masked vector for the ragged end of a row), tanh from {@link VectorMath}. Tests
 * compare every override with the baseline it replaces (GPT2KernelsTest).
 */
final class GPT2VectorizedKernels extends VectorizedCpuKernels implements GPT2Kernels {

    // Vector loads and stores are written out (fromMemorySegment, intoMemorySegment with byte offsets = 4 * index):
    // C2 only keeps vectors in registers when these calls inline, and tiny helper methods sometimes do not.
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    @Override
    public void encoderForward(
            MemorySegment out, int[] tokens, MemorySegment wte, MemorySegment wpe, int B, int T, int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long token = tokens[(int) bt], t = bt % T;
                VectorizedCpuKernels.add(out, bt * C, wte, token * C, wpe, t * C, C);
            }
        });
    }

    /** Parallel over channels: each thread owns columns of dwte and dwpe, so repeated tokens never collide. */
    @Override
    public void encoderBackward(
            MemorySegment dwte, MemorySegment dwpe, MemorySegment dout, int[] tokens, int B, int T, int C) {
        Parallel.forRange(C, LANES, (first, last) -> {
            int n = (int) (last - first);
            for (long bt = 0; bt < (long) B * T; bt++) {
                long token = tokens[(int) bt], t = bt % T, d = bt * C + first;
                VectorizedCpuKernels.add(dwte, token * C + first, dwte, token * C + first, dout, d, n);
                VectorizedCpuKernels.add(dwpe, t * C + first, dwpe, t * C + first, dout, d, n);
            }
        });
    }

    @Override
    public void layernormForward(
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) layernormRow(out, mean, rstd, inp, weight, bias, bt, C);
        });
    }

    /** One pass per row: the row of residual = a + b is written, then normalised while it is still in L1. */
    @Override
    public void residualLayernormForward(
            MemorySegment residual,
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment a,
            MemorySegment b,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                VectorizedCpuKernels.add(residual, bt * C, a, bt * C, b, bt * C, C);
                layernormRow(out, mean, rstd, residual, weight, bias, bt, C);
            }
        });
    }

    /**
     * Row bt of the layernorm: mean, then the variance about it (two passes, as the plain loop), then the output.
     * Each loop runs over whole vectors and then once, masked, over a ragged end (see {@link #layernormBackwardRow}
     * for what a mask on every vector cost).
     */
    private static void layernormRow(
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            long bt,
            int C) {
        long row = bt * C;
        int whole = C - C % LANES;
        var sum = FloatVector.zero(SPECIES);
        for (int i = 0; i < whole; i += LANES)
            sum = sum.add(FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER));
        if (whole < C) // masked: the lanes past the row add 0
        sum = sum.add(FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, inRow(whole, C)));
        float m = VectorMath.sum(sum) / C;
        var variance = FloatVector.zero(SPECIES);
        for (int i = 0; i < whole; i += LANES) {
            var shifted = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER)
                    .sub(m);
            variance = shifted.fma(shifted, variance);
        }
        if (whole < C) {
            var mask = inRow(whole, C);
            var shifted = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask)
                    .sub(m, mask); // masked: the lanes past the row stay 0
            variance = shifted.fma(shifted, variance);
        }
        float s = (float) (1.0 / Math.sqrt(VectorMath.sum(variance) / C + GPT2.LAYERNORM_EPS));
        normalizeRow(out, inp, weight, bias, row, m, s, C);
        mean.setAtIndex(JAVA_FLOAT, bt, m);
        rstd.setAtIndex(JAVA_FLOAT, bt, s);
    }

    /**
     * out = (inp - m) * s * weight + bias over one row: the forward's last loop and, being the same code, the
     * recompute's, so recompute level 2 gives the forward's bits.
     */
    private static void normalizeRow(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            long row,
            float m,
            float s,
            int C) {
        int whole = C - C % LANES;
        for (int i = 0; i < whole; i += LANES) {
            var normalized = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER)
                    .sub(m)
                    .mul(s);
            normalized
                    .fma(
                            FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER),
                            FloatVector.fromMemorySegment(SPECIES, bias, i * 4L, ORDER))
                    .intoMemorySegment(out, (row + i) * 4L, ORDER);
        }
        if (whole < C) {
            var mask = inRow(whole, C);
            var normalized = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask)
                    .sub(m)
                    .mul(s);
            normalized
                    .fma(
                            FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask),
                            FloatVector.fromMemorySegment(SPECIES, bias, whole * 4L, ORDER, mask))
                    .intoMemorySegment(out, (row + whole) * 4L, ORDER, mask);
        }
    }

    /** The last loop of {@link #layernormForward} alone, from the kept mean and rstd: the same bits. */
    @Override
    public void layernormRecompute(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * C;
                float m = mean.getAtIndex(JAVA_FLOAT, bt), s = rstd.getAtIndex(JAVA_FLOAT, bt);
                normalizeRow(out, inp, weight, bias, row, m, s, C);
            }
        });
    }

    @Override
    public void layernormBackward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dbias,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment mean,
            MemorySegment rstd,
            int B,
            int T,
            int C) {
        long rows = (long) B * T;
        int chunks = Parallel.threads();
        int padded = (C + LANES - 1) / LANES * LANES;
        float[][] partialDweight = new float[chunks][padded];
        float[][] partialDbias = new float[chunks][padded];
        Parallel.forRange(chunks, (firstChunk, endChunk) -> {
            for (long chunk = firstChunk; chunk < endChunk; chunk++) {
                float[] dw = partialDweight[(int) chunk], db = partialDbias[(int) chunk];
                for (long bt = rows * chunk / chunks; bt < rows * (chunk + 1) / chunks; bt++)
                    layernormBackwardRow(dinp, dw, db, dout, inp, weight, mean, rstd, bt, C);
            }
        });
        addPartialSums(dweight, partialDweight, C);
        addPartialSums(dbias, partialDbias, C);
    }

    /**
     * Row bt of the layernorm backward: dinp's row, and its share of dweight and dbias added into this thread's
     * partial sums dw and db. A method of its own, so the parallel loop around it stays small enough for C1 (which
     * gave up on the whole, "out of virtual registers", leaving it to the interpreter after each deoptimization),
     * and each pass a method of its own, whole vectors unmasked and one masked vector on a ragged end. (Written out
     * in one method with a mask on every vector, the row was too big for C1 too, and C2's code for it trapped and
     * was thrown away 4 times in a 6-step d12 run; meanwhile a call, 256 rows of 768, took 4 to 5.6 ms instead of
     * 0.2.) No vector crosses a method boundary: a per-vector helper that C2 compiled on its own first was then not
     * inlined into the row ("already compiled into a big method"), and every call boxed its vectors.
     */
    private static void layernormBackwardRow(
            MemorySegment dinp,
            float[] dw,
            float[] db,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment mean,
            MemorySegment rstd,
            long bt,
            int C) {
        long row = bt * C;
        float m = mean.getAtIndex(JAVA_FLOAT, bt);
        float s = rstd.getAtIndex(JAVA_FLOAT, bt);
        float gMean = sumOfWeightTimesGradient(dout, weight, row, C) / C;
        float gnMean = sumOfGradientTimesNormalized(dout, inp, weight, row, C, m, s) / C;
        addLayernormGradients(dinp, dw, db, dout, inp, weight, row, C, m, s, gMean, gnMean);
    }

    /** Σ weight · dout over the row. */
    private static float sumOfWeightTimesGradient(MemorySegment dout, MemorySegment weight, long row, int C) {
        int whole = C - C % LANES;
        var sum = FloatVector.zero(SPECIES);
        for (int i = 0; i < whole; i += LANES)
            sum = sum.add(FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER)
                    .mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER)));
        if (whole < C) {
            var mask = inRow(whole, C); // lanes off the mask load 0
            sum = sum.add(FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask)
                    .mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + whole) * 4L, ORDER, mask)));
        }
        return VectorMath.sum(sum);
    }

    /** Σ (weight · dout) n over the row, n = (inp - m) · s the normalized input. */
    private static float sumOfGradientTimesNormalized(
            MemorySegment dout, MemorySegment inp, MemorySegment weight, long row, int C, float m, float s) {
        int whole = C - C % LANES;
        var sum = FloatVector.zero(SPECIES);
        for (int i = 0; i < whole; i += LANES) {
            var g = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER)
                    .mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER));
            var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER)
                    .sub(m)
                    .mul(s);
            sum = g.fma(n, sum);
        }
        if (whole < C) {
            var mask = inRow(whole, C); // lanes off the mask: g = 0, so g n adds 0
            var g = FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask)
                    .mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + whole) * 4L, ORDER, mask));
            var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask)
                    .sub(m)
                    .mul(s);
            sum = g.fma(n, sum);
        }
        return VectorMath.sum(sum);
    }

    /**
     * Over the row: db += dout, dw += n · dout, dinp += s (g - mean(g) - n · mean(g n)), with n the normalized input
     * and g = weight · dout. dw and db are padded to whole vectors: their lanes past C add 0.
     */
    private static void addLayernormGradients(
            MemorySegment dinp,
            float[] dw,
            float[] db,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            long row,
            int C,
            float m,
            float s,
            float gMean,
            float gnMean) {
        int whole = C - C % LANES;
        for (int i = 0; i < whole; i += LANES) {
            var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER)
                    .sub(m)
                    .mul(s);
            var d = FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER);
            FloatVector.fromArray(SPECIES, db, i).add(d).intoArray(db, i);
            n.fma(d, FloatVector.fromArray(SPECIES, dw, i)).intoArray(dw, i);
            var g = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER)
                    .mul(d);
            var dx = g.sub(gMean).sub(n.mul(gnMean)).mul(s);
            FloatVector.fromMemorySegment(SPECIES, dinp, (row + i) * 4L, ORDER)
                    .add(dx)
                    .intoMemorySegment(dinp, (row + i) * 4L, ORDER);
        }
        if (whole < C) addLayernormGradientsTail(dinp, dw, db, dout, inp, weight, row, whole, C, m, s, gMean, gnMean);
    }

    /**
     * {@link #addLayernormGradients} on the ragged end, floats [whole, C) of the row, one masked vector: a method
     * of its own, as C1 gave up on the pass with it written out beside the loop ("out of virtual registers").
     */
    private static void addLayernormGradientsTail(
            MemorySegment dinp,
            float[] dw,
            float[] db,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            long row,
            int whole,
            int C,
            float m,
            float s,
            float gMean,
            float gnMean) {
        var mask = inRow(whole, C);
        var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask)
                .sub(m)
                .mul(s);
        var d = FloatVector.fromMemorySegment(SPECIES, dout, (row + whole) * 4L, ORDER, mask);
        FloatVector.fromArray(SPECIES, db, whole).add(d).intoArray(db, whole);
        n.fma(d, FloatVector.fromArray(SPECIES, dw, whole)).intoArray(dw, whole);
        var g = FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask)
                .mul(d);
        var dx = g.sub(gMean).sub(n.mul(gnMean)).mul(s);
        FloatVector.fromMemorySegment(SPECIES, dinp, (row + whole) * 4L, ORDER, mask)
                .add(dx)
                .intoMemorySegment(dinp, (row + whole) * 4L, ORDER, mask);
    }

    @Override
    public void geluForward(MemorySegment out, MemorySegment inp, long N) {
        Parallel.forRange(N, LANES, (start, end) -> gelu(out, inp, start, end));
    }

    /**
     * out[i] = gelu(inp[i]) for start <= i < end: whole vectors, then one masked vector for a ragged end. (A mask
     * on every vector of a long loop let C2 hoist a profiled check out of it that later failed, over and over: the
     * loop was deoptimized and recompiled dozens of times a step, running meanwhile in slow, unvectorized code.)
     */
    private static void gelu(MemorySegment out, MemorySegment inp, long start, long end) {
        long whole = end - (end - start) % LANES;
        for (long i = start; i < whole; i += LANES)
            gelu(FloatVector.fromMemorySegment(SPECIES, inp, i * 4L, ORDER)).intoMemorySegment(out, i * 4L, ORDER);
        if (whole < end) {
            var mask = SPECIES.indexInRange(0, (int) (end - whole));
            gelu(FloatVector.fromMemorySegment(SPECIES, inp, whole * 4L, ORDER, mask))
                    .intoMemorySegment(out, whole * 4L, ORDER, mask);
        }
    }

    /** gelu(x) = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), lane by lane. */
    private static FloatVector gelu(FloatVector x) {
        var u = x.mul(x).mul(0.044715f * GPT2.GELU_SCALE).add(GPT2.GELU_SCALE).mul(x); // sqrt(2/pi) (x + 0.044715 x^3)
        return VectorMath.tanh(u).add(1f).mul(x).mul(0.5f);
    }

    /** GELU as the matmul's epilogue: each thread applies it to the rows of out it has just written. */
    @Override
    public void matmulGeluForward(
            MemorySegment out,
            MemorySegment gelu,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC) {
        Matmul.VECTOR.forward(out, inp, weight, bias, BT, C, OC, (btStart, btEnd, oStart, oEnd) -> {
            for (long bt = btStart; bt < btEnd; bt++) gelu(gelu, out, bt * OC + oStart, bt * OC + oEnd);
        });
    }

    @Override
    public void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long N) {
        Parallel.forRange(N, LANES, (start, end) -> geluBackward(dinp, inp, dout, start, end));
    }

    /** dinp[i] += gelu'(inp[i]) dout[i] for start <= i < end: whole vectors, then a masked one (as {@link #gelu}). */
    private static void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long start, long end) {
        long whole = end - (end - start) % LANES;
        for (long i = start; i < whole; i += LANES) {
            var x = FloatVector.fromMemorySegment(SPECIES, inp, i * 4L, ORDER);
            var d = FloatVector.fromMemorySegment(SPECIES, dout, i * 4L, ORDER);
            geluSlope(x)
                    .fma(d, FloatVector.fromMemorySegment(SPECIES, dinp, i * 4L, ORDER))
                    .intoMemorySegment(dinp, i * 4L, ORDER);
        }
        if (whole < end) {
            var mask = SPECIES.indexInRange(0, (int) (end - whole));
            var x = FloatVector.fromMemorySegment(SPECIES, inp, whole * 4L, ORDER, mask);
            var d = FloatVector.fromMemorySegment(SPECIES, dout, whole * 4L, ORDER, mask);
            geluSlope(x)
                    .fma(d, FloatVector.fromMemorySegment(SPECIES, dinp, whole * 4L, ORDER, mask))
                    .intoMemorySegment(dinp, whole * 4L, ORDER, mask);
        }
    }

    /** gelu'(x) = 0.5 (1 + tanh u) + 0.5 x sech^2(u) sqrt(2/pi) (1 + 3 * 0.044715 x^2), u as in {@link #gelu}. */
    private static FloatVector geluSlope(FloatVector x) {
        var x2 = x.mul(x);
        var u = x2.mul(0.044715f * GPT2.GELU_SCALE).add(GPT2.GELU_SCALE).mul(x);
        var tanh = VectorMath.tanh(u);
        var sech2 = tanh.mul(tanh).neg().add(1f); // 1 / cosh^2 = 1 - tanh^2
        var slope = x2.mul(3f * 0.044715f).add(1f).mul(sech2).mul(x).mul(0.5f * GPT2.GELU_SCALE);
        return tanh.add(1f).mul(0.5f).add(slope);
    }
}
