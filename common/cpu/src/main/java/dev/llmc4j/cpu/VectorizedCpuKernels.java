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
            int OC,
            boolean accumulate) {
        Matmul.VECTOR.backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, accumulate);
    }

    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    /**
     * Softmax over the first V logits of each row; padding columns get 0. Each row runs its whole vectors unmasked
     * and only the ragged end masked (see {@link #residualForward}).
     */
    @Override
    public void softmaxForward(MemorySegment probs, MemorySegment logits, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) softmaxRow(probs, logits, bt, V, Vp);
        });
    }

    /** probs' row bt = softmax of logits' first V values, 0 past V (exponentials and scaling as attention's rows). */
    private static void softmaxRow(MemorySegment probs, MemorySegment logits, long bt, int V, int Vp) {
        long row = bt * Vp;
        float total = expRow(probs, row, logits, V, rowMax(logits, row, V));
        multiplyRow(probs, row, 1 / total, V);
        for (int i = V; i < Vp; i++) probs.setAtIndex(JAVA_FLOAT, row + i, 0);
    }

    /**
     * The largest of x[row + i] for i < n (float indices), at least -10000 (as the baseline). Four running maxima, so
     * that the loop is not one chain of dependent max instructions: 0.07 ns a float instead of 0.25 on a 32k row in
     * L2. (The max of the same floats in any order: the same result.)
     */
    private static float rowMax(MemorySegment x, long row, int n) {
        int whole = n - n % LANES, quads = n - n % (4 * LANES);
        var max0 = FloatVector.broadcast(SPECIES, -10000.0f);
        var max1 = max0;
        var max2 = max0;
        var max3 = max0;
        for (int i = 0; i < quads; i += 4 * LANES) {
            max0 = max0.max(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i), ORDER));
            max1 = max1.max(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i + LANES), ORDER));
            max2 = max2.max(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i + 2 * LANES), ORDER));
            max3 = max3.max(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i + 3 * LANES), ORDER));
        }
        for (int i = quads; i < whole; i += LANES)
            max0 = max0.max(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i), ORDER));
        if (whole < n) {
            var tail = SPECIES.indexInRange(whole, n);
            max0 = max0.max(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + whole), ORDER, tail)
                    .blend(-10000.0f, tail.not()));
        }
        return max0.max(max1).max(max2.max(max3)).reduceLanes(VectorOperators.MAX);
    }

    /** Each row's max (four running maxima), then the sum of its exponentials, none of them stored. */
    @Override
    public void softmaxCrossEntropyForward(
            MemorySegment losses, MemorySegment maxAndSum, MemorySegment logits, int[] targets, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float max = rowMax(logits, row, V), sum = sumOfExp(logits, row, V, max);
                maxAndSum.setAtIndex(JAVA_FLOAT, 2 * bt, max);
                maxAndSum.setAtIndex(JAVA_FLOAT, 2 * bt + 1, sum);
                float logit = logits.getAtIndex(JAVA_FLOAT, row + targets[(int) bt]);
                losses.setAtIndex(JAVA_FLOAT, bt, (float) Math.log(sum) - (logit - max));
            }
        });
    }

    /** Σ exp(x[row + i] - max) for i < n (float indices), as {@link #expRow} sums them, none stored. */
    private static float sumOfExp(MemorySegment x, long row, int n, float max) {
        var sum = FloatVector.zero(SPECIES);
        int whole = n - n % LANES;
        for (int i = 0; i < whole; i += LANES)
            sum = sum.add(VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i), ORDER)
                    .sub(max)));
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            var e = VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + whole), ORDER, mask)
                    .sub(max));
            sum = sum.add(e, mask);
        }
        return VectorMath.sum(sum);
    }

    /** dlogits = exp(logit - max) * (dloss / sum), then dloss off the target: row by row, overwritten. */
    @Override
    public void softmaxCrossEntropyBackward(
            MemorySegment dlogits,
            MemorySegment dlosses,
            MemorySegment logits,
            MemorySegment maxAndSum,
            int[] targets,
            int BT,
            int V,
            int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float dloss = dlosses.getAtIndex(JAVA_FLOAT, bt), max = maxAndSum.getAtIndex(JAVA_FLOAT, 2 * bt);
                writeScaledExpRow(dlogits, logits, row, V, max, dloss / maxAndSum.getAtIndex(JAVA_FLOAT, 2 * bt + 1));
                for (int i = V; i < Vp; i++) dlogits.setAtIndex(JAVA_FLOAT, row + i, 0);
                long target = row + targets[(int) bt];
                dlogits.setAtIndex(JAVA_FLOAT, target, dlogits.getAtIndex(JAVA_FLOAT, target) - dloss);
            }
        });
    }

    /** d[row + i] = exp(x[row + i] - max) * scale for i < n (float indices): whole vectors, then one masked. */
    private static void writeScaledExpRow(MemorySegment d, MemorySegment x, long row, int n, float max, float scale) {
        int whole = n - n % LANES;
        for (int i = 0; i < whole; i += LANES)
            VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + i), ORDER)
                            .sub(max))
                    .mul(scale)
                    .intoMemorySegment(d, 4 * (row + i), ORDER);
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + whole), ORDER, mask)
                            .sub(max))
                    .mul(scale)
                    .intoMemorySegment(d, 4 * (row + whole), ORDER, mask);
        }
    }

    /** dlogits += (probs - onehot(target)) * dloss, row by row (whole vectors unmasked, as softmaxForward). */
    @Override
    public void crossentropySoftmaxBackward(
            MemorySegment dlogits, MemorySegment dlosses, MemorySegment probs, int[] targets, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                float dloss = dlosses.getAtIndex(JAVA_FLOAT, bt);
                addScaledRow(dlogits, probs, 4 * bt * Vp, dloss, V);
                long target = bt * Vp + targets[(int) bt];
                dlogits.setAtIndex(JAVA_FLOAT, target, dlogits.getAtIndex(JAVA_FLOAT, target) - dloss);
            }
        });
    }

    /** d[i] += p[i] * scale for the n floats from byte offset row of each. */
    private static void addScaledRow(MemorySegment d, MemorySegment p, long row, float scale, int n) {
        int whole = n - n % LANES;
        for (int i = 0; i < whole; i += LANES)
            FloatVector.fromMemorySegment(SPECIES, p, row + 4L * i, ORDER)
                    .mul(scale)
                    .add(FloatVector.fromMemorySegment(SPECIES, d, row + 4L * i, ORDER))
                    .intoMemorySegment(d, row + 4L * i, ORDER);
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            FloatVector.fromMemorySegment(SPECIES, p, row + 4L * whole, ORDER, mask)
                    .mul(scale)
                    .add(FloatVector.fromMemorySegment(SPECIES, d, row + 4L * whole, ORDER, mask))
                    .intoMemorySegment(d, row + 4L * whole, ORDER, mask);
        }
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
            // whole vectors without a mask (masked stores are slow on some CPUs), then the last few floats one by
            // one with the same float operations (IEEE division and square root: the same bits as a lane)
            long full = offset + start + (end - start) / LANES * LANES;
            for (long i = offset + start; i < full; i += LANES)
                adamwVector(params, grads, m, v, 4 * i, beta1, beta2, lr, eps, decay, scale, correction1, correction2);
            for (long i = full; i < offset + end; i++) {
                float grad = grads.getAtIndex(JAVA_FLOAT, i) * scale;
                float mean = m.getAtIndex(JAVA_FLOAT, i) * beta1 + grad * (1 - beta1);
                float meanSquare = v.getAtIndex(JAVA_FLOAT, i) * beta2 + grad * grad * (1 - beta2);
                float param = params.getAtIndex(JAVA_FLOAT, i);
                m.setAtIndex(JAVA_FLOAT, i, mean);
                v.setAtIndex(JAVA_FLOAT, i, meanSquare);
                float update = mean / correction1 / ((float) Math.sqrt(meanSquare / correction2) + eps) + param * decay;
                params.setAtIndex(JAVA_FLOAT, i, param - update * lr);
            }
        });
    }

    /** AdamW on the vector at byte offset at of each tensor. */
    private static void adamwVector(
            MemorySegment params,
            MemorySegment grads,
            MemorySegment m,
            MemorySegment v,
            long at,
            float beta1,
            float beta2,
            float lr,
            float eps,
            float decay,
            float scale,
            float correction1,
            float correction2) {
        var grad = FloatVector.fromMemorySegment(SPECIES, grads, at, ORDER).mul(scale);
        var mean =
                FloatVector.fromMemorySegment(SPECIES, m, at, ORDER).mul(beta1).add(grad.mul(1 - beta1));
        var meanSquare = FloatVector.fromMemorySegment(SPECIES, v, at, ORDER)
                .mul(beta2)
                .add(grad.mul(grad).mul(1 - beta2));
        var param = FloatVector.fromMemorySegment(SPECIES, params, at, ORDER);
        var mHat = mean.div(correction1);
        var vHat = meanSquare.div(correction2);
        mean.intoMemorySegment(m, at, ORDER);
        meanSquare.intoMemorySegment(v, at, ORDER);
        var update = mHat.div(vHat.sqrt().add(eps)).add(param.mul(decay));
        param.sub(update.mul(lr)).intoMemorySegment(params, at, ORDER);
    }

    /**
     * Attention, multi-head (NKV = NH: GPT-2) or grouped-query (NKV < NH: Llama 3, each key/value head shared by
     * NH / NKV query heads); see {@link CausalSelfAttention#forward}. Parallel over (b, query head); per head the
     * two products are GEMMs on {@link VectorMatmul}'s micro-kernel, the softmax row by row between them:
     *
     * <pre>
     *   scores (T, T)  = Q (T, hs) · Kᵀ (hs, T)       Kᵀ packed once per head; only t2 <= t is kept, scaled
     *   att    (T, T)  = softmax of each row           zero above the diagonal
     *   out    (T, hs) = att (T, T) · V (T, hs)
     * </pre>
     *
     * Both run in blocks of {@link #QUERY_BLOCK} queries that stop at the block's last key, so the causal mask
     * costs little more than half the square.
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
            MemorySegment keysT = VectorMatmul.Scratch.local((long) hs * T + (long) QUERY_BLOCK * T);
            MemorySegment scores = keysT.asSlice((long) hs * T * Float.BYTES); // (queries, keys) of a block
            for (long index = start; index < end; index++) {
                long b = index / NH, h = index % NH;
                long queryBase = b * T * C3 + h * hs; // q of (b, 0, h)
                long keyBase = b * T * C3 + C + h / group * hs, valueBase = keyBase + (long) NKV * hs;
                long headRows = (b * NH + h) * T * T; // preatt[b, h, 0, 0] and att[b, h, 0, 0]
                transpose(keysT, inp, keyBase, C3, T, hs); // Kᵀ (hs, T)
                for (int t0 = 0; t0 < T; t0 += QUERY_BLOCK) {
                    int queries = Math.min(QUERY_BLOCK, T - t0), keys = t0 + queries; // the block sees keys < keys
                    // scores = Q · Kᵀ (written, not added: no zeroing first)
                    VectorMatmul.gemm(
                            scores, keys, inp, queryBase + t0 * C3, C3, 1, keysT, T, queries, keys, hs, false);
                    for (int q = 0; q < queries; q++) {
                        int t = t0 + q;
                        causalSoftmaxRow(
                                preatt, att, headRows + (long) t * T, scores, (long) q * keys, t + 1, T, scale);
                        out.asSlice(4 * ((b * T + t) * C + h * hs), 4L * hs).fill((byte) 0);
                    }
                    // out rows t0.. (queries, hs) = att (queries, keys) · V (keys, hs)
                    VectorMatmul.gemm(
                            out.asSlice(4 * ((b * T + t0) * C + h * hs)),
                            C,
                            att,
                            headRows + (long) t0 * T,
                            T,
                            1,
                            inp.asSlice(4 * valueBase),
                            C3,
                            queries,
                            hs,
                            keys,
                            true);
                }
            }
        });
    }

    /** Queries per block of the attention GEMMs: a multiple of the micro-kernel's 6 rows and its panel width. */
    private static final int QUERY_BLOCK = 192;

    /**
     * One row of the forward's softmax: preatt[row + t2] = scale * scores[scoreRow + t2] for t2 < n, att the
     * softmax of those (shifted by their maximum so exp cannot overflow), att zero from n to T.
     */
    private static void causalSoftmaxRow(
            MemorySegment preatt,
            MemorySegment att,
            long row,
            MemorySegment scores,
            long scoreRow,
            int n,
            int T,
            float scale) {
        float rowMax = scaleRow(preatt, row, scores, scoreRow, n, scale);
        float total = expRow(att, row, preatt, n, rowMax), inverse = total == 0 ? 0 : 1 / total;
        multiplyRow(att, row, inverse, n);
        att.asSlice(4 * (row + n), 4L * (T - n)).fill((byte) 0);
    }

    // the softmax row's first two passes, each a method of its own: small enough for C1 too (as one method, C1 ran
    // out of virtual registers and left it to the interpreter until C2 compiled it)

    /**
     * preatt[row + t] = scores[scoreRow + t] * scale for t < n; returns their max. Whole vectors unmasked, then one
     * masked vector for a ragged end, as every row loop here: a mask built for every vector of a loop let C2 hoist a
     * profiled check out of it, which failed on a later row's length and threw the compiled loop away (a
     * deoptimization storm, see the docs' Performance page). The same float operations in the same order: the
     * same bits as a masked loop.
     */
    private static float scaleRow(
            MemorySegment preatt, long row, MemorySegment scores, long scoreRow, int n, float scale) {
        var max = FloatVector.broadcast(SPECIES, -10000.0f);
        int whole = n - n % LANES;
        for (int t2 = 0; t2 < whole; t2 += LANES) {
            var score = FloatVector.fromMemorySegment(SPECIES, scores, 4 * (scoreRow + t2), ORDER)
                    .mul(scale);
            score.intoMemorySegment(preatt, 4 * (row + t2), ORDER);
            max = max.max(score);
        }
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            var score = FloatVector.fromMemorySegment(SPECIES, scores, 4 * (scoreRow + whole), ORDER, mask)
                    .mul(scale);
            score.intoMemorySegment(preatt, 4 * (row + whole), ORDER, mask);
            max = max.max(score.blend(-10000.0f, mask.not()));
        }
        return max.reduceLanes(VectorOperators.MAX);
    }

    /** att[row + t] = exp(preatt[row + t] - max) for t < n; returns their sum. */
    private static float expRow(MemorySegment att, long row, MemorySegment preatt, int n, float max) {
        var sum = FloatVector.zero(SPECIES);
        int whole = n - n % LANES;
        for (int t2 = 0; t2 < whole; t2 += LANES) {
            var e = VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, preatt, 4 * (row + t2), ORDER)
                    .sub(max));
            e.intoMemorySegment(att, 4 * (row + t2), ORDER);
            sum = sum.add(e);
        }
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            var e = VectorMath.exp(FloatVector.fromMemorySegment(SPECIES, preatt, 4 * (row + whole), ORDER, mask)
                    .sub(max));
            e.intoMemorySegment(att, 4 * (row + whole), ORDER, mask);
            sum = sum.add(e, mask);
        }
        return VectorMath.sum(sum);
    }

    /** x[row + t] *= factor for t < n (float indices): whole vectors unmasked, then one masked (see scaleRow). */
    private static void multiplyRow(MemorySegment x, long row, float factor, int n) {
        int whole = n - n % LANES;
        for (int t = 0; t < whole; t += LANES)
            FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + t), ORDER)
                    .mul(factor)
                    .intoMemorySegment(x, 4 * (row + t), ORDER);
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            FloatVector.fromMemorySegment(SPECIES, x, 4 * (row + whole), ORDER, mask)
                    .mul(factor)
                    .intoMemorySegment(x, 4 * (row + whole), ORDER, mask);
        }
    }

    /**
     * into[i] += partials[c][i] for i < n, chunk after chunk in order: the per-thread partial sums of a norm's
     * weight gradient, added the same way whatever thread computed each chunk (the same bits for a thread count).
     */
    protected static void addPartialSums(MemorySegment into, float[][] partials, int n) {
        int whole = n - n % LANES;
        for (float[] partial : partials) {
            for (int i = 0; i < whole; i += LANES)
                FloatVector.fromMemorySegment(SPECIES, into, 4L * i, ORDER)
                        .add(FloatVector.fromArray(SPECIES, partial, i))
                        .intoMemorySegment(into, 4L * i, ORDER);
            if (whole < n) {
                var mask = SPECIES.indexInRange(whole, n);
                FloatVector.fromMemorySegment(SPECIES, into, 4L * whole, ORDER, mask)
                        .add(FloatVector.fromArray(SPECIES, partial, whole, mask))
                        .intoMemorySegment(into, 4L * whole, ORDER, mask);
            }
        }
    }

    /**
     * dst (n, rows) = the transpose of rows consecutive vectors of n floats at src[from + r * stride]: LANES x LANES
     * blocks ({@link VectorMath#loadTransposed}), the ragged edges one by one.
     */
    private static void transpose(MemorySegment dst, MemorySegment src, long from, long stride, int rows, int n) {
        float[] block = VectorMatmul.Panels.local().block;
        int rowsFull = rows - rows % LANES, nFull = n - n % LANES;
        for (int r = 0; r < rowsFull; r += LANES)
            for (int i = 0; i < nFull; i += LANES) {
                VectorMath.loadTransposed(block, src, from + r * stride + i, stride); // row j: element i + j
                for (int j = 0; j < LANES; j++)
                    FloatVector.fromArray(SPECIES, block, j * LANES)
                            .intoMemorySegment(dst, 4 * ((long) (i + j) * rows + r), ORDER);
            }
        for (int r = 0; r < rows; r++)
            for (int i = r < rowsFull ? nFull : 0; i < n; i++)
                dst.setAtIndex(JAVA_FLOAT, (long) i * rows + r, src.getAtIndex(JAVA_FLOAT, from + r * stride + i));
    }

    /**
     * Attention backward, parallel over (b, key/value head): a thread owns the key/value head's dk and dv and the
     * dq of its group of query heads, taken in order, so no two threads write the same gradient (for NKV = NH a
     * group is one head). Per query head, four GEMMs and the softmax backward in its closed form
     * dpreatt[t2] = att[t2] (datt[t2] - Σ_t3 att[t3] datt[t3]) (O(T) per row instead of the plain loop's O(T²)):
     *
     * <pre>
     *   datt  (T, T)  += dout (T, hs) · Vᵀ (hs, T)     lower triangle only, in blocks of queries
     *   dpreatt        = softmax backward of datt      kept, and scaled by 1/sqrt(hs) into P (zero above)
     *   dq    (T, hs) += P (T, T) · K (T, hs)           query block [t0, t1) reads keys < t1
     *   dk    (T, hs) += Pᵀ (T, T) · Q (T, hs)          key block [t0, t1) reads queries >= t0
     *   dv    (T, hs) += attᵀ (T, T) · dout (T, hs)     likewise; att is zero above the diagonal (the forward's)
     * </pre>
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
            MemorySegment valuesT = VectorMatmul.Scratch.local((long) hs * T + (long) T * T);
            MemorySegment scaled = valuesT.asSlice((long) hs * T * Float.BYTES); // P (T, T)
            for (long index = start; index < end; index++) {
                long b = index / NKV, kv = index % NKV;
                long keyBase = b * T * C3 + C + kv * hs, valueBase = keyBase + (long) NKV * hs;
                transpose(valuesT, inp, valueBase, C3, T, hs); // Vᵀ (hs, T)
                for (long h = kv * group; h < (kv + 1) * group; h++) {
                    long queryBase = b * T * C3 + h * hs, doutBase = b * T * C + h * hs;
                    long headRows = (b * NH + h) * T * T; // att[b, h, 0, 0]
                    for (int t0 = 0; t0 < T; t0 += QUERY_BLOCK) {
                        int queries = Math.min(QUERY_BLOCK, T - t0), keys = t0 + queries;
                        // dout · Vᵀ goes into P's rows first (written, not added: no zeroing first; each row's
                        // softmax backward reads only its t + 1 keys < keys, then zeroes the rest of the row); each
                        // row then becomes P in place
                        MemorySegment block = scaled.asSlice((long) t0 * T * Float.BYTES);
                        VectorMatmul.gemm(
                                block, T, dout, doutBase + t0 * C, C, 1, valuesT, T, queries, keys, hs, false);
                        for (int q = 0; q < queries; q++) {
                            int t = t0 + q;
                            long row = headRows + (long) t * T;
                            softmaxBackwardRow(datt, dpreatt, att, row, scaled, (long) t * T, t + 1, T, scale);
                        }
                    }
                    for (int t0 = 0; t0 < T; t0 += QUERY_BLOCK) {
                        int rows = Math.min(QUERY_BLOCK, T - t0), t1 = t0 + rows;
                        // dq rows [t0, t1) += P rows · K (keys < t1)
                        VectorMatmul.gemm(
                                dinp.asSlice(4 * (queryBase + t0 * C3)),
                                C3,
                                scaled,
                                (long) t0 * T,
                                T,
                                1,
                                inp.asSlice(4 * keyBase),
                                C3,
                                rows,
                                hs,
                                t1,
                                true);
                        // dk rows [t0, t1) += Pᵀ · Q and dv rows [t0, t1) += attᵀ · dout (queries t >= t0)
                        VectorMatmul.gemm(
                                dinp.asSlice(4 * (keyBase + t0 * C3)),
                                C3,
                                scaled,
                                (long) t0 * T + t0,
                                1,
                                T,
                                inp.asSlice(4 * (queryBase + t0 * C3)),
                                C3,
                                rows,
                                hs,
                                T - t0,
                                true);
                        VectorMatmul.gemm(
                                dinp.asSlice(4 * (valueBase + t0 * C3)),
                                C3,
                                att,
                                headRows + (long) t0 * T + t0,
                                1,
                                T,
                                dout.asSlice(4 * (doutBase + t0 * C)),
                                C,
                                rows,
                                hs,
                                T - t0,
                                true);
                    }
                }
            }
        });
    }

    /**
     * One row of the softmax backward: datt[row + t2] += the row of dout · Vᵀ (found in p), dpreatt[row + t2] +=
     * att (datt - Σ att datt), and p's row becomes dpreatt · scale for t2 < n and zero from n to T. Each pass a
     * method of its own, whole vectors unmasked and one masked vector for a ragged end (see {@link #scaleRow}):
     * written out in one method, the row was too big for C1 ("out of virtual registers"), so until C2 compiled it,
     * and after any trap in C2's code, its vector calls ran boxed. No vector crosses a method boundary, so a pass
     * that C2 does not inline boxes nothing at its call. (Whole vectors through a per-vector method with an
     * all-true mask instead: T=1024 attention backward 32 ms against 21.)
     */
    private static void softmaxBackwardRow(
            MemorySegment datt,
            MemorySegment dpreatt,
            MemorySegment att,
            long row,
            MemorySegment p,
            long pRow,
            int n,
            int T,
            float scale) {
        float rowWeighted = addValueGradients(datt, att, row, p, pRow, n);
        addSoftmaxGradients(dpreatt, att, datt, row, p, pRow, n, rowWeighted, scale);
        p.asSlice(4 * (pRow + n), 4L * (T - n)).fill((byte) 0);
    }

    /** The first pass: datt[row + t2] += p[pRow + t2] for t2 < n; returns Σ att · datt over them. */
    private static float addValueGradients(
            MemorySegment datt, MemorySegment att, long row, MemorySegment p, long pRow, int n) {
        var weighted = FloatVector.zero(SPECIES);
        int whole = n - n % LANES;
        for (int t2 = 0; t2 < whole; t2 += LANES) {
            var d = FloatVector.fromMemorySegment(SPECIES, datt, 4 * (row + t2), ORDER)
                    .add(FloatVector.fromMemorySegment(SPECIES, p, 4 * (pRow + t2), ORDER));
            d.intoMemorySegment(datt, 4 * (row + t2), ORDER);
            weighted = FloatVector.fromMemorySegment(SPECIES, att, 4 * (row + t2), ORDER)
                    .fma(d, weighted);
        }
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            var d = FloatVector.fromMemorySegment(SPECIES, datt, 4 * (row + whole), ORDER, mask)
                    .add(FloatVector.fromMemorySegment(SPECIES, p, 4 * (pRow + whole), ORDER, mask));
            d.intoMemorySegment(datt, 4 * (row + whole), ORDER, mask);
            weighted = FloatVector.fromMemorySegment(SPECIES, att, 4 * (row + whole), ORDER, mask)
                    .fma(d, weighted);
        }
        return VectorMath.sum(weighted);
    }

    /** The second pass: dpreatt += att (datt - rowWeighted) for t2 < n, and p's row = that dpreatt · scale. */
    private static void addSoftmaxGradients(
            MemorySegment dpreatt,
            MemorySegment att,
            MemorySegment datt,
            long row,
            MemorySegment p,
            long pRow,
            int n,
            float rowWeighted,
            float scale) {
        int whole = n - n % LANES;
        for (int t2 = 0; t2 < whole; t2 += LANES) {
            var a = FloatVector.fromMemorySegment(SPECIES, att, 4 * (row + t2), ORDER);
            var d = FloatVector.fromMemorySegment(SPECIES, datt, 4 * (row + t2), ORDER);
            var dp = FloatVector.fromMemorySegment(SPECIES, dpreatt, 4 * (row + t2), ORDER)
                    .add(a.mul(d.sub(rowWeighted)));
            dp.intoMemorySegment(dpreatt, 4 * (row + t2), ORDER);
            dp.mul(scale).intoMemorySegment(p, 4 * (pRow + t2), ORDER);
        }
        if (whole < n) {
            var mask = SPECIES.indexInRange(whole, n);
            var a = FloatVector.fromMemorySegment(SPECIES, att, 4 * (row + whole), ORDER, mask);
            var d = FloatVector.fromMemorySegment(SPECIES, datt, 4 * (row + whole), ORDER, mask);
            var dp = FloatVector.fromMemorySegment(SPECIES, dpreatt, 4 * (row + whole), ORDER, mask)
                    .add(a.mul(d.sub(rowWeighted)));
            dp.intoMemorySegment(dpreatt, 4 * (row + whole), ORDER, mask);
            dp.mul(scale).intoMemorySegment(p, 4 * (pRow + whole), ORDER, mask);
        }
    }

    /**
     * Residual forward, a vector at a time: whole vectors, then one masked vector for a ragged end. (A mask on every
     * vector of a long loop lets C2 hoist a profiled check out of it that can later fail, over and over: the loop
     * is then deoptimized and recompiled again and again, and runs meanwhile in slow, unvectorized code.)
     */
    @Override
    public void residualForward(MemorySegment out, MemorySegment a, MemorySegment b, long N) {
        Parallel.forRange(N, LANES, (start, end) -> add(out, start, a, start, b, start, end - start));
    }

    /**
     * out[o + i] = a[x + i] + b[y + i] for i < n (float indices; out may be a or b): whole vectors unmasked, then
     * one masked vector for a ragged end.
     */
    public static void add(MemorySegment out, long o, MemorySegment a, long x, MemorySegment b, long y, long n) {
        long whole = n - n % LANES;
        for (long i = 0; i < whole; i += LANES)
            FloatVector.fromMemorySegment(SPECIES, a, (x + i) * 4L, ORDER)
                    .add(FloatVector.fromMemorySegment(SPECIES, b, (y + i) * 4L, ORDER))
                    .intoMemorySegment(out, (o + i) * 4L, ORDER);
        if (whole < n) {
            var mask = SPECIES.indexInRange(0, (int) (n - whole));
            FloatVector.fromMemorySegment(SPECIES, a, (x + whole) * 4L, ORDER, mask)
                    .add(FloatVector.fromMemorySegment(SPECIES, b, (y + whole) * 4L, ORDER, mask))
                    .intoMemorySegment(out, (o + whole) * 4L, ORDER, mask);
        }
    }

    @Override
    public void residualBackward(MemorySegment da, MemorySegment db, MemorySegment dout, long N) {
        Parallel.forRange(N, LANES, (start, end) -> {
            add(da, start, da, start, dout, start, end - start); // da += dout
            add(db, start, db, start, dout, start, end - start); // db += dout
        });
    }
}
