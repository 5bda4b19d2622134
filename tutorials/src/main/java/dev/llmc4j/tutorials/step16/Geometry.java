package dev.llmc4j.tutorials.step16;

/**
 * Step 16: launch geometry, how many blocks of how many threads a kernel gets. Pure arithmetic, so the lesson and
 * the test need no GPU. gpt2-cuda's {@code Launch} is the real one.
 *
 * <p>A launch is a grid of blocks; each block has up to 1024 threads, run in warps of 32 on one multiprocessor.
 * The kernel sees {@code blockIdx}, {@code blockDim} and {@code threadIdx} and computes its own index.
 */
public final class Geometry {
    private Geometry() {}

    public static final int WARP = 32;
    /** The cap on grid.x for grid-stride kernels (Launch.MAX_GRID_STRIDE_BLOCKS): more blocks would only queue. */
    public static final int MAX_BLOCKS = 65536;

    // tag::geometry[]
    /** One thread per element: ceil(n / block) blocks, at least one. The last block may stick out past n. */
    public static int blocksFor(long n, int threadsPerBlock) {
        return (int) Math.max(1, (n + threadsPerBlock - 1) / threadsPerBlock);
    }

    /**
     * A grid-stride kernel loops {@code for (i = global id; i < n; i += total threads)}, so any grid covers any n:
     * one thread per element up to a cap, then each thread takes several elements.
     */
    public static int gridStrideBlocks(long n, int threadsPerBlock) {
        return (int) Math.min(blocksFor(n, threadsPerBlock), MAX_BLOCKS);
    }

    /** One warp (32 threads) per row, as LayerNorm and the plain attention do: rows * 32 threads in all. */
    public static int warpPerRowBlocks(long rows, int threadsPerBlock) {
        if (threadsPerBlock % WARP != 0)
            throw new IllegalArgumentException("block must be whole warps: " + threadsPerBlock);
        return blocksFor(rows * WARP, threadsPerBlock);
    }
    // end::geometry[]
}
