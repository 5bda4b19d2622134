package dev.llmc4j.distributed;

import static dev.llmc4j.distributed.PeerWatchTest.waitUntil;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.distributed.PeerWatch.Failure;
import dev.llmc4j.distributed.PeerWatchTest.Recorder;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import org.junit.jupiter.api.Test;

/** The -pi tcp liveness channel on loopback: every rank in this JVM (threads), and one in a child JVM to kill. */
class TcpPeerWatchTest {
    static final Duration TIMEOUT = Duration.ofSeconds(30); // never reached where a test expects no timeout
    static final Duration SHORT = Duration.ofMillis(600); // for the heartbeat tests: pings every 120 ms
    static final String LOOPBACK = "127.0.0.1";

    final Recorder[] seen = {new Recorder(), new Recorder(), new Recorder()};

    /** Rank 0 on a free port, then ranks 1..size-1 connected to it, each reporting to its own recorder. */
    TcpPeerWatch[] ranks(int size) throws InterruptedException {
        return ranks(size, TIMEOUT);
    }

    TcpPeerWatch[] ranks(int size, Duration timeout) throws InterruptedException {
        var watches = new TcpPeerWatch[size];
        watches[0] = new TcpPeerWatch(0, size, null, 0, timeout, seen[0]);
        for (int r = 1; r < size; r++)
            watches[r] = new TcpPeerWatch(r, size, LOOPBACK, watches[0].port(), timeout, seen[r]);
        for (int r = 1; r < size; r++) {
            int peer = r;
            waitUntil(() -> watches[0].watching(peer), "rank 0 accepted rank " + peer);
        }
        return watches;
    }

    static void closeAll(TcpPeerWatch... watches) {
        for (var watch : watches) if (watch != null) watch.close();
    }

    @Test
    void aFailingRankReachesEveryOtherRankThroughRankZero() throws Exception {
        var watches = ranks(3);
        try {
            watches[2].reportFailure("CUDA error: out of memory\nat step 12");

            var expected = new Failure(2, 3, "failed: CUDA error: out of memory at step 12");
            assertEquals(expected, seen[0].next());
            assertEquals(expected, seen[1].next()); // relayed by rank 0
            assertEquals("error: rank 2 of 3 failed: CUDA error: out of memory at step 12", expected.line());
            seen[2].assertNone();
        } finally {
            closeAll(watches);
        }
    }

    @Test
    void aFailingRankZeroReachesEveryOtherRank() throws Exception {
        var watches = ranks(3);
        try {
            watches[0].reportFailure("cannot write checkpoint");

            assertEquals(new Failure(0, 3, "failed: cannot write checkpoint"), seen[1].next());
            assertEquals(new Failure(0, 3, "failed: cannot write checkpoint"), seen[2].next());
            seen[0].assertNone();
        } finally {
            closeAll(watches);
        }
    }

    @Test
    void aConnectionThatEndsWithoutGoodbyeIsAFailureOfThatRank() throws Exception {
        var watches = new TcpPeerWatch[2];
        watches[0] = new TcpPeerWatch(0, 3, null, 0, TIMEOUT, seen[0]);
        try {
            watches[1] = new TcpPeerWatch(1, 3, LOOPBACK, watches[0].port(), TIMEOUT, seen[1]);
            try (var rank2 = new Socket(LOOPBACK, watches[0].port())) { // rank 2 by hand: hello, then gone
                rank2.getOutputStream().write("hello 2\n".getBytes(StandardCharsets.UTF_8));
                waitUntil(() -> watches[0].watching(1) && watches[0].watching(2), "rank 0 accepted ranks 1 and 2");
            }

            var expected = new Failure(2, 3, "closed its connection without saying goodbye");
            assertEquals(expected, seen[0].next());
            assertEquals(expected, seen[1].next()); // relayed as "lost 2 ..."
        } finally {
            closeAll(watches);
        }
    }

    @Test
    void aRankThatLosesRankZeroStops() throws Exception {
        try (var rank0 = new ServerSocket()) { // rank 0 by hand: takes the hello, then goes away
            rank0.bind(new InetSocketAddress(LOOPBACK, 0));
            try (var rank1 = new TcpPeerWatch(1, 2, LOOPBACK, rank0.getLocalPort(), TIMEOUT, seen[1])) {
                try (var socket = rank0.accept()) {
                    var in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
                    assertEquals("hello 1", in.readLine());
                }
                assertEquals(new Failure(0, 2, "closed its connection without saying goodbye"), seen[1].next());
            }
        }
    }

    @Test
    void aCleanEndReportsNothing() throws Exception {
        var watches = ranks(3);
        try {
            watches[2].close(); // bye, then the end of stream: not a failure
            waitUntil(() -> !watches[0].watching(2), "rank 0 saw rank 2 leave");
            watches[0].close(); // rank 0 leaves before rank 1: bye to rank 1
            waitUntil(() -> !watches[1].watching(0), "rank 1 saw rank 0 leave");
            watches[1].close();
            for (var recorder : seen) recorder.assertNone();
        } finally {
            closeAll(watches);
        }
    }

    @Test
    void aRankThatNeverConnectsCountsAsFailedAfterTheTimeout() throws Exception {
        try (var rank0 = new TcpPeerWatch(0, 2, null, 0, Duration.ofMillis(300), seen[0])) {
            assertEquals(
                    new Failure(1, 2, "did not connect to rank 0 (port %d) within 300 ms".formatted(rank0.port())),
                    seen[0].next());
        }
    }

    @Test
    void aRankKilledInItsOwnProcessIsSeenByRankZero() throws Exception {
        try (var rank0 = new TcpPeerWatch(0, 2, null, 0, TIMEOUT, seen[0])) {
            Process child = PeerWatchTest.startChildRank("tcp", "1", "2", Integer.toString(rank0.port()));
            try {
                waitUntil(() -> rank0.watching(1) || !child.isAlive(), "the child JVM joined as rank 1");
                assertTrue(child.isAlive());
                child.destroyForcibly(); // SIGKILL: the kernel closes its socket, without a goodbye
                assertEquals(new Failure(1, 2, "closed its connection without saying goodbye"), seen[0].next());
            } finally {
                child.destroyForcibly().waitFor();
            }
        }
    }

    @Test
    void aRankThatGoesSilentWithoutClosingIsReportedAndRelayed() throws Exception {
        var watches = new TcpPeerWatch[2];
        watches[0] = new TcpPeerWatch(0, 3, null, 0, SHORT, seen[0]);
        watches[1] = new TcpPeerWatch(1, 3, LOOPBACK, watches[0].port(), SHORT, seen[1]);
        try (var rank2 =
                new Socket(LOOPBACK, watches[0].port())) { // rank 2 by hand: hello, then neither writes nor closes
            rank2.getOutputStream().write("hello 2\n".getBytes(StandardCharsets.UTF_8));

            var expected = new Failure(2, 3, "stopped answering (nothing over TCP for 600 ms)");
            assertEquals(expected, seen[0].next());
            assertEquals(expected, seen[1].next()); // relayed as "lost 2 stopped answering ..."
            assertEquals("error: rank 2 of 3 stopped answering (nothing over TCP for 600 ms)", expected.line());
        } finally {
            closeAll(watches);
        }
    }

    @Test
    void aRankZeroThatGoesSilentWithoutClosingIsReported() throws Exception {
        try (var rank0 = new ServerSocket()) { // rank 0 by hand: takes the hello, then says nothing and stays open
            rank0.bind(new InetSocketAddress(LOOPBACK, 0));
            try (var rank1 = new TcpPeerWatch(1, 2, LOOPBACK, rank0.getLocalPort(), SHORT, seen[1]);
                    var socket = rank0.accept()) {
                var in = new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
                assertEquals("hello 1", in.readLine());
                assertEquals("ping", in.readLine()); // rank 1's heartbeat reaches rank 0 (which does not answer)

                assertEquals(new Failure(0, 2, "stopped answering (nothing over TCP for 600 ms)"), seen[1].next());
            }
        }
    }

    @Test
    void healthyRanksKeepEachOtherAliveWithPingsAndEndQuietly() throws Exception {
        // a longer timeout than the failure tests': a stall of the test JVM (GC, JIT, a busy CI machine) must not look
        // like a silent rank here
        var timeout = Duration.ofMillis(1500);
        var watches = ranks(3, timeout);
        try {
            Thread.sleep(timeout.multipliedBy(3)); // three timeouts with nothing but pings on the connections
            for (var recorder : seen) recorder.assertNone();
            assertTrue(watches[0].watching(1)
                    && watches[0].watching(2)
                    && watches[1].watching(0)
                    && watches[2].watching(0));

            watches[2].close(); // bye: rank 0 stops reading rank 2, so no timeout can follow
            waitUntil(() -> !watches[0].watching(2), "rank 0 saw rank 2 leave");
            watches[0].close();
            waitUntil(() -> !watches[1].watching(0), "rank 1 saw rank 0 leave");
            Thread.sleep(timeout.multipliedBy(2)); // longer than a timeout after the goodbyes
            watches[1].close();
            for (var recorder : seen) recorder.assertNone();
        } finally {
            closeAll(watches);
        }
    }
}
