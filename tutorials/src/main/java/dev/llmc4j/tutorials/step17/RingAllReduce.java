package dev.llmc4j.tutorials.step17;

/**
 * Step 17: the all-reduce that averages P processes' gradients, done the way NCCL and Open MPI do it for large
 * buffers, simulated in one process: the P ranks stand in a ring, each vector is cut into P chunks, and every rank
 * only ever talks to its right-hand neighbour. It is two halves, and ZeRO-1 ({@link Zero1}) uses them apart:
 * <pre>
 * reduce-scatter, P-1 rounds: in round s rank r sends chunk (r - s) mod P to rank r+1, which adds it to its own;
 *                             afterwards rank r holds the complete sum of chunk (r + 1) mod P ({@link #ownedChunk})
 * all-gather,     P-1 rounds: in round s rank r sends its finished chunk (r + 1 - s) mod P to rank r+1, which keeps it
 * </pre>
 * Each rank sends 2(P-1) chunks of N/P numbers: 2(P-1)/P·N in all, almost 2N however many ranks there are. That is
 * why data parallelism scales: the traffic per rank does not grow with P.
 */
public final class RingAllReduce {
    private RingAllReduce() {}

    /** The chunk whose complete sum rank r holds after {@link #reduceScatter}; it sends it first in the all-gather. */
    public static int ownedChunk(int rank, int P) {
        return (rank + 1) % P;
    }

    // tag::ring[]
    /**
     * The first half, in place: afterwards chunk {@link #ownedChunk}(r) of ranks[r] is the SUM of that chunk over
     * all ranks (the other chunks hold partial sums, of no use). ranks[r].length % P == 0. Returns the numbers
     * each rank sent: (P-1)·N/P.
     */
    public static long reduceScatter(double[][] ranks) {
        int P = ranks.length, chunk = ranks[0].length / P;
        for (int round = 0; round < P - 1; round++) {
            double[][] messages = new double[P][];
            for (int r = 0; r < P; r++) messages[r] = slice(ranks[r], Math.floorMod(r - round, P), chunk); // at once
            for (int r = 0; r < P; r++) {
                int to = (r + 1) % P, c = Math.floorMod(r - round, P);
                for (int i = 0; i < chunk; i++) ranks[to][c * chunk + i] += messages[r][i];
            }
        }
        return (long) (P - 1) * chunk;
    }

    /**
     * The second half, in place: every rank r starts with chunk {@link #ownedChunk}(r) finished and ends with all P
     * finished chunks. Returns the numbers each rank sent: (P-1)·N/P.
     */
    public static long allGather(double[][] ranks) {
        int P = ranks.length, chunk = ranks[0].length / P;
        for (int round = 0; round < P - 1; round++) {
            double[][] messages = new double[P][];
            for (int r = 0; r < P; r++) messages[r] = slice(ranks[r], Math.floorMod(r + 1 - round, P), chunk);
            for (int r = 0; r < P; r++) {
                int to = (r + 1) % P, c = Math.floorMod(r + 1 - round, P);
                System.arraycopy(messages[r], 0, ranks[to], c * chunk, chunk);
            }
        }
        return (long) (P - 1) * chunk;
    }

    /** In place: every ranks[r] ends as the element-wise mean of all of them. Returns the numbers each rank sent. */
    public static long allReduceMean(double[][] ranks) {
        int P = ranks.length, chunk = ranks[0].length / P;
        long sent = reduceScatter(ranks);
        for (int r = 0; r < P; r++) { // each rank divides only the chunk it finished
            int c = ownedChunk(r, P);
            for (int i = 0; i < chunk; i++) ranks[r][c * chunk + i] /= P;
        }
        return sent + allGather(ranks);
    }
    // end::ring[]

    private static double[] slice(double[] values, int chunkIndex, int chunk) {
        double[] out = new double[chunk];
        System.arraycopy(values, chunkIndex * chunk, out, 0, chunk);
        return out;
    }

    // tag::bandwidth[]
    /**
     * Seconds a ring all-reduce of {@code bytes} takes on P ranks whose links each carry {@code bytesPerSecond} in
     * each direction, counting bandwidth only (no latency, no overlap): each rank sends 2(P-1)/P of the buffer.
     */
    public static double ringSeconds(double bytes, int P, double bytesPerSecond) {
        return 2.0 * (P - 1) / P * bytes / bytesPerSecond;
    }
    // end::bandwidth[]
}
