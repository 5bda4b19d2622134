package dev.llmc4j.distributed;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.Locale;
import java.util.function.Supplier;

/**
 * Hands rank 0's NCCL unique id (128 bytes) to every other rank before {@code ncclCommInitRank}, in one of llm.c's
 * three ways ({@code -pi}):
 * <ul>
 * <li>{@code mpi}: MPI_Bcast, when mpirun (or srun with PMIx) started the job;</li>
 * <li>{@code tcp}: rank 0 listens on a port (12345) and sends the id to each rank that connects to {@code -ps host};</li>
 * <li>{@code fs}: rank 0 writes {@code <-pf dir>/ncclUniqueId.sync} atomically, the others poll for it: for Slurm
 *     clusters without PMIx, where srun starts the processes but no MPI connects them.</li>
 * </ul>
 * The id itself comes from {@code ncclGetUniqueId} on rank 0 ({@link Nccl#uniqueId()}); here it is just bytes, so the
 * exchange is tested without a GPU.
 */
public final class NcclIdExchange {
    private NcclIdExchange() {}

    public static final int DEFAULT_PORT = 12345;

    /** How the id travels: {@code -pi mpi|tcp|fs}. */
    public enum Method {
        MPI,
        TCP,
        FS;

        public static Method parse(String name) {
            return switch (name.toLowerCase(Locale.ROOT)) {
                case "mpi" -> MPI;
                case "tcp" -> TCP;
                case "fs" -> FS;
                default -> throw new LlmcException("-pi: expected mpi, tcp or fs, found " + name);
            };
        }
    }

    /** MPI: rank 0 makes the id, MPI_Bcast hands it to all. */
    public static byte[] viaMpi(Communicator comm, Supplier<byte[]> makeId) {
        try (var arena = Arena.ofConfined()) {
            var id = arena.allocate(Nccl.UNIQUE_ID_BYTES);
            if (comm.rank() == 0) id.copyFrom(java.lang.foreign.MemorySegment.ofArray(checked(makeId.get())));
            comm.broadcast(id, 0);
            return id.toArray(ValueLayout.JAVA_BYTE);
        }
    }

    /**
     * TCP: rank 0 makes the id, listens on {@code port} (all interfaces) and sends it to each of the other
     * numProcesses-1 ranks, which connect to {@code host:port}, retrying until rank 0 is up or {@code timeout} passes.
     */
    public static byte[] viaTcp(
            int rank, int numProcesses, String host, int port, Supplier<byte[]> makeId, Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        if (rank == 0) {
            byte[] id = checked(makeId.get());
            try (var server = new ServerSocket()) {
                server.setReuseAddress(true);
                server.bind(new InetSocketAddress(port));
                for (int served = 0; served < numProcesses - 1; served++) {
                    server.setSoTimeout(remainingMillis(deadline));
                    try (Socket client = server.accept()) {
                        client.getOutputStream().write(id);
                        client.getOutputStream().flush();
                    } catch (SocketTimeoutException e) {
                        throw new LlmcException(
                                "NCCL id over TCP: rank 0 heard from %d of the %d other ranks on port %d within %s; are they started, with -ps pointing at this machine?"
                                        .formatted(served, numProcesses - 1, port, timeout));
                    }
                }
                return id;
            } catch (IOException e) {
                throw new LlmcException(
                        "NCCL id over TCP: rank 0 cannot serve port " + port + ": " + e.getMessage(), e);
            }
        }
        if (host == null || host.isBlank())
            throw new LlmcException("-pi tcp needs -ps, the address of rank 0's machine");
        IOException last = null;
        while (System.nanoTime() < deadline) {
            try (var socket = new Socket()) {
                socket.connect(
                        new InetSocketAddress(host, port), Math.max(1, Math.min(1000, remainingMillis(deadline))));
                socket.setSoTimeout(remainingMillis(deadline));
                return readId(socket.getInputStream(), host + ":" + port);
            } catch (IOException e) { // rank 0 not listening yet: try again shortly
                last = e;
                sleep(100);
            }
        }
        throw new LlmcException("NCCL id over TCP: rank %d could not get the id from %s:%d within %s (%s)"
                .formatted(rank, host, port, timeout, last == null ? "timed out" : last.getMessage()));
    }

    /**
     * Shared file system: rank 0 makes the id and writes it to {@code dir/ncclUniqueId[.tag].sync} (temp file and
     * rename, so nobody reads half of it); the others poll for the file, read it and leave an acknowledgement, after
     * which rank 0 removes the files. The tag (Slurm's job id, say) keeps a crashed earlier run's file from being read.
     */
    public static byte[] viaFileSystem(
            int rank, int numProcesses, Path dir, String tag, Supplier<byte[]> makeId, Duration timeout) {
        if (dir == null) throw new LlmcException("-pi fs needs -pf, a folder every process can read and write");
        long deadline = System.nanoTime() + timeout.toNanos();
        String base = "ncclUniqueId" + (tag == null || tag.isBlank() ? "" : "." + tag);
        Path idFile = dir.resolve(base + ".sync");
        try {
            if (rank == 0) {
                byte[] id = checked(makeId.get());
                Files.createDirectories(dir);
                AtomicFiles.write(idFile, id);
                for (int other = 1; other < numProcesses; other++) { // wait until everyone has it, then clean up
                    Path ack = dir.resolve(base + ".ack" + other);
                    while (!Files.exists(ack)) {
                        if (System.nanoTime() > deadline)
                            throw new LlmcException(
                                    "NCCL id over the file system: rank %d did not read %s within %s; is %s shared by all machines?"
                                            .formatted(other, idFile, timeout, dir));
                        sleep(20);
                    }
                }
                Files.deleteIfExists(idFile);
                for (int other = 1; other < numProcesses; other++)
                    Files.deleteIfExists(dir.resolve(base + ".ack" + other));
                return id;
            }
            while (true) {
                if (Files.exists(idFile)) {
                    byte[] id = Files.readAllBytes(idFile);
                    if (id.length == Nccl.UNIQUE_ID_BYTES) {
                        AtomicFiles.write(dir.resolve(base + ".ack" + rank), new byte[0]);
                        return id;
                    }
                }
                if (System.nanoTime() > deadline)
                    throw new LlmcException(
                            "NCCL id over the file system: rank %d found no %s within %s; is rank 0 running, with the same -pf?"
                                    .formatted(rank, idFile, timeout));
                sleep(20);
            }
        } catch (IOException e) {
            throw new LlmcException("NCCL id over the file system (" + idFile + "): " + e.getMessage(), e);
        }
    }

    private static byte[] readId(InputStream in, String from) throws IOException {
        byte[] id = in.readNBytes(Nccl.UNIQUE_ID_BYTES);
        if (id.length != Nccl.UNIQUE_ID_BYTES)
            throw new LlmcException("NCCL id over TCP from %s: expected %d bytes, found %d"
                    .formatted(from, Nccl.UNIQUE_ID_BYTES, id.length));
        return id;
    }

    private static byte[] checked(byte[] id) {
        if (id.length != Nccl.UNIQUE_ID_BYTES)
            throw new IllegalArgumentException("an NCCL id has 128 bytes, found " + id.length);
        return Arrays.copyOf(id, id.length);
    }

    private static int remainingMillis(long deadline) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, (deadline - System.nanoTime()) / 1_000_000));
    }

    private static void sleep(long millis) {
        try {
            Thread.sleep(millis);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LlmcException("interrupted while exchanging the NCCL id");
        }
    }
}
