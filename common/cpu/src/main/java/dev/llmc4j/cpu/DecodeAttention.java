package dev.llmc4j.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * The attention of one generated token: its query against the keys and values that the KV cache holds for
 * positions 0..last, for every head. The work grows with the position (2 x positions x head size multiply-adds per
 * head), small beside the weights at short contexts but not negligible once the weights stream at memory speed,
 * so the heads run in parallel ({@link Parallel}) and the dot products and the weighted sum of values in vectors.
 *
 * <pre>
 *   query  (NH, hs)                 at q[qOffset], heads one after another
 *   keys   (positions, kvStride)    the cache; head h reads its key/value head h / group at (h / group) * hs
 *   values (positions, kvStride)
 *   out    (NH, hs)                 out[h] = softmax(q[h] · keys[t] / sqrt(hs), t <= last) · values[t]
 * </pre>
 *
 * group is 1 for GPT-2 (as many key/value heads as query heads) and NH / NKV for grouped-query attention.
 * {@link #forwardBaseline} is the plain loop it is tested against.
 */
public final class DecodeAttention {
    private DecodeAttention() {}

    private static final VectorSpecies<Float> S = VectorMath.SPECIES;
    private static final int W = S.length();
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    /** The fast version. */
    public static void forward(
            MemorySegment out,
            MemorySegment q,
            long qOffset,
            MemorySegment keys,
            MemorySegment values,
            int kvStride,
            int NH,
            int group,
            int hs,
            int last) {
        float scale = (float) (1.0 / Math.sqrt(hs));
        int full = hs - hs % W;
        Parallel.forRange(NH, (firstHead, endHead) -> {
            float[] scores = new float[last + 1];
            float[] sum = new float[hs];
            for (int h = (int) firstHead; h < endHead; h++) {
                long query = (qOffset + (long) h * hs) * Float.BYTES;
                long kvHead = (long) (h / group) * hs;
                float max = Float.NEGATIVE_INFINITY;
                for (int t = 0; t <= last; t++) {
                    long key = ((long) t * kvStride + kvHead) * Float.BYTES;
                    var dots = FloatVector.zero(S);
                    for (int i = 0; i < full; i += W) {
                        long at = (long) i * Float.BYTES;
                        dots = FloatVector.fromMemorySegment(S, q, query + at, ORDER)
                                .fma(FloatVector.fromMemorySegment(S, keys, key + at, ORDER), dots);
                    }
                    float dot = dots.reduceLanes(VectorOperators.ADD);
                    for (int i = full; i < hs; i++)
                        dot += q.get(FLOAT, query + (long) i * Float.BYTES)
                                * keys.get(FLOAT, key + (long) i * Float.BYTES);
                    scores[t] = dot * scale;
                    max = Math.max(max, scores[t]);
                }
                float total = exponentiate(scores, last, max);
                Arrays.fill(sum, 0);
                for (int t = 0; t <= last; t++) { // sum += p_t · v_t, one row of values at a time
                    long value = ((long) t * kvStride + kvHead) * Float.BYTES;
                    var p = FloatVector.broadcast(S, scores[t]);
                    for (int i = 0; i < full; i += W)
                        p.fma(
                                        FloatVector.fromMemorySegment(S, values, value + (long) i * Float.BYTES, ORDER),
                                        FloatVector.fromArray(S, sum, i))
                                .intoArray(sum, i);
                    for (int i = full; i < hs; i++)
                        sum[i] += scores[t] * values.get(FLOAT, value + (long) i * Float.BYTES);
                }
                long output = (long) h * hs;
                for (int i = 0; i < hs; i++) out.setAtIndex(FLOAT, output + i, sum[i] / total);
            }
        });
    }

    /** The plain loops: one head after another, llm.c's order of operations. */
    public static void forwardBaseline(
            MemorySegment out,
            MemorySegment q,
            long qOffset,
            MemorySegment keys,
            MemorySegment values,
            int kvStride,
            int NH,
            int group,
            int hs,
            int last) {
        float scale = (float) (1.0 / Math.sqrt(hs));
        float[] scores = new float[last + 1];
        for (int h = 0; h < NH; h++) {
            long query = qOffset + (long) h * hs, kvHead = (long) (h / group) * hs;
            float max = Float.NEGATIVE_INFINITY;
            for (int t = 0; t <= last; t++) {
                float dot = 0;
                for (int i = 0; i < hs; i++)
                    dot += q.getAtIndex(FLOAT, query + i) * keys.getAtIndex(FLOAT, (long) t * kvStride + kvHead + i);
                scores[t] = dot * scale;
                max = Math.max(max, scores[t]);
            }
            float total = exponentiate(scores, last, max);
            for (int i = 0; i < hs; i++) {
                float sum = 0;
                for (int t = 0; t <= last; t++)
                    sum += scores[t] / total * values.getAtIndex(FLOAT, (long) t * kvStride + kvHead + i);
                out.setAtIndex(FLOAT, (long) h * hs + i, sum);
            }
        }
    }

    /** scores[t] = exp(scores[t] - max) for t <= last (the softmax's numerators, max subtracted for range); their sum. */
    private static float exponentiate(float[] scores, int last, float max) {
        float total = 0;
        for (int t = 0; t <= last; t++) {
            scores[t] = (float) Math.exp(scores[t] - max);
            total += scores[t];
        }
        return total;
    }
}
