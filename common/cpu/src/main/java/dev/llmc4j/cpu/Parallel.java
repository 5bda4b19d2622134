package dev.llmc4j.cpu;

import java.util.ArrayList;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.Future;

/**
 * Coarse parallel loops over exactly the machine's cores: a range is cut into one contiguous chunk per thread
 * (no per-row tasks, no nested parallel streams), run on a pool of our own, and the caller waits for all.
 *
 * <p>The thread count is {@code -Dllmc.threads=N}, else the OMP_NUM_THREADS environment variable (what llm.c
 * users set), else the number of available processors.
 */
public final class Parallel {
    private Parallel() {}

    /** The body of a parallel loop: handles indices [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void run(long start, long end);
    }

    private static final int THREADS = threadCount();
    private static final ForkJoinPool POOL = new ForkJoinPool(THREADS);

    public static int threads() {
        return THREADS;
    }

    /** Runs body over [0, n) split into at most {@link #threads()} contiguous chunks. */
    public static void forRange(long n, RangeBody body) {
        forRange(n, 1, body);
    }

    /**
     * Runs body over [0, n) in contiguous chunks whose boundaries are multiples of {@code grain} (so a tiled
     * kernel gets whole tiles), at most one chunk per thread.
     */
    public static void forRange(long n, long grain, RangeBody body) {
        if (n <= 0) return;
        long tiles = (n + grain - 1) / grain;
        int chunks = (int) Math.min(THREADS, tiles);
        if (chunks <= 1
                || Thread.currentThread() instanceof ForkJoinWorkerThread worker
                        && worker.getPool() == POOL) { // already inside a parallel loop: run serially
            body.run(0, n);
            return;
        }
        var futures = new ArrayList<Future<?>>(chunks);
        for (int c = 0; c < chunks; c++) {
            long start = Math.min(n, tiles * c / chunks * grain);
            long end = Math.min(n, tiles * (c + 1) / chunks * grain);
            if (start < end) futures.add(POOL.submit(() -> body.run(start, end)));
        }
        for (var future : futures) {
            try {
                future.get();
            } catch (InterruptedException e) {
                Thread.currentThread().interrupt();
                throw new IllegalStateException("interrupted while waiting for a parallel loop", e);
            } catch (ExecutionException e) {
                if (e.getCause() instanceof RuntimeException runtime) throw runtime;
                if (e.getCause() instanceof Error error) throw error;
                throw new IllegalStateException(e.getCause());
            }
        }
    }

    private static int threadCount() {
        String property = System.getProperty("llmc.threads");
        String env = System.getenv("OMP_NUM_THREADS");
        for (String value : new String[] {property, env}) {
            if (value != null && !value.isBlank()) {
                try {
                    int n = Integer.parseInt(value.trim());
                    if (n > 0) return n;
                } catch (NumberFormatException ignored) {
                    // fall through to the next source
                }
            }
        }
        return Runtime.getRuntime().availableProcessors();
    }
}
