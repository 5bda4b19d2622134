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
import jdk.incubator.vector.VectorShuffle;

/**
 * {@link Llama3Kernels#VECTORIZED}: the shared vectorized layers ({@link VectorizedCpuKernels}) plus the fast
 * versions of Llama3.java's own layers (RMSNorm, RoPE, SwiGLU): the same arithmetic as the plain loops there, LANES floats
 * at a time with the Vector API (a masked vector for the ragged end of a row), reductions in
 * {@link VectorMath#sum}'s fixed order. Tests compare every override with the baseline it replaces
 * (Llama3KernelsTest).
 */
final class Llama3VectorizedKernels extends VectorizedCpuKernels implements Llama3Kernels {

    // Vector loads and stores are written out (byte offsets = 4 * index), as in GPT2VectorizedKernels: C2 keeps
    // vectors in registers only when these calls inline.
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    /**
     * The token embedding keeps the baseline: its forward is a parallel row copy already, and a Vector API backward
     * (parallel over channels, as GPT-2's encoder) measured slower than the plain serial loop, which C2 vectorizes.
     */
    @Override
    public List<String> missingFastVersions() {
        return List.of("embedding");
    }

    @Override
    public void rmsnormForward(
            MemorySegment out,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            long rows,
            int C,
            float eps) {
        Parallel.forRange(rows, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                float s = rmsnormRow(out, inp, weight, bt * C, C, eps);
                if (rstd != null) rstd.setAtIndex(JAVA_FLOAT, bt, s);
            }
        });
    }

    /**
     * One row of the RMSNorm forward (at float index row), returning its 1/rms. Whole vectors unmasked, then one
     * masked vector for a ragged end, as GPT-2's residualForward: with a mask on every vector C2 hoisted a profiled
     * check out of these loops that failed on later calls (`-Xlog:deoptimization=debug`: profile_predicate traps in
     * a Llama 3 step), and each time the loop ran as slow plain Java until it was compiled again.
     */
    private static float rmsnormRow(
            MemorySegment out, MemorySegment inp, MemorySegment weight, long row, int C, float eps) {
        int whole = C - C % LANES;
        var sumOfSquares = FloatVector.zero(SPECIES);
        for (int i = 0; i < whole; i += LANES) {
            var x = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER);
            sumOfSquares = x.fma(x, sumOfSquares);
        }
        if (whole < C) { // masked loads: the lanes past the row add 0
            var x = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, inRow(whole, C));
            sumOfSquares = x.fma(x, sumOfSquares);
        }
        float s = (float) (1.0 / Math.sqrt(VectorMath.sum(sumOfSquares) / C + eps));
        for (int i = 0; i < whole; i += LANES) {
            var x = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER);
            var w = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER);
            x.mul(s).mul(w).intoMemorySegment(out, (row + i) * 4L, ORDER);
        }
        if (whole < C) {
            var mask = inRow(whole, C);
            var x = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask);
            var w = FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask);
            x.mul(s).mul(w).intoMemorySegment(out, (row + whole) * 4L, ORDER, mask);
        }
        return s;
    }

    /** Rows split into one chunk per thread; each chunk sums its dweight in its own padded array, added in order. */
    @Override
    public void rmsnormBackward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment rstd,
            long rows,
            int C) {
        int chunks = Parallel.threads();
        int padded = (C + LANES - 1) / LANES * LANES;
        float[][] partialDweight = new float[chunks][padded];
        Parallel.forRange(chunks, (firstChunk, endChunk) -> {
            for (long chunk = firstChunk; chunk < endChunk; chunk++) {
                float[] dw = partialDweight[(int) chunk];
                for (long bt = rows * chunk / chunks; bt < rows * (chunk + 1) / chunks; bt++)
                    rmsnormBackwardRow(dinp, dw, dout, inp, weight, rstd, bt, C);
            }
        });
        addPartialSums(dweight, partialDweight, C);
    }

    /**
     * Row bt of the RMSNorm backward: dinp's row, and its share of dweight added into this thread's partial sums
     * dw. A method of its own so the parallel loop stays small enough for C1 (see GPT-2's layernormBackwardRow), and
     * each pass a method of its own, whole vectors unmasked and one masked vector on a ragged end (see
     * {@link #rmsnormRow}: a mask on every vector trapped here too, 4 times in a 6-step run). No vector crosses a
     * method boundary: C2 compiled a per-vector helper on its own first and then would not inline it into the row
     * ("already compiled into a big method"), and every call boxed its vectors (0.45 ms a call in a step against
     * 0.11).
     */
    private static void rmsnormBackwardRow(
            MemorySegment dinp,
            float[] dw,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment rstd,
            long bt,
            int C) {
        long row = bt * C;
        float s = rstd.getAtIndex(JAVA_FLOAT, bt);
        float gnMean = sumOfGradientTimesNormalized(dout, inp, weight, row, C, s) / C;
        addRmsnormGradients(dinp, dw, dout, inp, weight, row, C, s, gnMean);
    }

    /** Σ (weight · dout) (inp · s) over the row. */
    private static float sumOfGradientTimesNormalized(
            MemorySegment dout, MemorySegment inp, MemorySegment weight, long row, int C, float s) {
        int whole = C - C % LANES;
        var sum = FloatVector.zero(SPECIES);
        for (int i = 0; i < whole; i += LANES) {
            var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER)
                    .mul(s);
            var g = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER)
                    .mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER));
            sum = g.fma(n, sum);
        }
        if (whole < C) { // lanes off the mask: g = 0, so g n adds 0
            var mask = inRow(whole, C);
            var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask)
                    .mul(s);
            var g = FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask)
                    .mul(FloatVector.fromMemorySegment(SPECIES, dout, (row + whole) * 4L, ORDER, mask));
            sum = g.fma(n, sum);
        }
        return VectorMath.sum(sum);
    }

    /** Over the row: dw += n · dout, dinp += s (g - n · mean(g n)), n = inp · s, g = weight · dout. */
    private static void addRmsnormGradients(
            MemorySegment dinp,
            float[] dw,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            long row,
            int C,
            float s,
            float gnMean) {
        int whole = C - C % LANES;
        for (int i = 0; i < whole; i += LANES) {
            var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + i) * 4L, ORDER)
                    .mul(s);
            var d = FloatVector.fromMemorySegment(SPECIES, dout, (row + i) * 4L, ORDER);
            n.fma(d, FloatVector.fromArray(SPECIES, dw, i)).intoArray(dw, i);
            var g = FloatVector.fromMemorySegment(SPECIES, weight, i * 4L, ORDER)
                    .mul(d);
            var dx = g.sub(n.mul(gnMean)).mul(s); // rstd * (g - n * mean(g n))
            FloatVector.fromMemorySegment(SPECIES, dinp, (row + i) * 4L, ORDER)
                    .add(dx)
                    .intoMemorySegment(dinp, (row + i) * 4L, ORDER);
        }
        if (whole < C) addRmsnormGradientsTail(dinp, dw, dout, inp, weight, row, whole, C, s, gnMean);
    }

    /**
     * {@link #addRmsnormGradients} on the ragged end, floats [whole, C) of the row, one masked vector (dw is padded
     * to whole vectors: its lanes past C add n · 0): a method of its own, as C1 gave up on the pass with it written
     * out beside the loop ("out of virtual registers").
     */
    private static void addRmsnormGradientsTail(
            MemorySegment dinp,
            float[] dw,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            long row,
            int whole,
            int C,
            float s,
            float gnMean) {
        var mask = inRow(whole, C);
        var n = FloatVector.fromMemorySegment(SPECIES, inp, (row + whole) * 4L, ORDER, mask)
                .mul(s);
        var d = FloatVector.fromMemorySegment(SPECIES, dout, (row + whole) * 4L, ORDER, mask);
        n.fma(d, FloatVector.fromArray(SPECIES, dw, whole)).intoArray(dw, whole);
        var g = FloatVector.fromMemorySegment(SPECIES, weight, whole * 4L, ORDER, mask)
                .mul(d);
        var dx = g.sub(n.mul(gnMean)).mul(s);
        FloatVector.fromMemorySegment(SPECIES, dinp, (row + whole) * 4L, ORDER, mask)
                .add(dx)
                .intoMemorySegment(dinp, (row + whole) * 4L, ORDER, mask);
    }

    // lane 2i swapped with lane 2i+1: a vector of interleaved pairs (x0, x1) becomes (x1, x0)
    private static final VectorShuffle<Float> PAIR_SWAP = VectorShuffle.fromOp(SPECIES, i -> i ^ 1);

    /**
     * Each pair (x0, x1) becomes (x0 c - x1 s, x1 c + x0 s): x * [c, c] + swap(x) * [-s, s], from tables of c and
     * the signed s laid out per lane (pairs never straddle two vectors: LANES is even). The same products and sums
     * as the baseline, so the same bits.
     */
    @Override
    public void rope(
            MemorySegment qkv,
            float[] cos,
            float[] sin,
            long rows,
            int T,
            int startPosition,
            int rotatedHeads,
            int hd,
            int qkvRows,
            boolean inverse) {
        int half = hd / 2;
        int positions = (int) Math.min(rows, T);
        float[] laneCos = new float[positions * hd], laneSin = new float[positions * hd]; // (positions, hd)
        for (int p = 0; p < positions; p++) {
            for (int i = 0; i < half; i++) {
                float c = cos[(startPosition + p) * half + i];
                float s = inverse ? -sin[(startPosition + p) * half + i] : sin[(startPosition + p) * half + i];
                laneCos[p * hd + 2 * i] = c;
                laneCos[p * hd + 2 * i + 1] = c;
                laneSin[p * hd + 2 * i] = -s;
                laneSin[p * hd + 2 * i + 1] = s;
            }
        }
        Parallel.forRange(rows, (start, end) -> {
            for (long r = start; r < end; r++) {
                int table = (int) (r % T) * hd;
                for (int h = 0; h < rotatedHeads; h++) {
                    long head = r * qkvRows + (long) h * hd;
                    for (int i = 0; i < hd; i += LANES) {
                        var mask = inRow(i, hd);
                        var x = FloatVector.fromMemorySegment(SPECIES, qkv, (head + i) * 4L, ORDER, mask);
                        var c = FloatVector.fromArray(SPECIES, laneCos, table + i, mask);
                        var s = FloatVector.fromArray(SPECIES, laneSin, table + i, mask);
                        x.mul(c)
                                .add(x.rearrange(PAIR_SWAP).mul(s))
                                .intoMemorySegment(qkv, (head + i) * 4L, ORDER, mask);
                    }
                }
            }
        });
    }

    /** sigmoid(g) = 1 / (1 + e^-g), e^x from {@link VectorMath#exp} (the same bits compiled or not). */
    private static FloatVector sigmoid(FloatVector g) {
        return FloatVector.broadcast(SPECIES, 1f).div(VectorMath.exp(g.neg()).add(1f));
    }

    /**
     * SwiGLU row by row. Each row runs its whole vectors unmasked and only a ragged end masked: a mask on every
     * vector let C2 hoist profiled checks out of the loop that later failed, and each failure sent the loop back to
     * slow code (the interpreter, as C1 cannot compile it) until C2 compiled it again.
     */
    @Override
    public void swigluForward(MemorySegment out, MemorySegment fch, long rows, int H) {
        Parallel.forRange(rows, (start, end) -> {
            for (long r = start; r < end; r++) swigluForwardRow(out, fch, r, H);
        });
    }

    /** out[r, i] = silu(gate[i]) up[i] over the row's H outputs; fch's row r is [up (H), gate (H)]. */
    private static void swigluForwardRow(MemorySegment out, MemorySegment fch, long r, int H) {
        long up = 4 * r * 2 * H, gate = up + 4L * H, row = 4 * r * H;
        int whole = H - H % LANES;
        for (int i = 0; i < whole; i += LANES) {
            var g = FloatVector.fromMemorySegment(SPECIES, fch, gate + 4L * i, ORDER);
            var u = FloatVector.fromMemorySegment(SPECIES, fch, up + 4L * i, ORDER);
            g.mul(sigmoid(g)).mul(u).intoMemorySegment(out, row + 4L * i, ORDER);
        }
        if (whole < H) {
            var mask = inRow(whole, H);
            var g = FloatVector.fromMemorySegment(SPECIES, fch, gate + 4L * whole, ORDER, mask);
            var u = FloatVector.fromMemorySegment(SPECIES, fch, up + 4L * whole, ORDER, mask);
            g.mul(sigmoid(g)).mul(u).intoMemorySegment(out, row + 4L * whole, ORDER, mask);
        }
    }

    @Override
    public void swigluBackward(MemorySegment dfch, MemorySegment fch, MemorySegment dout, long rows, int H) {
        Parallel.forRange(rows, (start, end) -> {
            for (long r = start; r < end; r++) swigluBackwardRow(dfch, fch, dout, r, H);
        });
    }

    /**
     * dup += d g sigmoid(g) and dgate += d up silu'(g) over the row's H outputs (d = dout's row r): whole vectors
     * unmasked, then one masked vector on a ragged end in a method of its own. (With the ragged end written out here
     * too, C1 gave up on the row, "out of virtual registers", and the row could stay in C1's profile-free code, its
     * vector calls boxed: 14 ms a call instead of 1.7. Whole vectors through that method with an all-true mask: 2.1.)
     */
    private static void swigluBackwardRow(MemorySegment dfch, MemorySegment fch, MemorySegment dout, long r, int H) {
        long up = 4 * r * 2 * H, gate = up + 4L * H, row = 4 * r * H;
        int whole = H - H % LANES;
        for (int i = 0; i < whole; i += LANES) {
            long upAt = up + 4L * i, gateAt = gate + 4L * i;
            var g = FloatVector.fromMemorySegment(SPECIES, fch, gateAt, ORDER);
            var u = FloatVector.fromMemorySegment(SPECIES, fch, upAt, ORDER);
            var d = FloatVector.fromMemorySegment(SPECIES, dout, row + 4L * i, ORDER);
            var sig = sigmoid(g);
            FloatVector.fromMemorySegment(SPECIES, dfch, upAt, ORDER)
                    .add(d.mul(g).mul(sig))
                    .intoMemorySegment(dfch, upAt, ORDER);
            FloatVector.fromMemorySegment(SPECIES, dfch, gateAt, ORDER)
                    .add(d.mul(u).mul(sig).mul(siluSlope(g, sig)))
                    .intoMemorySegment(dfch, gateAt, ORDER);
        }
        if (whole < H)
            swigluBackwardTail(dfch, fch, dout, up + 4L * whole, gate + 4L * whole, row + 4L * whole, H - whole);
    }

    /**
     * {@link #swigluBackwardRow} on the first {@code lanes} lanes of one vector: upAt, gateAt in fch and dfch, doutAt
     * in dout (byte offsets). It takes no vector or mask: if C2 does not inline it, nothing is boxed at the call.
     */
    private static void swigluBackwardTail(
            MemorySegment dfch, MemorySegment fch, MemorySegment dout, long upAt, long gateAt, long doutAt, int lanes) {
        var mask = SPECIES.indexInRange(0, lanes);
        var g = FloatVector.fromMemorySegment(SPECIES, fch, gateAt, ORDER, mask);
        var u = FloatVector.fromMemorySegment(SPECIES, fch, upAt, ORDER, mask);
        var d = FloatVector.fromMemorySegment(SPECIES, dout, doutAt, ORDER, mask);
        var sig = sigmoid(g);
        FloatVector.fromMemorySegment(SPECIES, dfch, upAt, ORDER, mask)
                .add(d.mul(g).mul(sig))
                .intoMemorySegment(dfch, upAt, ORDER, mask);
        FloatVector.fromMemorySegment(SPECIES, dfch, gateAt, ORDER, mask)
                .add(d.mul(u).mul(sig).mul(siluSlope(g, sig)))
                .intoMemorySegment(dfch, gateAt, ORDER, mask);
    }

    /** silu'(g) / sigmoid(g) = 1 + g (1 - sigmoid(g)). */
    private static FloatVector siluSlope(FloatVector g, FloatVector sig) {
        return g.mul(sig.neg().add(1f)).add(1f);
    }
}
