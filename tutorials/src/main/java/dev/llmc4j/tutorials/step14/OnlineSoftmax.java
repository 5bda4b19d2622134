package dev.llmc4j.tutorials.step14;

/**
 * Step 14: the online softmax, for one query row, in double.
 *
 * <pre>
 *   scores (n)       s_j = q · k_j / sqrt(hs) for the n keys this query may see
 *   values (n, d)    v_j, row-major
 *   out    (d)       Σ_j softmax(s)_j v_j
 *   lse              log Σ_j exp(s_j), the one number per row the backward needs to rebuild softmax(s)
 * </pre>
 * {@link #twoPass} reads all scores before it can normalise any (step 5's softmax). {@link #online} reads them in
 * blocks and never goes back: it carries a running max m, a running sum l and an unnormalised output o.
 */
public final class OnlineSoftmax {
    private OnlineSoftmax() {}

    /** The attention output of one row and its log-sum-exp. */
    public record Row(double[] out, double lse) {}

    // tag::two-pass[]
    /** Step 5's softmax: pass 1 finds the max, pass 2 sums the exponentials, pass 3 normalises. */
    public static double[] twoPass(double[] scores) {
        double max = Double.NEGATIVE_INFINITY;
        for (double s : scores) max = Math.max(max, s);
        double sum = 0;
        for (double s : scores) sum += Math.exp(s - max);
        var p = new double[scores.length];
        for (int j = 0; j < scores.length; j++) p[j] = Math.exp(scores[j] - max) / sum;
        return p;
    }
    // end::two-pass[]

    // tag::online[]
    /**
     * One pass over the keys in blocks of {@code blockSize}. After each block, for the keys j seen so far:
     * m = max s_j, l = Σ exp(s_j - m), o = Σ exp(s_j - m) v_j. When a block raises the max from m to m', every
     * term already in l and o is exp(s_j - m) and must become exp(s_j - m') = exp(s_j - m) · exp(m - m'):
     * one multiplication by alpha = exp(m - m') rescales them all.
     */
    public static Row online(double[] scores, double[] values, int d, int blockSize) {
        int n = scores.length;
        double m = Double.NEGATIVE_INFINITY; // running max
        double l = 0; // running sum of exp(s_j - m)
        var o = new double[d]; // running Σ exp(s_j - m) v_j, not yet divided by l
        for (int j0 = 0; j0 < n; j0 += blockSize) {
            int j1 = Math.min(j0 + blockSize, n);
            double blockMax = Double.NEGATIVE_INFINITY;
            for (int j = j0; j < j1; j++) blockMax = Math.max(blockMax, scores[j]);
            double mNew = Math.max(m, blockMax);
            double alpha = Math.exp(m - mNew); // 1 if the max did not move; 0 on the first block (m = -inf)
            l *= alpha;
            for (int i = 0; i < d; i++) o[i] *= alpha;
            for (int j = j0; j < j1; j++) {
                double p = Math.exp(scores[j] - mNew); // <= 1: cannot overflow
                l += p;
                for (int i = 0; i < d; i++) o[i] += p * values[j * d + i];
            }
            m = mNew;
        }
        for (int i = 0; i < d; i++) o[i] /= l; // normalise once, at the end
        return new Row(o, m + Math.log(l)); // log Σ exp(s_j) = m + log Σ exp(s_j - m)
    }
    // end::online[]
}
