package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.VectorMath.LANES;
import static dev.llmc4j.cpu.VectorMath.SPECIES;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * {@link CpuKernels#VECTORIZED}: the baseline set with each layer that has a faster version overridden by it, the
 * same arithmetic LANES floats at a time ({@link Matmul#VECTOR}; softmax and cross-entropy, AdamW, attention and the
 * residual here; exp from {@link VectorMath}; a masked vector at the ragged end of a row). Tests compare every
 * override with the baseline method it replaces. Loads and stores are written out (fromMemorySegment /
 * intoMemorySegment at byte offset 4 * index) so that C2 inlines them.
 *
 * <p>Not final: GPT-2's and Llama 3's vectorized sets extend it with their own layers.
 */
public class VectorizedCpuKernels implements CpuKernels {
    protected VectorizedCpuKernels() {}

    @Override
    public String name() {
        return "vectorized";
    }

    @Override
    public void matmulForward(
            MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC) {
        Matmul.VECTOR.forward(out, inp, weight, bias, BT, C, OC);
    }

    @Override
    public void matmulBackward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dbias,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            int BT,
            int C,
            int OC) {
        Matmul.VECTOR.backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC);
    }

    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    /** Softmax over the first V logits of each row; padding columns get 0. */
    @Override
    public void softmaxForward(MemorySegment probs, MemorySegment logits, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = 4 * bt * Vp;
                var max = FloatVector.broadcast(SPECIES, -10000.0f);
                for (int i = 0; i < V; i += LANES) {
                    var mask = SPECIES.indexInRange(i, V);
                    max = max.max(FloatVector.fromMemorySegment(SPECIES, logits, row + 4L * i, ORDER, mask)
                            .blend(-10000.0f, mask.not()));
                }
                float m = max.reduceLanes(VectorOperators.MAX);
                var sum = FloatVector.zero(SPECIES);
                for (int i = 0; i < V; i += LANES) {
                    var mask = SPECIES.indexInRange(i, V);
                    var e = VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, logits, row + 4L * i, ORDER, mask)
                            .sub(m));
                    e.intoMemorySegment(probs, row + 4L * i, ORDER, mask);
                    sum = sum.add(e, mask);
                }
                float inverse = 1 / VectorMath.sum(sum);
                for (int i = 0; i < V; i += LANES) {
                    var mask = SPECIES.indexInRange(i, V);
                    FloatVector.fromMemorySegment(SPECIES, probs, row + 4L * i, ORDER, mask)
                            .mul(inverse)
                            .intoMemorySegment(probs, row + 4L * i, ORDER, mask);
                }
                for (int i = V; i < Vp; i++) probs.setAtIndex(JAVA_FLOAT, bt * Vp + i, 0);
            }
        });
    }

    /** dlogits += (probs - onehot(target)) * dloss, row by row. */
    @Override
    public void crossentropySoftmaxBackward(
            MemorySegment dlogits, MemorySegment dlosses, MemorySegment probs, int[] targets, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = 4 * bt * Vp;
                float dloss = dlosses.getAtIndex(JAVA_FLOAT, bt);
                for (int i = 0; i < V; i += LANES) {
                    var mask = SPECIES.indexInRange(i, V);
                    var p = FloatVector.fromMemorySegment(SPECIES, probs, row + 4L * i, ORDER, mask);
                    var d = FloatVector.fromMemorySegment(SPECIES, dlogits, row + 4L * i, ORDER, mask);
                    p.mul(dloss).add(d).intoMemorySegment(dlogits, row + 4L * i, ORDER, mask);
                }
                long target = bt * Vp + targets[(int) bt];
                dlogits.setAtIndex(JAVA_FLOAT, target, dlogits.getAtIndex(JAVA_FLOAT, target) - dloss);
            }
        });
    }

    /** AdamW over floats [offset, offset + count); see {@link AdamW}. */
    @Override
    public void adamwUpdate(
            MemorySegment params,
            MemorySegment grads,
            MemorySegment m,
            MemorySegment v,
            long offset,
            long count,
            AdamW.Step step) {
        float beta1 = step.beta1(), beta2 = step.beta2(), lr = step.learningRate(), eps = step.eps();
        float decay = step.weightDecay(), scale = step.gradScale();
        float correction1 = (float) (1.0 - Math.pow(beta1, step.t()));
        float correction2 = (float) (1.0 - Math.pow(beta2, step.t()));
        Parallel.forRange(count, LANES, (start, end) -> {
            for (long i = offset + start; i < offset + end; i += LANES) {
                var mask = SPECIES.indexInRange(0, (int) Math.min(LANES, offset + end - i));
                long at = 4 * i;
                var grad = FloatVector.fromMemorySegment(SPECIES, grads, at, ORDER, mask)
                        .mul(scale);
                var mean = FloatVector.fromMemorySegment(SPECIES, m, at, ORDER, mask)
                        .mul(beta1)
                        .add(grad.mul(1 - beta1));
                var meanSquare = FloatVector.fromMemorySegment(SPECIES, v, at, ORDER, mask)
                        .mul(beta2)
                        .add(grad.mul(grad).mul(1 - beta2));
                var param = FloatVector.fromMemorySegment(SPECIES, params, at, ORDER, mask);
                var mHat = mean.div(correction1);
                var vHat = meanSquare.div(correction2);
                mean.intoMemorySegment(m, at, ORDER, mask);
                meanSquare.intoMemorySegment(v, at, ORDER, mask);
                var update = mHat.div(vHat.sqrt().add(eps)).add(param.mul(decay));
                param.sub(update.mul(lr)).intoMemorySegment(params, at, ORDER, mask);
            }
        });
    }

    /** dot product of floats [x, x + n) and [y, y + n) of m (n small: a head). */
    private static float dot(MemorySegment m, long x, long y, int n) {
        var acc = FloatVector.zero(SPECIES);
        for (int i = 0; i < n; i += LANES) {
            var mask = SPECIES.indexInRange(i, n);
            acc = FloatVector.fromMemorySegment(SPECIES, m, 4 * (x + i), ORDER, mask)
                    .fma(FloatVector.fromMemorySegment(SPECIES, m, 4 * (y + i), ORDER, mask), acc);
        }
        return VectorMath.sum(acc);
    }

    /** floats [y, y + n) of dst += a * floats [x, x + n) of src. */
    private static void axpy(MemorySegment dst, long y, float a, MemorySegment src, long x, int n) {
        for (int i = 0; i < n; i += LANES) {
            var mask = SPECIES.indexInRange(i, n);
            var d = FloatVector.fromMemorySegment(SPECIES, dst, 4 * (y + i), ORDER, mask);
            FloatVector.fromMemorySegment(SPECIES, src, 4 * (x + i), ORDER, mask)
                    .mul(a)
                    .add(d)
                    .intoMemorySegment(dst, 4 * (y + i), ORDER, mask);
        }
    }

    /**
     * Attention, multi-head (NKV = NH: GPT-2) or grouped-query (NKV < NH: Llama 3, each key/value head shared by
     * NH / NKV query heads); see {@link CausalSelfAttention#forward}. Parallel over (b, query head).
     */
    @Override
    public void attentionForward(
            MemorySegment out,
            MemorySegment preatt,
            MemorySegment att,
            MemorySegment inp,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        long C = (long) NH * hs;
        long C3 = (long) (NH + 2 * NKV) * hs; // qkv row: [Q (NH hs) | K (NKV hs) | V (NKV hs)]
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Parallel.forRange((long) B * NH, (start, end) -> {
            for (long index = start; index < end; index++) {
                long b = index / NH, h = index % NH;
                long base = b * T * C3 + h * hs; // q of (b, 0, h)
                long keyBase = b * T * C3 + C + h / group * hs, valueBase = keyBase + (long) NKV * hs;
                for (int t = 0; t < T; t++) {
                    long query = base + t * C3;
                    long row = ((b * NH + h) * T + t) * T;
                    float max = -10000.0f;
                    for (int t2 = 0; t2 <= t; t2++) {
                        float score = dot(inp, query, keyBase + t2 * C3, hs) * scale;
                        preatt.setAtIndex(JAVA_FLOAT, row + t2, score);
                        max = Math.max(max, score);
                    }
                    int n = t + 1;
                    var sum = FloatVector.zero(SPECIES);
                    for (int t2 = 0; t2 < n; t2 += LANES) {
                        var mask = SPECIES.indexInRange(t2, n);
                        var e = VectorMath.exp(
                                FloatVector.fromMemorySegment(SPECIES, preatt, 4 * (row + t2), ORDER, mask)
                                        .sub(max));
                        e.intoMemorySegment(att, 4 * (row + t2), ORDER, mask);
                        sum = sum.add(e, mask);
                    }
                    float total = VectorMath.sum(sum), inverse = total == 0 ? 0 : 1 / total;
                    for (int t2 = 0; t2 < n; t2 += LANES) {
                        var mask = SPECIES.indexInRange(t2, n);
                        FloatVector.fromMemorySegment(SPECIES, att, 4 * (row + t2), ORDER, mask)
                                .mul(inverse)
                                .intoMemorySegment(att, 4 * (row + t2), ORDER, mask);
                    }
                    for (int t2 = n; t2 < T; t2++) att.setAtIndex(JAVA_FLOAT, row + t2, 0);
                    long output = (b * T + t) * C + h * hs;
                    for (int i = 0; i < hs; i++) out.setAtIndex(JAVA_FLOAT, output + i, 0);
                    for (int t2 = 0; t2 < n; t2++)
                        axpy(out, output, att.getAtIndex(JAVA_FLOAT, row + t2), inp, valueBase + t2 * C3, hs);
                }
            }
        });
    }

    /**
     * Attention backward, parallel over (b, key/value head): a thread owns the key/value head's dk and dv and the
     * dq of its group of query heads, taken in order, so no two threads write the same gradient (for NKV = NH a
     * group is one head). The softmax backward uses its closed form
     * dpreatt[t2] = att[t2] (datt[t2] - Σ_t3 att[t3] datt[t3]): O(T) per row instead of the plain loop's O(T²).
     */
    @Override
    public void attentionBackward(
            MemorySegment dinp,
            MemorySegment dpreatt,
            MemorySegment datt,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment att,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        long C = (long) NH * hs;
        long C3 = (long) (NH + 2 * NKV) * hs;
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Parallel.forRange((long) B * NKV, (start, end) -> {
            for (long index = start; index < end; index++) {
                long b = index / NKV, kv = index % NKV;
                for (long h = kv * group; h < (kv + 1) * group; h++) {
                    long base = b * T * C3 + h * hs;
                    long keyBase = b * T * C3 + C + kv * hs, valueBase = keyBase + (long) NKV * hs;
                    for (int t = 0; t < T; t++) {
                        long row = ((b * NH + h) * T + t) * T;
                        long query = base + t * C3;
                        long output = (b * T + t) * C + h * hs;
                        float weighted = 0; // Σ att * datt over the row
                        for (int t2 = 0; t2 <= t; t2++) {
                            long value = valueBase + t2 * C3;
                            float a = att.getAtIndex(JAVA_FLOAT, row + t2);
                            float d = datt.getAtIndex(JAVA_FLOAT, row + t2) + dotAcross(dout, output, inp, value, hs);
                            datt.setAtIndex(JAVA_FLOAT, row + t2, d);
                            weighted += a * d;
                            axpy(dinp, value, a, dout, output, hs); // dv += att * dout
                        }
                        for (int t2 = 0; t2 <= t; t2++) {
                            float a = att.getAtIndex(JAVA_FLOAT, row + t2);
                            float dp = dpreatt.getAtIndex(JAVA_FLOAT, row + t2)
                                    + a * (datt.getAtIndex(JAVA_FLOAT, row + t2) - weighted);
                            dpreatt.setAtIndex(JAVA_FLOAT, row + t2, dp);
                            long key = keyBase + t2 * C3;
                            axpy(dinp, query, dp * scale, inp, key, hs); // dq += k * dpreatt * scale
                            axpy(dinp, key, dp * scale, inp, query, hs); // dk += q * dpreatt * scale
                        }
                    }
                }
            }
        });
    }

    /** dot product of floats [x, x + n) of m and [y, y + n) of other. */
    private static float dotAcross(MemorySegment m, long x, MemorySegment other, long y, int n) {
        var acc = FloatVector.zero(SPECIES);
        for (int i = 0; i < n; i += LANES) {
            var mask = SPECIES.indexInRange(i, n);
            acc = FloatVector.fromMemorySegment(SPECIES, m, 4 * (x + i), ORDER, mask)
                    .fma(FloatVector.fromMemorySegment(SPECIES, other, 4 * (y + i), ORDER, mask), acc);
        }
        return VectorMath.sum(acc);
    }

    /** Residual forward, a vector at a time (the masked last vector covers a ragged end). */
    @Override
    public void residualForward(MemorySegment out, MemorySegment a, MemorySegment b, long N) {
        Parallel.forRange(N, LANES, (start, end) -> {
            for (long i = start; i < end; i += LANES) {
                var mask = SPECIES.indexInRange(0, (int) Math.min(LANES, end - i));
                FloatVector.fromMemorySegment(SPECIES, a, (i) * 4L, ORDER, mask)
                        .add(FloatVector.fromMemorySegment(SPECIES, b, (i) * 4L, ORDER, mask))
                        .intoMemorySegment(out, (i) * 4L, ORDER, mask);
            }
        });
    }

    @Override
    public void residualBackward(MemorySegment da, MemorySegment db, MemorySegment dout, long N) {
        Parallel.forRange(N, LANES, (start, end) -> {
            for (long i = start; i < end; i += LANES) {
                var mask = SPECIES.indexInRange(0, (int) Math.min(LANES, end - i));
                var d = FloatVector.fromMemorySegment(SPECIES, dout, (i) * 4L, ORDER, mask);
                FloatVector.fromMemorySegment(SPECIES, da, (i) * 4L, ORDER, mask)
                        .add(d)
                        .intoMemorySegment(da, (i) * 4L, ORDER, mask);
                FloatVector.fromMemorySegment(SPECIES, db, (i) * 4L, ORDER, mask)
                        .add(d)
                        .intoMemorySegment(db, (i) * 4L, ORDER, mask);
            }
        });
    }
}
