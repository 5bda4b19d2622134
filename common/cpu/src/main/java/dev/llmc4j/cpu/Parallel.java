package dev.llmc4j.cpu;

import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import java.util.concurrent.locks.ReentrantLock;

/**
 * Coarse parallel loops over exactly the machine's cores: a range is cut into one contiguous chunk per thread
 * (no per-row tasks, no nested parallel streams). The calling thread runs the first chunk and a crew of
 * {@code threads() - 1} workers of our own the others, and the caller returns when all are done.
 *
 * <p>Why a crew and not a thread pool: a d12 training step (B=4, T=64) runs 338 parallel loops and a generated
 * token 122, back to back. A pool's idle thread parks, and waking it took 30 to 50 µs on the project's machine,
 * as long as a small loop itself (a third of a token's time or more). A worker here polls for the next loop for a while
 * ({@link #SPIN_NANOS}) before it parks, so a loop that follows another starts on every core at once.
 *
 * <p>One loop runs at a time: a loop started inside a chunk (nested), or by another thread while one runs, runs
 * serially in its caller. The thread count is {@code -Dllmc.threads=N}, else the OMP_NUM_THREADS environment
 * variable (what llm.c users set), else the number of available processors.
 */
public final class Parallel {
    private Parallel() {}

    /** The body of a parallel loop: handles indices [start, end). */
    @FunctionalInterface
    public interface RangeBody {
        void run(long start, long end);
    }

    private static final int THREADS = threadCount();
    // how long an idle worker keeps polling for the next loop before it parks (a loop's gap in training is µs);
    // none when there are more threads than processors, where a polling thread would take a core from a working one
    private static final long SPIN_NANOS = THREADS <= Runtime.getRuntime().availableProcessors() ? 200_000 : 0;
    private static final ReentrantLock RUNNING = new ReentrantLock(); // held by the caller of the loop that runs
    private static final Crew CREW = new Crew(THREADS - 1);

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
                || Thread.currentThread() instanceof Worker
                || RUNNING.isHeldByCurrentThread() // a loop inside a chunk of this thread's loop
                || !RUNNING.tryLock()) { // another thread's loop holds the crew
            body.run(0, n);
            return;
        }
        try {
            CREW.run(new Loop(body, n, grain, tiles, chunks));
        } finally {
            RUNNING.unlock();
        }
    }

    /** One parallel loop: chunk c covers [start(c), start(c + 1)). */
    private record Loop(RangeBody body, long n, long grain, long tiles, int chunks) {
        long start(int chunk) {
            return Math.min(n, tiles * chunk / chunks * grain);
        }

        void runChunk(int chunk) {
            long start = start(chunk), end = start(chunk + 1);
            if (start < end) body.run(start, end);
        }
    }

    /**
     * The workers and the hand-off. The caller publishes a loop and bumps {@code generation}; every worker sees
     * each generation exactly once, runs its chunk if the loop has one, and counts itself off in {@code pending};
     * the caller runs chunk 0 and waits for {@code pending} to reach 0 before it returns, so no worker still reads
     * a loop when the next one is published. Parking on either side is guarded by a flag written before a
     * re-check (a worker's {@code parked}, the caller's {@code waitingCaller}): the other side reads the flag after
     * its own write, so one of the two always sees the other's.
     */
    private static final class Crew {
        private final Worker[] workers;
        private volatile Loop loop;
        private volatile long generation;
        private final AtomicInteger pending = new AtomicInteger();
        private final AtomicReference<Throwable> failure = new AtomicReference<>();
        private volatile Thread waitingCaller;

        Crew(int size) {
            workers = new Worker[size];
            for (int i = 0; i < size; i++) {
                workers[i] = new Worker(this, i + 1);
                workers[i].start();
            }
        }

        void run(Loop next) {
            failure.set(null);
            pending.set(workers.length);
            loop = next;
            generation++; // only the lock holder writes it
            for (var worker : workers) if (worker.parked) LockSupport.unpark(worker);
            try {
                next.runChunk(0);
            } finally {
                awaitWorkers(); // even when chunk 0 threw: the others may still be writing
                loop = null; // no worker reads it now; let go of what the body holds
            }
            Throwable thrown = failure.get();
            if (thrown instanceof RuntimeException runtime) throw runtime;
            if (thrown instanceof Error error) throw error;
            if (thrown != null) throw new IllegalStateException(thrown);
        }

        private void awaitWorkers() {
            long start = System.nanoTime();
            while (pending.get() != 0) {
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                waitingCaller = Thread.currentThread();
                if (pending.get() != 0) LockSupport.parkNanos(this, 100_000);
                waitingCaller = null;
            }
        }

        /** A worker's life: wait for each generation, run its chunk of that loop, count itself off. */
        void work(Worker self) {
            long seen = 0;
            while (true) {
                seen = awaitGeneration(self, seen);
                Loop current = loop;
                if (self.index < current.chunks()) {
                    try {
                        current.runChunk(self.index);
                    } catch (Throwable t) {
                        failure.compareAndSet(null, t);
                    }
                }
                if (pending.decrementAndGet() == 0) {
                    Thread caller = waitingCaller;
                    if (caller != null) LockSupport.unpark(caller);
                }
            }
        }

        private long awaitGeneration(Worker self, long seen) {
            long start = System.nanoTime();
            while (true) {
                long now = generation;
                if (now != seen) return now;
                if (System.nanoTime() - start < SPIN_NANOS) {
                    Thread.onSpinWait();
                    continue;
                }
                self.parked = true;
                if (generation == seen) LockSupport.park(this);
                self.parked = false;
            }
        }
    }

    /** One of the crew: a daemon thread that runs chunk {@code index} of each loop. */
    private static final class Worker extends Thread {
        private final Crew crew;
        private final int index;
        volatile boolean parked;

        Worker(Crew crew, int index) {
            super("llmc-parallel-" + index);
            this.crew = crew;
            this.index = index;
            setDaemon(true);
        }

        @Override
        public void run() {
            crew.work(this);
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
