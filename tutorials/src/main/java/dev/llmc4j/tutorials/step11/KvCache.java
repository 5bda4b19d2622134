package dev.llmc4j.tutorials.step11;

/**
 * Step 11: the KV cache of one attention layer, in double. Generation feeds one position at a time; that
 * position's key and value never change afterwards (causal attention: a position never sees later ones), so they
 * are computed once, appended to the cache and read by every later query.
 *
 * <pre>
 *   keys, values (maxT, C)   row t: position t's key / value; head h owns channels h*hs .. h*hs+hs-1
 *   append(qkv_t)            qkv_t (3C): this position's query, key and value side by side (as in step 5)
 *     keys[t] = k_t, values[t] = v_t
 *     out_t (C) = per head: softmax_t2(q_t · k_t2 / sqrt(hs)) · v_t2  over t2 = 0..t, all read from the cache
 * </pre>
 * The cache saves recomputing the keys and values (and everything below them: the layers' matmuls), not the
 * attention itself: token t still reads t+1 cached keys, so n tokens read n(n+1)/2 keys per head, O(n²) in total.
 * Without the cache each token reruns the whole prefix, whose attention reads t(t+1)/2 keys: O(n³) in total.
 */
public final class KvCache {
    private final int maxT, C, NH, hs;
    private final double[] keys, values; // (maxT, C) each
    private int length; // positions cached so far
    private long keysRead; // key vectors (one head each) read by queries: the attention's cost

    public KvCache(int maxT, int C, int NH) {
        if (C % NH != 0) throw new IllegalArgumentException("C = " + C + " is not a multiple of NH = " + NH);
        this.maxT = maxT;
        this.C = C;
        this.NH = NH;
        this.hs = C / NH;
        this.keys = new double[maxT * C];
        this.values = new double[maxT * C];
    }

    // tag::append[]
    /** Caches position {@code length}'s key and value from qkv (3C), then returns its attention output (C). */
    public double[] append(double[] qkv) {
        if (length == maxT) throw new IllegalStateException("the cache holds maxT = " + maxT + " positions");
        int t = length++;
        System.arraycopy(qkv, C, keys, t * C, C); // k_t, written once, read by every later query
        System.arraycopy(qkv, 2 * C, values, t * C, C); // v_t
        double scale = 1.0 / Math.sqrt(hs);
        var out = new double[C];
        var scores = new double[t + 1];
        for (int h = 0; h < NH; h++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int t2 = 0; t2 <= t; t2++) { // every cached position, this one included
                double score = 0;
                for (int i = 0; i < hs; i++) score += qkv[h * hs + i] * keys[t2 * C + h * hs + i];
                scores[t2] = score * scale;
                max = Math.max(max, scores[t2]);
                keysRead++;
            }
            double sum = 0;
            for (int t2 = 0; t2 <= t; t2++) sum += scores[t2] = Math.exp(scores[t2] - max);
            for (int t2 = 0; t2 <= t; t2++) {
                for (int i = 0; i < hs; i++) out[h * hs + i] += scores[t2] / sum * values[t2 * C + h * hs + i];
            }
        }
        return out;
    }
    // end::append[]

    /** Positions cached so far. */
    public int length() {
        return length;
    }

    /** Key vectors (one head's slice each) read by the queries so far. */
    public long keysRead() {
        return keysRead;
    }

    /** Memory of a full model's cache: L layers, keys and values of maxT positions of C floats. */
    public static long cacheFloats(int L, int maxT, int C) {
        return 2L * L * maxT * C;
    }
}
