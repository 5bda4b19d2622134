package dev.llmc4j.gpt2.cuda;

/**
 * Launch geometry: how many blocks of how many threads each kernel gets. Pure arithmetic, tested on the CPU.
 *
 * <p>Conventions of the kernels in src/main/cuda:
 * <ul>
 *   <li>element-wise kernels use a grid-stride loop, so any grid covers any n; we still size the grid to one
 *       thread per element (capped) so that nothing loops when it need not;</li>
 *   <li>row kernels (LayerNorm, plain attention) use one warp (32 threads) per row;</li>
 *   <li>column reductions are cut into a row-chunk count that depends only on the row count, so their summation
 *       order, and hence every bit of the result, is the same on every run and every GPU.</li>
 * </ul>
 */
public final class Launch {
    private Launch() {}

    public static final int WARP = 32;
    /** Threads per block for element-wise kernels. */
    public static final int ELEMENTWISE_BLOCK = 512;
    /** Upper bound on grid.x for grid-stride kernels: plenty to fill any GPU, small enough to never overflow. */
    public static final int MAX_GRID_STRIDE_BLOCKS = 65536;
    /** Blocks of stage 1 of the global norm; fixed so the reduction tree never changes. */
    public static final int NORM_BLOCKS = 1024;

    public static final int NORM_BLOCK = 512;
    /** At most this many row chunks in the deterministic column sums (bias and LayerNorm weight gradients). */
    public static final int MAX_ROW_CHUNKS = 256;

    /** A CUDA dim3. */
    public record Dim3(int x, int y, int z) {
        public Dim3 {
            if (x <= 0 || y <= 0 || z <= 0)
                throw new IllegalArgumentException("dim3 must be positive: " + x + "," + y + "," + z);
        }

        public static Dim3 of(int x) {
            return new Dim3(x, 1, 1);
        }

        public static Dim3 of(int x, int y) {
            return new Dim3(x, y, 1);
        }

        public static Dim3 of(int x, int y, int z) {
            return new Dim3(x, y, z);
        }

        public long threads() {
            return (long) x * y * z;
        }

        @Override
        public String toString() {
            return "(" + x + "," + y + "," + z + ")";
        }
    }

    /** ceil(n / d) for n >= 0, d > 0. */
    public static long ceilDiv(long n, long d) {
        if (n < 0 || d <= 0) throw new IllegalArgumentException("ceilDiv(" + n + ", " + d + ")");
        return (n + d - 1) / d;
    }

    public static int ceilDivInt(long n, long d) {
        return Math.toIntExact(ceilDiv(n, d));
    }

    /** Grid for a grid-stride kernel over n elements with blocks of {@code block} threads (at least one block). */
    public static Dim3 gridStride(long n, int block) {
        return Dim3.of((int) Math.max(1, Math.min(ceilDiv(n, block), MAX_GRID_STRIDE_BLOCKS)));
    }

    /** Grid for one warp per row: rows * 32 threads in blocks of {@code block}. */
    public static Dim3 warpPerRow(long rows, int block) {
        if (block % WARP != 0) throw new IllegalArgumentException("block must be a multiple of 32: " + block);
        return Dim3.of(Math.max(1, ceilDivInt(rows * WARP, block)));
    }

    /** Rows per chunk for the deterministic column sums: as few chunks as possible but at most MAX_ROW_CHUNKS. */
    public static int rowsPerChunk(int rows) {
        return Math.max(1, ceilDivInt(rows, MAX_ROW_CHUNKS));
    }

    public static int rowChunks(int rows) {
        return Math.max(1, ceilDivInt(rows, rowsPerChunk(rows)));
    }

    /** Grid of the flash-attention kernels: (query or key tiles of 64, heads, batch). */
    public static Dim3 flashAttention(int batch, int seqLen, int heads) {
        return Dim3.of(ceilDivInt(seqLen, FlashAttention.TILE), heads, batch);
    }
}
