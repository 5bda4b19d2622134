package dev.llmc4j.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.net.ServerSocket;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.IntFunction;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The NCCL id exchange over TCP (loopback) and a shared folder, with one thread per rank. */
class NcclIdExchangeTest {
    @TempDir
    Path dir;

    static byte[] randomId(long seed) {
        byte[] id = new byte[128];
        new Random(seed).nextBytes(id);
        return id;
    }

    /** Runs rank 0..n-1 in threads (rank 0 last, so the others must wait for it); returns each rank's id. */
    static List<byte[]> runRanks(int n, IntFunction<byte[]> rank) throws Exception {
        ExecutorService pool = Executors.newFixedThreadPool(n);
        try {
            var futures = new ArrayList<Future<byte[]>>();
            for (int r = 0; r < n; r++) futures.add(null);
            for (int r = n - 1; r >= 0; r--) {
                int which = r;
                futures.set(r, pool.submit(() -> rank.apply(which)));
                Thread.sleep(50);
            }
            var ids = new ArrayList<byte[]>();
            for (var f : futures) ids.add(f.get(60, TimeUnit.SECONDS));
            return ids;
        } finally {
            pool.shutdownNow();
        }
    }

    static int freePort() throws IOException {
        try (var socket = new ServerSocket(0)) {
            return socket.getLocalPort();
        }
    }

    @Test
    void tcpHandsRankZerosIdToEveryRank() throws Exception {
        int port = freePort();
        byte[] id = randomId(1);
        var made = new AtomicInteger();
        var ids = runRanks(
                4,
                rank -> NcclIdExchange.viaTcp(
                        rank,
                        4,
                        "127.0.0.1",
                        port,
                        () -> {
                            made.incrementAndGet();
                            return id;
                        },
                        Duration.ofSeconds(30)));
        for (byte[] got : ids) assertArrayEquals(id, got);
        assertEquals(1, made.get(), "only rank 0 makes the id");
    }

    @Test
    void fileSystemHandsRankZerosIdToEveryRankAndCleansUp() throws Exception {
        byte[] id = randomId(2);
        Path shared = dir.resolve("shared");
        var ids = runRanks(
                3, rank -> NcclIdExchange.viaFileSystem(rank, 3, shared, "job42", () -> id, Duration.ofSeconds(30)));
        for (byte[] got : ids) assertArrayEquals(id, got);
        try (var left = Files.list(shared)) {
            assertEquals(List.of(), left.toList(), "rank 0 removes the id and the acknowledgements");
        }
    }

    @Test
    void aRankWithoutRankZeroGivesUpWithAClearError() throws Exception {
        var error = assertThrows(
                LlmcException.class,
                () -> NcclIdExchange.viaFileSystem(1, 2, dir, null, () -> randomId(3), Duration.ofMillis(200)));
        assertTrue(
                error.getMessage()
                        .startsWith(
                                "NCCL id over the file system: rank 1 found no " + dir.resolve("ncclUniqueId.sync")),
                error.getMessage());
        int port = freePort();
        error = assertThrows(
                LlmcException.class,
                () -> NcclIdExchange.viaTcp(1, 2, "127.0.0.1", port, () -> randomId(3), Duration.ofMillis(300)));
        assertTrue(
                error.getMessage().startsWith("NCCL id over TCP: rank 1 could not get the id from 127.0.0.1:" + port),
                error.getMessage());
        error = assertThrows(
                LlmcException.class,
                () -> NcclIdExchange.viaTcp(0, 2, null, port, () -> randomId(3), Duration.ofMillis(300)));
        assertTrue(
                error.getMessage()
                        .startsWith("NCCL id over TCP: rank 0 heard from 0 of the 1 other ranks on port " + port),
                error.getMessage());
    }

    @Test
    void mpiExchangeIsABroadcastAndOneProcessNeedsNoPeers() {
        assertArrayEquals(randomId(4), NcclIdExchange.viaMpi(SingleProcess.INSTANCE, () -> randomId(4)));
    }

    @Test
    void multiGpuConfigChecksItsFlagsAndPicksTheLocalDevice() {
        var config = new MultiGpuConfig(16, 11, 8, NcclIdExchange.Method.FS, null, dir);
        assertEquals(3, config.localDevice());
        assertEquals(
                "-pi tcp needs -ps, the address of rank 0's machine",
                assertThrows(
                                LlmcException.class,
                                () -> new MultiGpuConfig(2, 1, 8, NcclIdExchange.Method.TCP, null, null))
                        .getMessage());
        assertEquals(
                "-pi fs needs -pf, a folder all machines share",
                assertThrows(
                                LlmcException.class,
                                () -> new MultiGpuConfig(2, 0, 8, NcclIdExchange.Method.FS, null, null))
                        .getMessage());
        assertEquals(
                "-pr: rank must be in 0..1, found 2",
                assertThrows(
                                LlmcException.class,
                                () -> new MultiGpuConfig(2, 2, 8, NcclIdExchange.Method.MPI, null, null))
                        .getMessage());
        assertEquals(
                "-pi: expected mpi, tcp or fs, found udp",
                assertThrows(LlmcException.class, () -> NcclIdExchange.Method.parse("udp"))
                        .getMessage());
        assertEquals(
                "-pi mpi: start the processes with mpirun (or use -pi tcp / -pi fs with -pn and -pr)",
                assertThrows(
                                LlmcException.class,
                                () -> new MultiGpuConfig(2, 0, 8, NcclIdExchange.Method.MPI, null, null)
                                        .exchangeId(SingleProcess.INSTANCE, () -> randomId(5), Duration.ofSeconds(1)))
                        .getMessage());
    }
}
