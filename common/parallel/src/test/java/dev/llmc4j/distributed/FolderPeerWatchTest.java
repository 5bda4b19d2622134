package dev.llmc4j.distributed;

import static dev.llmc4j.distributed.PeerWatchTest.waitUntil;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.distributed.PeerWatch.Failure;
import dev.llmc4j.distributed.PeerWatchTest.Recorder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The -pi fs liveness channel in a temporary folder: every rank in this JVM (threads), and one in a child JVM. */
class FolderPeerWatchTest {
    @TempDir
    Path dir;

    static final Duration TIMEOUT = Duration.ofSeconds(30); // never reached where a test expects no timeout
    static final Duration PERIOD = Duration.ofMillis(20); // looks often, so an abort is seen at once

    final Recorder[] seen = {new Recorder(), new Recorder(), new Recorder()};

    FolderPeerWatch[] ranks(int size, String tag) {
        var watches = new FolderPeerWatch[size];
        for (int r = 0; r < size; r++) watches[r] = new FolderPeerWatch(r, size, dir, tag, TIMEOUT, PERIOD, seen[r]);
        return watches;
    }

    static void closeAll(FolderPeerWatch... watches) {
        for (var watch : watches) if (watch != null) watch.close();
    }

    List<String> files() throws Exception {
        try (Stream<Path> list = Files.list(dir)) {
            return list.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void aFailingRanksAbortFileStopsEveryOtherRank() throws Exception {
        var watches = ranks(3, "4242");
        try {
            watches[2].reportFailure("CUDA error: an illegal memory access\nwas encountered");

            assertEquals(
                    "CUDA error: an illegal memory access was encountered",
                    Files.readString(dir.resolve("abort.4242.rank2")));
            var expected = new Failure(2, 3, "failed: CUDA error: an illegal memory access was encountered");
            assertEquals(expected, seen[0].next());
            assertEquals(expected, seen[1].next());
            seen[2].assertNone();
        } finally {
            closeAll(watches);
        }
        assertEquals(List.of("abort.4242.rank2"), files()); // the failed rank's message stays; the heartbeats are gone
    }

    @Test
    void aHeartbeatThatStopsChangingIsAFailureAfterTheTimeout() throws Exception {
        Files.writeString(dir.resolve("heartbeat.rank1"), "7"); // rank 1 beat once, then froze (or was killed)
        try (var rank0 = new FolderPeerWatch(0, 2, dir, null, Duration.ofMillis(300), seen[0])) {
            assertEquals(new Failure(1, 2, "stopped answering (no heartbeat for 300 ms)"), seen[0].next());
        }
    }

    @Test
    void aCleanEndReportsNothingAndRemovesTheFiles() throws Exception {
        var watches = ranks(3, null);
        try {
            waitUntil(
                    () -> watches[0].heard(1) && watches[0].heard(2) && watches[1].heard(0),
                    "the ranks heard each other");
            watches[2].close();
            waitUntil(() -> !watches[0].watching(2) && !watches[1].watching(2), "ranks 0 and 1 saw rank 2 leave");
            watches[0].close();
            waitUntil(() -> !watches[1].watching(0), "rank 1 saw rank 0 leave");
            watches[1].close();
            for (var recorder : seen) recorder.assertNone();
        } finally {
            closeAll(watches);
        }
        assertEquals(List.of(), files());
    }

    @Test
    void leftoversOfAnEarlierRunAreRemovedRankByRank() throws Exception {
        for (String name : List.of("abort.7.rank1", "heartbeat.7.rank1", "abort.7.rank2", "abort.rank1"))
            Files.writeString(dir.resolve(name), "old");

        PeerWatch.removeLeftovers(
                new MultiGpuConfig(3, 1, 8, NcclIdExchange.Method.FS, null, dir)); // SLURM_JOB_ID unset here
        FolderPeerWatch.removeLeftovers(dir, "7", 1);

        assertEquals(List.of("abort.7.rank2"), files()); // rank 2 removes its own
    }

    @Test
    void aRankKilledInItsOwnProcessStopsAnswering() throws Exception {
        Process child = PeerWatchTest.startChildRank("fs", "1", "2", dir.toString());
        try { // rank 1 first, so that rank 0's short timeout does not run while a JVM starts
            waitUntil(
                    () -> Files.exists(dir.resolve("heartbeat.rank1")) || !child.isAlive(),
                    "the child JVM joined as rank 1");
            try (var rank0 = new FolderPeerWatch(0, 2, dir, null, Duration.ofMillis(1500), PERIOD, seen[0])) {
                waitUntil(() -> rank0.heard(1) || !child.isAlive(), "rank 0 heard rank 1");
                assertTrue(child.isAlive());
                child.destroyForcibly(); // SIGKILL: its heartbeat file stays, and stops changing
                assertEquals(new Failure(1, 2, "stopped answering (no heartbeat for 1500 ms)"), seen[0].next());
            }
        } finally {
            child.destroyForcibly().waitFor();
        }
    }
}
