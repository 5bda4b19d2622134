package dev.llmc4j.tutorials.step17;

/**
 * ZeRO-1 in a few lines, simulated over P ranks in one process. Every rank keeps all parameters and gradients but
 * AdamW's moments only for its shard, the N/P parameters [r·N/P, (r+1)·N/P):
 * <pre>
 * 1. reduce-scatter the gradients: rank r receives the mean gradient of its shard only (the first half of the ring)
 * 2. AdamW on the shard, with the shard's m and v
 * 3. all-gather the parameters: every rank receives the shards the others updated (the second half of the ring)
 * </pre>
 * Same arithmetic as plain data parallelism (an all-reduce is a reduce-scatter plus an all-gather), same traffic,
 * but m and v take 8N/P bytes per rank instead of 8N.
 */
public final class Zero1 {

    private final int P, N, shard;
    private final double[][] params;     // [rank][N], identical on all ranks between steps
    private final double[][] m, v;       // [rank][N/P]: the shards' moments
    private int t;

    public Zero1(double[] initial, int P) {
        this.P = P;
        this.N = initial.length;
        this.shard = N / P;
        if (N % P != 0) throw new IllegalArgumentException("N must split evenly over the ranks");
        params = new double[P][];
        for (int r = 0; r < P; r++) params[r] = initial.clone();
        m = new double[P][shard];
        v = new double[P][shard];
    }

    /** One optimizer step; grads[r] is rank r's gradient on its own slice of the batch. */
    public void step(double[][] grads, double lr, double beta1, double beta2, double eps, double weightDecay) {
        t++;
        for (int r = 0; r < P; r++) {
            int from = r * shard;
            for (int i = 0; i < shard; i++) {
                // 1. reduce-scatter: the mean over ranks of gradient element from+i, which only rank r needs
                double g = 0;
                for (double[] rankGrads : grads) g += rankGrads[from + i];
                g /= P;
                // 2. AdamW on the shard
                m[r][i] = beta1 * m[r][i] + (1 - beta1) * g;
                v[r][i] = beta2 * v[r][i] + (1 - beta2) * g * g;
                double mHat = m[r][i] / (1 - Math.pow(beta1, t)), vHat = v[r][i] / (1 - Math.pow(beta2, t));
                double p = params[r][from + i];
                params[r][from + i] = p - lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * p);
            }
        }
        // 3. all-gather: everyone copies every owner's updated shard
        for (int owner = 0; owner < P; owner++)
            for (int r = 0; r < P; r++)
                if (r != owner) System.arraycopy(params[owner], owner * shard, params[r], owner * shard, shard);
    }

    public double[] parameters(int rank) {
        return params[rank];
    }

    /** Bytes one rank keeps in fp32 for training: parameters, gradients, m and v (activations aside). */
    public static long bytesPerRank(long numParameters, int P, boolean zero1) {
        return 4 * numParameters + 4 * numParameters + 8 * (zero1 ? numParameters / P : numParameters);
    }
}
