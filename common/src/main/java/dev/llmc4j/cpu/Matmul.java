package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.Floats.FLOAT;
import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The matmul of a Linear layer, forward and backward, in two versions behind one interface: {@link #BASELINE},
 * plain loops to read and to test against, and {@link #VECTOR}, the same arithmetic as register tiles of
 * Vector API lanes. Tests assert that both agree to fp32 rounding on ragged shapes.
 *
 * <p>Shapes: inp (BT, C), weight (OC, C) as PyTorch stores a Linear, bias (OC) or null, out (BT, OC).
 */
public interface Matmul {

    /** out = inp · weightᵀ + bias */
    void forward(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC);

    /** dinp += dout · weight; dweight += doutᵀ · inp; dbias += column sums of dout (dbias may be null). */
    void backward(MemorySegment dinp, MemorySegment dweight, MemorySegment dbias, MemorySegment dout,
                  MemorySegment inp, MemorySegment weight, int BT, int C, int OC);

    /** The kernels the model uses: {@code -Dllmc.kernels=baseline} selects the plain loops. */
    static Matmul kernels() {
        return Holder.ACTIVE;
    }

    final class Holder {
        private Holder() {}

        static final Matmul ACTIVE =
                "baseline".equals(System.getProperty("llmc.kernels")) ? BASELINE : VECTOR;
    }

    // ------------------------------------------------------------------------------------------------------------
    /** One dot product per output, parallel over rows; the backward parallel over rows (dinp) and outputs (dweight). */
    Matmul BASELINE = new Matmul() {
        @Override
        public void forward(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias,
                            int BT, int C, int OC) {
            Parallel.forRange(BT, (start, end) -> {
                for (long bt = start; bt < end; bt++) {
                    for (long o = 0; o < OC; o++) {
                        float sum = bias == null ? 0 : get(bias, o);
                        for (long i = 0; i < C; i++) sum += get(inp, bt * C + i) * get(weight, o * C + i);
                        set(out, bt * OC + o, sum);
                    }
                }
            });
        }

        @Override
        public void backward(MemorySegment dinp, MemorySegment dweight, MemorySegment dbias, MemorySegment dout,
                             MemorySegment inp, MemorySegment weight, int BT, int C, int OC) {
            Parallel.forRange(BT, (start, end) -> {
                for (long bt = start; bt < end; bt++) {
                    for (long o = 0; o < OC; o++) {
                        float d = get(dout, bt * OC + o);
                        for (long i = 0; i < C; i++) add(dinp, bt * C + i, get(weight, o * C + i) * d);
                    }
                }
            });
            Parallel.forRange(OC, (start, end) -> {
                for (long o = start; o < end; o++) {
                    for (long bt = 0; bt < BT; bt++) {
                        float d = get(dout, bt * OC + o);
                        if (dbias != null) add(dbias, o, d);
                        for (long i = 0; i < C; i++) add(dweight, o * C + i, get(inp, bt * C + i) * d);
                    }
                }
            });
        }
    };

    // ------------------------------------------------------------------------------------------------------------
    /** The Vector API version; see {@link VectorMatmul}. */
    Matmul VECTOR = new VectorMatmul();

    /**
     * Register tiles: each inner step loads a few vectors and feeds several independent FMA accumulators, so the
     * FMA units stay busy instead of waiting on one dependency chain or on memory.
     */
    final class VectorMatmul implements Matmul {
        private static final VectorSpecies<Float> S = "512".equals(System.getProperty("llmc.vectorBits"))
                ? FloatVector.SPECIES_512 : FloatVector.SPECIES_256;
        private static final int W = S.length();
        private static final ByteOrder ORDER = ByteOrder.nativeOrder();

        private static FloatVector load(MemorySegment m, long floatIndex) {
            return FloatVector.fromMemorySegment(S, m, floatIndex * Float.BYTES, ORDER);
        }

        private static void store(FloatVector v, MemorySegment m, long floatIndex) {
            v.intoMemorySegment(m, floatIndex * Float.BYTES, ORDER);
        }

        /** Forward: 4 outputs x 4 rows per tile, 16 accumulators of dot products along C. */
        @Override
        public void forward(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias,
                            int BT, int C, int OC) {
            int vectorEnd = C - C % W;
            // parallel over blocks of 4 outputs: a thread's weight rows stay in cache while it sweeps the rows
            Parallel.forRange(OC, 4, (oStart, oEnd) -> {
                for (long rowStart = 0; rowStart < BT; rowStart += 64) { // 64 rows of inp at a time stay in L2
                    long rowEnd = Math.min(BT, rowStart + 64);
                    long o = oStart;
                    for (; o + 4 <= oEnd; o += 4) {
                        long bt = rowStart;
                        for (; bt + 4 <= rowEnd; bt += 4) tile4x4(out, inp, weight, bias, bt, o, C, OC, vectorEnd);
                        for (; bt < rowEnd; bt++) for (long oo = o; oo < o + 4; oo++) dot(out, inp, weight, bias, bt, oo, C, OC, vectorEnd);
                    }
                    for (; o < oEnd; o++) for (long bt = rowStart; bt < rowEnd; bt++) dot(out, inp, weight, bias, bt, o, C, OC, vectorEnd);
                }
            });
        }

        private static void tile4x4(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias,
                                    long bt, long o, int C, int OC, int vectorEnd) {
            long r0 = bt * C, r1 = r0 + C, r2 = r1 + C, r3 = r2 + C;
            long w0 = o * C, w1 = w0 + C, w2 = w1 + C, w3 = w2 + C;
            var a00 = FloatVector.zero(S); var a01 = FloatVector.zero(S); var a02 = FloatVector.zero(S); var a03 = FloatVector.zero(S);
            var a10 = FloatVector.zero(S); var a11 = FloatVector.zero(S); var a12 = FloatVector.zero(S); var a13 = FloatVector.zero(S);
            var a20 = FloatVector.zero(S); var a21 = FloatVector.zero(S); var a22 = FloatVector.zero(S); var a23 = FloatVector.zero(S);
            var a30 = FloatVector.zero(S); var a31 = FloatVector.zero(S); var a32 = FloatVector.zero(S); var a33 = FloatVector.zero(S);
            for (int i = 0; i < vectorEnd; i += W) {
                var x0 = load(inp, r0 + i); var x1 = load(inp, r1 + i); var x2 = load(inp, r2 + i); var x3 = load(inp, r3 + i);
                var y0 = load(weight, w0 + i); var y1 = load(weight, w1 + i); var y2 = load(weight, w2 + i); var y3 = load(weight, w3 + i);
                a00 = x0.fma(y0, a00); a01 = x0.fma(y1, a01); a02 = x0.fma(y2, a02); a03 = x0.fma(y3, a03);
                a10 = x1.fma(y0, a10); a11 = x1.fma(y1, a11); a12 = x1.fma(y2, a12); a13 = x1.fma(y3, a13);
                a20 = x2.fma(y0, a20); a21 = x2.fma(y1, a21); a22 = x2.fma(y2, a22); a23 = x2.fma(y3, a23);
                a30 = x3.fma(y0, a30); a31 = x3.fma(y1, a31); a32 = x3.fma(y2, a32); a33 = x3.fma(y3, a33);
            }
            var sums = new float[][] {
                {a00.reduceLanes(VectorOperators.ADD), a01.reduceLanes(VectorOperators.ADD), a02.reduceLanes(VectorOperators.ADD), a03.reduceLanes(VectorOperators.ADD)},
                {a10.reduceLanes(VectorOperators.ADD), a11.reduceLanes(VectorOperators.ADD), a12.reduceLanes(VectorOperators.ADD), a13.reduceLanes(VectorOperators.ADD)},
                {a20.reduceLanes(VectorOperators.ADD), a21.reduceLanes(VectorOperators.ADD), a22.reduceLanes(VectorOperators.ADD), a23.reduceLanes(VectorOperators.ADD)},
                {a30.reduceLanes(VectorOperators.ADD), a31.reduceLanes(VectorOperators.ADD), a32.reduceLanes(VectorOperators.ADD), a33.reduceLanes(VectorOperators.ADD)}};
            for (int r = 0; r < 4; r++) {
                long row = (bt + r) * C;
                for (int k = 0; k < 4; k++) {
                    long col = (o + k) * C;
                    float sum = sums[r][k];
                    for (int i = vectorEnd; i < C; i++) sum += get(inp, row + i) * get(weight, col + i);
                    set(out, (bt + r) * OC + o + k, sum + (bias == null ? 0 : get(bias, o + k)));
                }
            }
        }

        private static void dot(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias,
                                long bt, long o, int C, int OC, int vectorEnd) {
            var acc = FloatVector.zero(S);
            for (int i = 0; i < vectorEnd; i += W) acc = load(inp, bt * C + i).fma(load(weight, o * C + i), acc);
            float sum = acc.reduceLanes(VectorOperators.ADD);
            for (int i = vectorEnd; i < C; i++) sum += get(inp, bt * C + i) * get(weight, o * C + i);
            set(out, bt * OC + o, sum + (bias == null ? 0 : get(bias, o)));
        }

        @Override
        public void backward(MemorySegment dinp, MemorySegment dweight, MemorySegment dbias, MemorySegment dout,
                             MemorySegment inp, MemorySegment weight, int BT, int C, int OC) {
            int vectorEnd = C - C % W;
            // dinp[bt, :] += sum over o of dout[bt, o] * weight[o, :]; parallel over rows, 4 rows x 2 vectors per tile
            Parallel.forRange(BT, 4, (start, end) -> {
                long bt = start;
                for (; bt + 4 <= end; bt += 4) {
                    int i = 0;
                    for (; i + 2 * W <= vectorEnd; i += 2 * W) dinpTile4x2(dinp, dout, weight, bt, i, C, OC);
                    for (; i < vectorEnd; i += W) for (long r = bt; r < bt + 4; r++) dinpVector(dinp, dout, weight, r, i, C, OC);
                    for (long r = bt; r < bt + 4; r++) dinpScalar(dinp, dout, weight, r, vectorEnd, C, OC);
                }
                for (; bt < end; bt++) {
                    for (int i = 0; i < vectorEnd; i += W) dinpVector(dinp, dout, weight, bt, i, C, OC);
                    dinpScalar(dinp, dout, weight, bt, vectorEnd, C, OC);
                }
            });
            // dweight[o, :] += sum over bt of dout[bt, o] * inp[bt, :]; parallel over outputs, 4 outputs x 2 vectors
            Parallel.forRange(OC, 4, (start, end) -> {
                long o = start;
                for (; o + 4 <= end; o += 4) {
                    int i = 0;
                    for (; i + 2 * W <= vectorEnd; i += 2 * W) dweightTile4x2(dweight, dout, inp, o, i, BT, C, OC);
                    for (; i < vectorEnd; i += W) for (long k = o; k < o + 4; k++) dweightVector(dweight, dout, inp, k, i, BT, C, OC);
                    for (long k = o; k < o + 4; k++) dweightScalar(dweight, dout, inp, k, vectorEnd, BT, C, OC);
                }
                for (; o < end; o++) {
                    for (int i = 0; i < vectorEnd; i += W) dweightVector(dweight, dout, inp, o, i, BT, C, OC);
                    dweightScalar(dweight, dout, inp, o, vectorEnd, BT, C, OC);
                }
                if (dbias != null) {
                    for (long k = start; k < end; k++) {
                        float sum = 0;
                        for (long bt = 0; bt < BT; bt++) sum += get(dout, bt * OC + k);
                        add(dbias, k, sum);
                    }
                }
            });
        }

        private static void dinpTile4x2(MemorySegment dinp, MemorySegment dout, MemorySegment weight, long bt, int i, int C, int OC) {
            long d0 = bt * OC, d1 = d0 + OC, d2 = d1 + OC, d3 = d2 + OC;
            var a00 = FloatVector.zero(S); var a01 = FloatVector.zero(S); var a10 = FloatVector.zero(S); var a11 = FloatVector.zero(S);
            var a20 = FloatVector.zero(S); var a21 = FloatVector.zero(S); var a30 = FloatVector.zero(S); var a31 = FloatVector.zero(S);
            for (long o = 0; o < OC; o++) {
                var w0 = load(weight, o * C + i);
                var w1 = load(weight, o * C + i + W);
                var g0 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d0 + o));
                var g1 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d1 + o));
                var g2 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d2 + o));
                var g3 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d3 + o));
                a00 = w0.fma(g0, a00); a01 = w1.fma(g0, a01);
                a10 = w0.fma(g1, a10); a11 = w1.fma(g1, a11);
                a20 = w0.fma(g2, a20); a21 = w1.fma(g2, a21);
                a30 = w0.fma(g3, a30); a31 = w1.fma(g3, a31);
            }
            long r0 = bt * C + i, r1 = r0 + C, r2 = r1 + C, r3 = r2 + C;
            store(load(dinp, r0).add(a00), dinp, r0); store(load(dinp, r0 + W).add(a01), dinp, r0 + W);
            store(load(dinp, r1).add(a10), dinp, r1); store(load(dinp, r1 + W).add(a11), dinp, r1 + W);
            store(load(dinp, r2).add(a20), dinp, r2); store(load(dinp, r2 + W).add(a21), dinp, r2 + W);
            store(load(dinp, r3).add(a30), dinp, r3); store(load(dinp, r3 + W).add(a31), dinp, r3 + W);
        }

        private static void dinpVector(MemorySegment dinp, MemorySegment dout, MemorySegment weight, long bt, int i, int C, int OC) {
            var acc = FloatVector.zero(S);
            for (long o = 0; o < OC; o++) acc = load(weight, o * C + i).fma(FloatVector.broadcast(S, get(dout, bt * OC + o)), acc);
            store(load(dinp, bt * C + i).add(acc), dinp, bt * C + i);
        }

        private static void dinpScalar(MemorySegment dinp, MemorySegment dout, MemorySegment weight, long bt, int from, int C, int OC) {
            for (int i = from; i < C; i++) {
                float sum = 0;
                for (long o = 0; o < OC; o++) sum += get(weight, o * C + i) * get(dout, bt * OC + o);
                add(dinp, bt * C + i, sum);
            }
        }

        private static void dweightTile4x2(MemorySegment dweight, MemorySegment dout, MemorySegment inp, long o, int i, int BT, int C, int OC) {
            var a00 = FloatVector.zero(S); var a01 = FloatVector.zero(S); var a10 = FloatVector.zero(S); var a11 = FloatVector.zero(S);
            var a20 = FloatVector.zero(S); var a21 = FloatVector.zero(S); var a30 = FloatVector.zero(S); var a31 = FloatVector.zero(S);
            for (long bt = 0; bt < BT; bt++) {
                var x0 = load(inp, bt * C + i);
                var x1 = load(inp, bt * C + i + W);
                long d = bt * OC + o;
                var g0 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d));
                var g1 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d + 1));
                var g2 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d + 2));
                var g3 = FloatVector.broadcast(S, dout.getAtIndex(FLOAT, d + 3));
                a00 = x0.fma(g0, a00); a01 = x1.fma(g0, a01);
                a10 = x0.fma(g1, a10); a11 = x1.fma(g1, a11);
                a20 = x0.fma(g2, a20); a21 = x1.fma(g2, a21);
                a30 = x0.fma(g3, a30); a31 = x1.fma(g3, a31);
            }
            long r0 = o * C + i, r1 = r0 + C, r2 = r1 + C, r3 = r2 + C;
            store(load(dweight, r0).add(a00), dweight, r0); store(load(dweight, r0 + W).add(a01), dweight, r0 + W);
            store(load(dweight, r1).add(a10), dweight, r1); store(load(dweight, r1 + W).add(a11), dweight, r1 + W);
            store(load(dweight, r2).add(a20), dweight, r2); store(load(dweight, r2 + W).add(a21), dweight, r2 + W);
            store(load(dweight, r3).add(a30), dweight, r3); store(load(dweight, r3 + W).add(a31), dweight, r3 + W);
        }

        private static void dweightVector(MemorySegment dweight, MemorySegment dout, MemorySegment inp, long o, int i, int BT, int C, int OC) {
            var acc = FloatVector.zero(S);
            for (long bt = 0; bt < BT; bt++) acc = load(inp, bt * C + i).fma(FloatVector.broadcast(S, get(dout, bt * OC + o)), acc);
            store(load(dweight, o * C + i).add(acc), dweight, o * C + i);
        }

        private static void dweightScalar(MemorySegment dweight, MemorySegment dout, MemorySegment inp, long o, int from, int BT, int C, int OC) {
            for (int i = from; i < C; i++) {
                float sum = 0;
                for (long bt = 0; bt < BT; bt++) sum += get(inp, bt * C + i) * get(dout, bt * OC + o);
                add(dweight, o * C + i, sum);
            }
        }
    }
}
