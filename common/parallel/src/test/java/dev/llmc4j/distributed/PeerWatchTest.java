package dev.llmc4j.distributed;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.function.BooleanSupplier;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;

/** What every peer watch shares: the failure line, what a run does with it, which runs get a watch at all. */
class PeerWatchTest {

    /** Collects the failures a watch reports, in place of stopping the process. */
    static final class Recorder implements Consumer<PeerWatch.Failure> {
        final BlockingQueue<PeerWatch.Failure> failures = new LinkedBlockingQueue<>();

        @Override
        public void accept(PeerWatch.Failure failure) {
            failures.add(failure);
        }

        /** The next failure reported, waiting for it (generously: never a measure of speed). */
        PeerWatch.Failure next() throws InterruptedException {
            PeerWatch.Failure failure = failures.poll(10, TimeUnit.SECONDS);
            assertNotNull(failure, "no failure reported");
            return failure;
        }

        void assertNone() {
            assertNull(failures.peek(), "a failure was reported");
        }
    }

    /** Polls until {@code condition} holds (a thread of the watch has done its part), failing after 10 s. */
    static void waitUntil(BooleanSupplier condition, String what) throws InterruptedException {
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
        while (!condition.getAsBoolean()) {
            assertTrue(System.nanoTime() < deadline, "timed out waiting until " + what);
            Thread.sleep(10);
        }
    }

    /**
     * A rank in a JVM of its own, to be killed for real (SIGKILL: no shutdown hook, no goodbye): see
     * {@link PeerWatchChild} for the arguments.
     */
    static Process startChildRank(String... args) throws java.io.IOException {
        var command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-cp",
                System.getProperty("java.class.path"),
                "-XX:TieredStopAtLevel=1",
                PeerWatchChild.class.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command)
                .redirectOutput(ProcessBuilder.Redirect.DISCARD)
                .redirectError(ProcessBuilder.Redirect.INHERIT)
                .start();
    }

    @Test
    void stopProcessPrintsOneLineAbortsNcclThenHaltsWithOne() {
        var bytes = new ByteArrayOutputStream();
        var err = new PrintStream(bytes, true, StandardCharsets.UTF_8);
        List<String> log = new ArrayList<>();
        var stop = PeerWatch.stopProcess(err, () -> log.add("ncclCommAbort"), code -> log.add("halt " + code));

        stop.accept(new PeerWatch.Failure(2, 4, "failed: CUDA out of memory"));

        assertEquals(
                "error: rank 2 of 4 failed: CUDA out of memory" + System.lineSeparator(),
                bytes.toString(StandardCharsets.UTF_8));
        assertEquals(List.of("ncclCommAbort", "halt 1"), log);
    }

    @Test
    void aFailingAbortHookStillHalts() {
        var bytes = new ByteArrayOutputStream();
        List<String> log = new ArrayList<>();
        var stop = PeerWatch.stopProcess(
                new PrintStream(bytes, true, StandardCharsets.UTF_8),
                () -> {
                    throw new IllegalStateException("unhandled system error");
                },
                code -> log.add("halt " + code));

        stop.accept(new PeerWatch.Failure(0, 2, TcpPeerWatch.NO_GOODBYE));

        assertTrue(bytes.toString(StandardCharsets.UTF_8)
                .startsWith("error: rank 0 of 2 closed its connection without saying goodbye" + System.lineSeparator()
                        + "ncclCommAbort: unhandled system error"));
        assertEquals(List.of("halt 1"), log);
    }

    @Test
    void mpiRunsAndSingleProcessesWatchNothing() {
        Runnable never = () -> {
            throw new AssertionError("no abort expected");
        };
        assertSame(
                PeerWatch.NONE,
                PeerWatch.start(
                        new MultiGpuConfig(1, 0, 8, NcclIdExchange.Method.TCP, null, null),
                        Duration.ofSeconds(1),
                        never));
        assertSame(
                PeerWatch.NONE,
                PeerWatch.start(
                        new MultiGpuConfig(4, 1, 8, NcclIdExchange.Method.MPI, null, null),
                        Duration.ofSeconds(1),
                        never));
        PeerWatch.NONE.reportFailure("nothing happens");
        PeerWatch.NONE.close();
    }

    @Test
    void messagesTravelAsOneLine() {
        assertEquals(
                "CUDA error at step 3: out of memory", PeerWatch.oneLine("CUDA error at step 3:\r\nout of memory\n"));
        assertEquals("(no message)", PeerWatch.oneLine(null));
        assertEquals("(no message)", PeerWatch.oneLine("  \n"));
        assertEquals("60 s", PeerWatch.describe(Duration.ofSeconds(60)));
        assertEquals("300 ms", PeerWatch.describe(Duration.ofMillis(300)));
        assertEquals(Duration.ofMillis(120), PeerWatch.heartbeatPeriod(Duration.ofMillis(600)));
        assertEquals(Duration.ofSeconds(5), PeerWatch.heartbeatPeriod(Duration.ofSeconds(60)));
    }
}
