package dev.llmc4j.cpu;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.concurrent.Callable;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicIntegerArray;
import org.junit.jupiter.api.Test;

/**
 * The parallel loop's contract, whatever the thread count (CI machines have 2 cores, a laptop more): every index
 * once, chunk boundaries on the grain, a failure in any chunk reaches the caller and leaves the crew working,
 * nested loops and loops from several threads at once run (serially where they must).
 */
class ParallelTest {

    /** Counts how often each index of [0, n) was handed to the body, over many loops back to back. */
    @Test
    void everyIndexOnceOnTheGrain() {
        for (int n : new int[] {1, 2, 3, 7, 64, 1000, 4097}) {
            for (int grain : new int[] {1, 6, 64}) {
                var seen = new AtomicIntegerArray(n);
                for (int repeat = 0; repeat < 50; repeat++) {
                    Parallel.forRange(n, grain, (start, end) -> {
                        assertTrue(start % grain == 0, "chunk start " + start + " not on the grain " + grain);
                        for (long i = start; i < end; i++) seen.incrementAndGet((int) i);
                    });
                }
                int[] expected = new int[n], actual = new int[n];
                java.util.Arrays.fill(expected, 50);
                for (int i = 0; i < n; i++) actual[i] = seen.get(i);
                assertArrayEquals(expected, actual, "n=" + n + " grain=" + grain);
            }
        }
        Parallel.forRange(0, (start, end) -> {
            throw new AssertionError("an empty range runs nothing");
        });
    }

    /** A failure in any chunk (the caller's or a worker's) is thrown to the caller; the next loop still runs. */
    @Test
    void failuresReachTheCallerAndTheCrewGoesOn() {
        long n = 4L * Parallel.threads();
        for (long failing : new long[] {0, n - 1}) { // the first chunk is the caller's, the last a worker's
            var thrown = assertThrows(
                    IllegalArgumentException.class,
                    () -> Parallel.forRange(n, (start, end) -> {
                        if (start <= failing && failing < end) throw new IllegalArgumentException("index " + failing);
                    }));
            assertEquals("index " + failing, thrown.getMessage());
            var sum = new java.util.concurrent.atomic.AtomicLong();
            Parallel.forRange(n, (start, end) -> sum.addAndGet(end - start));
            assertEquals(n, sum.get());
        }
    }

    /** A loop inside a chunk runs serially in that chunk's thread, and covers its range. */
    @Test
    void nestedLoopsRunInTheirChunk() {
        int outer = 8, inner = 100;
        var seen = new AtomicIntegerArray(outer * inner);
        Parallel.forRange(outer, (start, end) -> {
            for (long o = start; o < end; o++) {
                long row = o;
                Parallel.forRange(inner, (s, e) -> {
                    for (long i = s; i < e; i++) seen.incrementAndGet((int) (row * inner + i));
                });
            }
        });
        for (int i = 0; i < outer * inner; i++) assertEquals(1, seen.get(i), "index " + i);
    }

    /** Loops started by several threads at once each cover their own range (the crew serves one at a time). */
    @Test
    void loopsFromSeveralThreadsAtOnce() throws Exception {
        int callers = 4, n = 10_000;
        try (var executor = Executors.newFixedThreadPool(callers)) {
            var tasks = new ArrayList<Callable<Long>>();
            for (int c = 0; c < callers; c++) {
                tasks.add(() -> {
                    long total = 0;
                    for (int repeat = 0; repeat < 200; repeat++) {
                        var sum = new java.util.concurrent.atomic.AtomicLong();
                        Parallel.forRange(n, 16, (start, end) -> {
                            long s = 0;
                            for (long i = start; i < end; i++) s += i;
                            sum.addAndGet(s);
                        });
                        total += sum.get();
                    }
                    return total;
                });
            }
            for (var result : executor.invokeAll(tasks)) assertEquals(200L * n * (n - 1) / 2, result.get());
        }
    }
}
