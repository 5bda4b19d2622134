package dev.llmc4j.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.Executors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The GPU communicator without a GPU: NCCL is the stand-in library (fake_nccl.c, which records each call's
 * arguments) and "device memory" is host memory handed out by a fake {@link NcclCommunicator.Device} that logs
 * what it is asked. What is checked is what we pass and in which order; that NCCL then averages right is NCCL's job,
 * and untested here.
 */
class NcclCommunicatorTest {
    @TempDir
    Path dir;

    static final MemorySegment STREAM = MemorySegment.ofAddress(0x5000);

    @AfterEach
    void clearLibrary() {
        System.clearProperty("llmc.nccl.lib");
    }

    /** Device memory that is host memory: addresses are native segments' addresses. */
    static final class HostDevice implements NcclCommunicator.Device {
        final Arena arena = Arena.ofShared();
        final List<String> log = new ArrayList<>();
        long allocated;

        @Override
        public void makeCurrent() {
            log.add("current");
        }

        @Override
        public long allocate(long bytes) {
            log.add("alloc " + bytes);
            allocated = arena.allocate(bytes, 8).address();
            return allocated;
        }

        @Override
        public void free(long address) {
            log.add("free " + (address == allocated));
        }

        @Override
        public void copyToDevice(long destination, MemorySegment source, long bytes) {
            log.add("up " + bytes + (destination == allocated ? " scratch" : ""));
            MemorySegment.copy(source, 0, MemorySegment.ofAddress(destination).reinterpret(bytes), 0, bytes);
        }

        @Override
        public void copyToHost(MemorySegment destination, long source, long bytes, MemorySegment stream) {
            log.add("down " + bytes + (source == allocated ? " scratch" : "") + " after stream " + stream.address());
            MemorySegment.copy(MemorySegment.ofAddress(source).reinterpret(bytes), 0, destination, 0, bytes);
        }
    }

    /** The MPI communicator a run under mpirun keeps: records abort and close. */
    static final class RecordingHost implements Communicator {
        final List<String> log = new ArrayList<>();

        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int size() {
            return 2;
        }

        @Override
        public String description() {
            return "host";
        }

        @Override
        public void allReduceMean(MemorySegment floats, long count) {
            log.add("allReduce");
        }

        @Override
        public float allReduceMean(float value) {
            log.add("mean");
            return value;
        }

        @Override
        public double allReduceSum(double value) {
            log.add("sum");
            return value;
        }

        @Override
        public void reduceScatterMean(MemorySegment floats, long shardCount) {}

        @Override
        public void allGather(MemorySegment floats, long shardCount) {}

        @Override
        public void broadcast(MemorySegment bytes, int root) {
            log.add("broadcast");
        }

        @Override
        public void barrier() {}

        @Override
        public void abort(int exitCode) {
            log.add("abort " + exitCode);
        }

        @Override
        public void close() {
            log.add("close");
        }
    }

    @Test
    void oneProcessOverTheFileSystemMakesAnIdAndJoins() throws Exception {
        var fake = FakeNccl.load(dir);
        var device = new HostDevice();
        var gpus = new MultiGpuConfig(1, 0, 8, NcclIdExchange.Method.FS, null, dir.resolve("sync"));
        try (var comm = NcclCommunicator.open(gpus, Nccl.load(), device, STREAM, null)) {
            assertEquals(1L, fake.last(0), "ncclCommInitRank nranks");
            assertEquals(0L, fake.last(1), "ncclCommInitRank rank");
            assertEquals(0, comm.rank());
            assertEquals(1, comm.size());
            assertEquals("NCCL 2.19.3, 1 GPU (NCCL id over fs)", comm.description());
            assertEquals(
                    List.of("current", "current", "alloc 8"),
                    device.log,
                    "context current before ncclCommInitRank and the scratch");
        }
        assertEquals(101L, fake.last(5), "close destroys the communicator");
        assertEquals("free true", device.log.getLast());
    }

    @Test
    void twoRanksMeetOverASharedFolder() throws Exception {
        FakeNccl.load(dir);
        var nccl = Nccl.load();
        try (var pool = Executors.newFixedThreadPool(2)) {
            var ranks = new ArrayList<java.util.concurrent.Future<int[]>>();
            for (int rank = 0; rank < 2; rank++) {
                var gpus = new MultiGpuConfig(2, rank, 8, NcclIdExchange.Method.FS, null, dir.resolve("shared"));
                ranks.add(pool.submit(() -> {
                    try (var comm = NcclCommunicator.open(gpus, nccl, new HostDevice(), STREAM, null)) {
                        return new int[] {comm.rank(), comm.size()};
                    }
                }));
            }
            assertArrayEquals(new int[] {0, 2}, ranks.get(0).get());
            assertArrayEquals(new int[] {1, 2}, ranks.get(1).get());
        }
    }

    @Test
    void deviceCollectivesWorkInPlaceOnTheCallersStream() throws Exception {
        var fake = FakeNccl.load(dir);
        var nccl = Nccl.load();
        var device = new HostDevice();
        var host = new RecordingHost();
        try (var comm = new NcclCommunicator(
                nccl, nccl.initRank(2, nccl.uniqueId(), 1), device, STREAM, host, "NCCL id over mpi")) {
            assertEquals("NCCL 2.19.3, 2 GPUs (NCCL id over mpi)", comm.description());
            var side = MemorySegment.ofAddress(0x7000);
            device.log.clear();
            comm.allReduceMean(0x10000, 124_475_904, Nccl.DataType.BFLOAT16, side);
            //                         send     recv     count        bf16 avg comm stream
            assertArrayEquals(new long[] {0x10000, 0x10000, 124_475_904, 9, 4, 1, 0x7000}, fake.lastCall());
            // rank 1 of 2, 1000 bf16 per piece: its piece starts 2000 bytes in; in place means recv = send + that
            comm.reduceScatterMean(0x10000, 1000, Nccl.DataType.BFLOAT16, side);
            assertArrayEquals(new long[] {0x10000, 0x10000 + 2000, 1000, 9, 4, 1, 0x7000}, fake.lastCall());
            comm.allGather(0x10000, 1000, Nccl.DataType.FLOAT32, side);
            assertArrayEquals(
                    new long[] {0x10000 + 4000, 0x10000, 1000, 7, -1, 1, 0x7000},
                    fake.lastCall(),
                    "send = recv + rank piece");
            comm.groupStart();
            assertEquals(1, fake.last(7), "inside a group");
            comm.groupEnd();
            assertEquals(0, fake.last(7));
            assertEquals(List.of(), device.log, "no copies: the data stays on the GPU");
        }
        assertEquals(List.of("close"), host.log, "MPI is finalized with the NCCL communicator");
    }

    @Test
    void numbersGoUpThroughTheScratchBufferAndComeBack() throws Exception {
        var fake = FakeNccl.load(dir);
        var nccl = Nccl.load();
        var device = new HostDevice();
        try (var comm = new NcclCommunicator(
                nccl, nccl.initRank(2, nccl.uniqueId(), 0), device, STREAM, null, "NCCL id over tcp")) {
            long scratch = device.allocated;
            device.log.clear();
            // the stand-in's all-reduce leaves the buffer as it is: what comes back is what went up
            assertEquals(3.25f, comm.allReduceMean(3.25f));
            assertArrayEquals(
                    new long[] {scratch, scratch, 1, 7, 4, 1, 0x5000},
                    fake.lastCall(),
                    "float32, avg, on the model's stream");
            assertEquals(List.of("current", "up 4 scratch", "down 4 scratch after stream 20480"), device.log);

            device.log.clear();
            assertEquals(1e-3, comm.allReduceSum(1e-3));
            assertArrayEquals(new long[] {scratch, scratch, 1, 8, 0, 1, 0x5000}, fake.lastCall(), "float64, sum");
            assertEquals(List.of("current", "up 8 scratch", "down 8 scratch after stream 20480"), device.log);

            device.log.clear();
            comm.barrier();
            assertEquals(
                    List.of("current", "up 4 scratch", "down 4 scratch after stream 20480"),
                    device.log,
                    "a barrier is a collective every rank joins, then a wait for the stream");

            var host = Arena.ofAuto().allocate(16);
            assertThrows(UnsupportedOperationException.class, () -> comm.allReduceMean(host, 4));
            assertThrows(UnsupportedOperationException.class, () -> comm.reduceScatterMean(host, 2));
            assertThrows(UnsupportedOperationException.class, () -> comm.allGather(host, 2));
        }
    }

    @Test
    void versionNumbers() {
        assertEquals("2.19.3", NcclCommunicator.versionName(21903));
        assertEquals("2.10.3", NcclCommunicator.versionName(21003));
    }
}
