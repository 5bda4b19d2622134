package dev.llmc4j.tutorials.step17;

/**
 * Step 17: the all-reduce that averages P processes' gradients, done the way NCCL and Open MPI do it for large
 * buffers, simulated in one process: the P ranks stand in a ring, each vector is cut into P chunks, and every rank
 * only ever talks to its right-hand neighbour.
 * <pre>
 * reduce-scatter, P-1 rounds: in round s rank r sends chunk (r - s) mod P to rank r+1, which adds it to its own;
 *                             afterwards rank r holds the complete sum of chunk (r + 1) mod P
 * all-gather,     P-1 rounds: in round s rank r sends its finished chunk (r + 1 - s) mod P to rank r+1, which keeps it
 * </pre>
 * Each rank sends 2(P-1) chunks of N/P numbers: 2(P-1)/P·N in all, almost 2N however many ranks there are. That is
 * why data parallelism scales: the traffic per rank does not grow with P.
 */
public final class RingAllReduce {
    private RingAllReduce() {}

    /** Numbers each rank sent in the last call. */
    public static long sentPerRank;

    /** In place: every ranks[r] ends as the element-wise mean of all of them. ranks[r].length % P == 0. */
    public static void allReduceMean(double[][] ranks) {
        int P = ranks.length, N = ranks[0].length, chunk = N / P;
        sentPerRank = 0;
        // reduce-scatter
        for (int round = 0; round < P - 1; round++) {
            double[][] messages = new double[P][];
            for (int r = 0; r < P; r++) messages[r] = slice(ranks[r], Math.floorMod(r - round, P), chunk); // all send at once
            for (int r = 0; r < P; r++) {
                int to = (r + 1) % P, c = Math.floorMod(r - round, P);
                for (int i = 0; i < chunk; i++) ranks[to][c * chunk + i] += messages[r][i];
            }
            sentPerRank += chunk;
        }
        // rank r now owns the sum of chunk (r + 1) mod P: divide it, then pass the finished chunks around
        for (int r = 0; r < P; r++) {
            int c = (r + 1) % P;
            for (int i = 0; i < chunk; i++) ranks[r][c * chunk + i] /= P;
        }
        for (int round = 0; round < P - 1; round++) {
            double[][] messages = new double[P][];
            for (int r = 0; r < P; r++) messages[r] = slice(ranks[r], Math.floorMod(r + 1 - round, P), chunk);
            for (int r = 0; r < P; r++) {
                int to = (r + 1) % P, c = Math.floorMod(r + 1 - round, P);
                System.arraycopy(messages[r], 0, ranks[to], c * chunk, chunk);
            }
            sentPerRank += chunk;
        }
    }

    private static double[] slice(double[] values, int chunkIndex, int chunk) {
        double[] out = new double[chunk];
        System.arraycopy(values, chunkIndex * chunk, out, 0, chunk);
        return out;
    }
}
