package dev.llmc4j.distributed;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * NVIDIA's NCCL (libnccl.so.2) through the FFM API, loaded at run time: only a GPU run needs it, so nothing links
 * against it and a machine without it gets a clear message from {@link #load()}, not a crash at start-up.
 *
 * <p>What llm.c uses: a communicator per process ({@code ncclCommInitRank} from a 128-byte unique id that rank 0
 * makes and {@link NcclIdExchange} hands to the others over MPI, TCP or a shared folder), all-reduce with
 * {@code ncclAvg} for ZeRO-0, reduce-scatter plus all-gather for ZeRO-1, all launched on a CUDA stream; group
 * calls batch several of them into one launch. Device buffers are raw CUDA addresses ({@code long}), streams are
 * {@code CUstream} handles, as the CUDA trainer's driver binding passes them.
 */
public final class Nccl {

    public static final int UNIQUE_ID_BYTES = 128;

    /** {@code typedef struct { char internal[128]; } ncclUniqueId;}, passed BY VALUE to ncclCommInitRank. */
    static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(
            MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES, JAVA_BYTE).withName("internal"));

    /** ncclDataType_t values (nccl.h). */
    public enum DataType {
        INT32(2),
        FLOAT16(6),
        FLOAT32(7),
        FLOAT64(8),
        BFLOAT16(9);
        final int code;

        DataType(int code) {
            this.code = code;
        }

        /** Bytes per element. */
        public int bytes() {
            return switch (this) {
                case FLOAT16, BFLOAT16 -> 2;
                case INT32, FLOAT32 -> 4;
                case FLOAT64 -> 8;
            };
        }
    }

    /** ncclRedOp_t values (nccl.h); AVG divides by the number of ranks inside the reduction (NCCL ≥ 2.10). */
    public enum ReduceOp {
        SUM(0),
        MAX(2),
        AVG(4);
        final int code;

        ReduceOp(int code) {
            this.code = code;
        }
    }

    private static final Linker LINKER = Linker.nativeLinker();

    private final MethodHandle getVersion, getUniqueId, commInitRank, commDestroy, commAbort, getErrorString;
    private final MethodHandle allReduce, reduceScatter, allGather, broadcast, groupStart, groupEnd;
    private final int version;

    /** The library to load: -Dllmc.nccl.lib or LLMC_NCCL_LIB if set, else libnccl.so.2 from the loader's search path. */
    static String libraryName() {
        String name = System.getProperty("llmc.nccl.lib", System.getenv("LLMC_NCCL_LIB"));
        return name != null && !name.isBlank() ? name : "libnccl.so.2";
    }

    /** Loads NCCL, or explains how to get it. */
    public static Nccl load() {
        return load(List.of(libraryName()));
    }

    /**
     * Loads the first of {@code candidates} (sonames for the dynamic loader, or paths) that opens, or explains how
     * to get NCCL, naming every candidate tried. The GPU side passes the CUDA and Python-wheel folders too.
     */
    public static Nccl load(List<String> candidates) {
        for (String candidate : candidates) {
            try {
                if (candidate.contains("/") && !Files.exists(Path.of(candidate))) continue;
                return new Nccl(
                        candidate.contains("/")
                                ? SymbolLookup.libraryLookup(Path.of(candidate), Arena.global())
                                : SymbolLookup.libraryLookup(candidate, Arena.global()));
            } catch (IllegalArgumentException e) {
                // try the next one
            }
        }
        throw new LlmcException("cannot load NCCL (tried " + String.join(", ", candidates) + "), which multi-GPU"
                + " training needs: install it (the libnccl2 package of NVIDIA's CUDA repository, or pip's"
                + " nvidia-nccl-cu12, then add its lib folder to LD_LIBRARY_PATH) or point LLMC_NCCL_LIB at"
                + " libnccl.so.2");
    }

    private Nccl(SymbolLookup lib) {
        // every NCCL function returns ncclResult_t, 0 = ncclSuccess
        getVersion = bind(lib, "ncclGetVersion", ADDRESS);
        getUniqueId = bind(lib, "ncclGetUniqueId", ADDRESS);
        commInitRank = bind(lib, "ncclCommInitRank", ADDRESS, JAVA_INT, UNIQUE_ID, JAVA_INT);
        commDestroy = bind(lib, "ncclCommDestroy", ADDRESS);
        commAbort = bind(lib, "ncclCommAbort", ADDRESS);
        getErrorString =
                LINKER.downcallHandle(find(lib, "ncclGetErrorString"), FunctionDescriptor.of(ADDRESS, JAVA_INT));
        //                                         sendbuff recvbuff count      datatype  op        comm     stream
        allReduce = bind(lib, "ncclAllReduce", JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        reduceScatter =
                bind(lib, "ncclReduceScatter", JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        //                                         sendbuff recvbuff sendcount  datatype  comm     stream
        allGather = bind(lib, "ncclAllGather", JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, ADDRESS, ADDRESS);
        //                                         sendbuff recvbuff count      datatype  root      comm     stream
        broadcast = bind(lib, "ncclBroadcast", JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, ADDRESS, ADDRESS);
        groupStart = bind(lib, "ncclGroupStart");
        groupEnd = bind(lib, "ncclGroupEnd");
        try (var arena = Arena.ofConfined()) {
            var cell = arena.allocate(JAVA_INT);
            check("ncclGetVersion", (int) getVersion.invokeExact(cell));
            version = cell.get(JAVA_INT, 0);
        } catch (RuntimeException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    private static MemorySegment find(SymbolLookup lib, String name) {
        return lib.find(name)
                .orElseThrow(() -> new LlmcException(
                        "the NCCL library lacks " + name + " (too old? llmc4j needs NCCL 2.10 or newer)"));
    }

    private static MethodHandle bind(SymbolLookup lib, String name, MemoryLayout... args) {
        return LINKER.downcallHandle(find(lib, name), FunctionDescriptor.of(JAVA_INT, args));
    }

    /** NCCL's version as the number it reports, 21903 for 2.19.3. */
    public int version() {
        return version;
    }

    /** ncclGetErrorString. */
    public String errorString(int result) {
        try {
            var text = (MemorySegment) getErrorString.invokeExact(result);
            return text.reinterpret(1024).getString(0);
        } catch (Throwable e) {
            return "NCCL error " + result;
        }
    }

    private void check(String what, int result) {
        if (result != 0)
            throw new LlmcException("%s failed: %s (ncclResult_t %d)".formatted(what, errorString(result), result));
    }

    @FunctionalInterface
    private interface NcclCall {
        int invoke() throws Throwable;
    }

    private void call(String what, NcclCall call) {
        int result;
        try {
            result = call.invoke();
        } catch (Throwable e) {
            throw new IllegalStateException(what, e);
        }
        check(what, result);
    }

    /** ncclGetUniqueId: rank 0 makes the id that names the new communicator (it embeds rank 0's address). */
    public byte[] uniqueId() {
        try (var arena = Arena.ofConfined()) {
            var id = arena.allocate(UNIQUE_ID);
            call("ncclGetUniqueId", () -> (int) getUniqueId.invokeExact(id));
            return id.toArray(JAVA_BYTE);
        }
    }

    /** ncclCommInitRank: collective over all ranks, which must pass the same id; blocks until all have joined. */
    public Comm initRank(int numRanks, byte[] uniqueId, int rank) {
        if (uniqueId.length != UNIQUE_ID_BYTES)
            throw new IllegalArgumentException("an NCCL id has 128 bytes, found " + uniqueId.length);
        try (var arena = Arena.ofConfined()) {
            var handle = arena.allocate(ADDRESS);
            var id = arena.allocate(UNIQUE_ID);
            MemorySegment.copy(uniqueId, 0, id, JAVA_BYTE, 0, UNIQUE_ID_BYTES);
            call("ncclCommInitRank", () -> (int) commInitRank.invokeExact(handle, numRanks, id, rank));
            return new Comm(handle.get(ADDRESS, 0), numRanks, rank);
        }
    }

    /** ncclGroupStart: the collectives until {@link #groupEnd()} are launched together. */
    public void groupStart() {
        call("ncclGroupStart", () -> (int) groupStart.invokeExact());
    }

    public void groupEnd() {
        call("ncclGroupEnd", () -> (int) groupEnd.invokeExact());
    }

    /** One process's NCCL communicator; its collectives are enqueued on a CUDA stream and return at once. */
    public final class Comm implements AutoCloseable {
        private final MemorySegment handle;
        private final int size, rank;
        private volatile boolean closed; // abort may come from the peer watch's thread

        private Comm(MemorySegment handle, int size, int rank) {
            this.handle = handle;
            this.size = size;
            this.rank = rank;
        }

        public int size() {
            return size;
        }

        public int rank() {
            return rank;
        }

        /** ZeRO-0's gradient reduction: recv = op over ranks of send, count elements (in place when send == recv). */
        public void allReduce(long send, long recv, long count, DataType type, ReduceOp op, MemorySegment stream) {
            call("ncclAllReduce", () ->
                    (int) allReduce.invokeExact(send, recv, count, type.code, op.code, handle, stream));
        }

        /** ZeRO-1's gradient reduction: send holds size·recvCount elements, recv gets this rank's reduced shard. */
        public void reduceScatter(
                long send, long recv, long recvCount, DataType type, ReduceOp op, MemorySegment stream) {
            call("ncclReduceScatter", () ->
                    (int) reduceScatter.invokeExact(send, recv, recvCount, type.code, op.code, handle, stream));
        }

        /** ZeRO-1's parameter gather: recv gets every rank's sendCount elements, in rank order. */
        public void allGather(long send, long recv, long sendCount, DataType type, MemorySegment stream) {
            call("ncclAllGather", () -> (int) allGather.invokeExact(send, recv, sendCount, type.code, handle, stream));
        }

        public void broadcast(long send, long recv, long count, DataType type, int root, MemorySegment stream) {
            call("ncclBroadcast", () ->
                    (int) broadcast.invokeExact(send, recv, count, type.code, root, handle, stream));
        }

        /** Tears the communicator down without waiting for pending work (after a peer failed). */
        public void abort() {
            if (closed) return;
            closed = true;
            call("ncclCommAbort", () -> (int) commAbort.invokeExact(handle));
        }

        @Override
        public void close() {
            if (closed) return;
            closed = true;
            call("ncclCommDestroy", () -> (int) commDestroy.invokeExact(handle));
        }
    }
}
