package dev.llmc4j.distributed;

import static dev.llmc4j.distributed.PeerWatchTest.waitUntil;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.llmc4j.distributed.NcclCommunicatorTest.HostDevice;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NCCL communicator with a peer watch, against the stand-in NCCL library: close says goodbye after
 * ncclCommDestroy, and a peer's failure reaches ncclCommAbort and the halt through {@link PeerWatch#stopProcess}.
 */
class NcclCommunicatorPeerWatchTest {
    @TempDir
    Path dir;

    static final MemorySegment STREAM = MemorySegment.ofAddress(0x5000);
    static final int DESTROYED = 101, ABORTED = 201; // what the stand-in records for ncclCommDestroy / ncclCommAbort

    @AfterEach
    void clearLibrary() {
        System.clearProperty("llmc.nccl.lib");
    }

    @Test
    void closeDestroysNcclThenSaysGoodbye() throws Exception {
        var fake = FakeNccl.load(dir);
        var nccl = Nccl.load();
        List<String> log = new ArrayList<>();
        var comm = new NcclCommunicator(
                nccl, nccl.initRank(2, nccl.uniqueId(), 0), new HostDevice(), STREAM, null, "NCCL id over tcp");
        comm.watchPeers(new PeerWatch() {
            @Override
            public void reportFailure(String message) {
                log.add("reportFailure " + message);
            }

            @Override
            public void close() {
                log.add("bye, after NCCL call " + fake.last(5));
            }
        });
        comm.close();
        comm.close();
        assertEquals(List.of("bye, after NCCL call " + DESTROYED), log);
    }

    @Test
    void aPeersFailureAbortsNcclAndHalts() throws Exception {
        var fake = FakeNccl.load(dir);
        var nccl = Nccl.load();
        var bytes = new ByteArrayOutputStream();
        List<Integer> halts = new CopyOnWriteArrayList<>();
        try (var rank0 = new TcpPeerWatch(0, 2, null, 0, Duration.ofSeconds(30), failure -> {})) {
            var comm = new NcclCommunicator(
                    nccl, nccl.initRank(2, nccl.uniqueId(), 1), new HostDevice(), STREAM, null, "NCCL id over tcp");
            var stop = PeerWatch.stopProcess(
                    new PrintStream(bytes, true, StandardCharsets.UTF_8), comm::abortCollectives, halts::add);
            comm.watchPeers(new TcpPeerWatch(1, 2, "127.0.0.1", rank0.port(), Duration.ofSeconds(30), stop));
            waitUntil(() -> rank0.watching(1), "rank 0 accepted rank 1");

            rank0.reportFailure("NaN loss at step 7");

            waitUntil(() -> !halts.isEmpty(), "rank 1 halted");
            assertEquals(List.of(1), halts);
            assertEquals(ABORTED, fake.last(5), "ncclCommAbort, so that a collective waiting for rank 0 returns");
            assertEquals(
                    "error: rank 0 of 2 failed: NaN loss at step 7" + System.lineSeparator(),
                    bytes.toString(StandardCharsets.UTF_8));
            comm.close();
        }
    }
}
