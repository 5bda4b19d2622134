package dev.llmc4j.tutorials.step17;

/**
 * ZeRO-1 built from the ring's two halves, simulated over P ranks in one process. Every rank keeps all parameters
 * and its own gradients, but AdamW's moments only for the chunk the reduce-scatter finishes on it
 * ({@link RingAllReduce#ownedChunk}), N/P numbers each:
 * <pre>
 * 1. reduce-scatter the gradients: rank r ends with the summed gradient of its chunk (divide by P: the mean)
 * 2. the global norm for clipping: each rank sums the squares of its chunk; an all-reduce of that one number
 * 3. AdamW on the chunk, with the chunk's m and v
 * 4. all-gather the parameters: every rank receives the chunks the others updated
 * </pre>
 * Same arithmetic as plain data parallelism (an all-reduce is a reduce-scatter plus an all-gather), same traffic
 * (the all-gather moves parameters instead of gradients), but m and v take 8N/P bytes per rank instead of 8N.
 * With P = 1 it is one process running AdamW on the whole batch's gradient.
 */
public final class Zero1 {

    private final int P, N, chunk;
    private final double[][] params; // [rank][N], identical on all ranks between steps
    private final double[][] m, v; // [rank][N/P]: the moments of the rank's own chunk only
    private int t;
    private double lastNorm;

    public Zero1(double[] initial, int P) {
        if (initial.length % P != 0)
            throw new IllegalArgumentException("N = " + initial.length + " does not split evenly over P = " + P);
        this.P = P;
        this.N = initial.length;
        this.chunk = N / P;
        params = new double[P][];
        for (int r = 0; r < P; r++) params[r] = initial.clone();
        m = new double[P][chunk];
        v = new double[P][chunk];
    }

    // tag::step[]
    /**
     * One optimizer step; grads[r] is rank r's gradient on its own slice of the batch (overwritten: the ring
     * works in place). Clips the mean gradient to global norm maxNorm, then AdamW with decoupled weight decay.
     */
    public void step(
            double[][] grads, double lr, double beta1, double beta2, double eps, double weightDecay, double maxNorm) {
        t++;
        RingAllReduce.reduceScatter(grads); // 1. rank r: the SUM of its chunk
        double[][] squares = new double[P][P]; // 2. one number per rank, padded to P for the ring
        for (int r = 0; r < P; r++) {
            int from = RingAllReduce.ownedChunk(r, P) * chunk;
            for (int i = 0; i < chunk; i++) {
                grads[r][from + i] /= P; //    the mean gradient of the chunk
                squares[r][0] += grads[r][from + i] * grads[r][from + i];
            }
        }
        RingAllReduce.allReduceMean(squares); //    mean of the P partial sums ...
        lastNorm = Math.sqrt(squares[0][0] * P); //    ... times P: the sum over all N
        double gradScale = lastNorm > maxNorm ? maxNorm / lastNorm : 1.0;
        for (int r = 0; r < P; r++) { // 3. AdamW on the owned chunk only
            int from = RingAllReduce.ownedChunk(r, P) * chunk;
            for (int i = 0; i < chunk; i++) {
                double g = grads[r][from + i] * gradScale;
                m[r][i] = beta1 * m[r][i] + (1 - beta1) * g;
                v[r][i] = beta2 * v[r][i] + (1 - beta2) * g * g;
                double mHat = m[r][i] / (1 - Math.pow(beta1, t)), vHat = v[r][i] / (1 - Math.pow(beta2, t));
                double p = params[r][from + i];
                params[r][from + i] = p - lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * p);
            }
        }
        RingAllReduce.allGather(params); // 4. everyone gets every updated chunk
    }
    // end::step[]

    public double[] parameters(int rank) {
        return params[rank];
    }

    /** How many first moments (m) rank r keeps: N/P. */
    public int firstMomentsOnRank(int rank) {
        return m[rank].length;
    }

    /** How many second moments (v) rank r keeps: N/P. */
    public int secondMomentsOnRank(int rank) {
        return v[rank].length;
    }

    /** The global gradient norm of the last step, before clipping. */
    public double lastGradientNorm() {
        return lastNorm;
    }

    /** Bytes one rank keeps in fp32 for training: parameters, gradients, m and v (activations aside). */
    public static long bytesPerRank(long numParameters, int P, boolean zero1) {
        return 4 * numParameters + 4 * numParameters + 8 * (zero1 ? numParameters / P : numParameters);
    }
}
