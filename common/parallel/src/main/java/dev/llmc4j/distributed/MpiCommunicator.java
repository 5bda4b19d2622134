package dev.llmc4j.distributed;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * A {@link Communicator} over Open MPI's {@code libmpi}, called through the FFM API: no JNI, no Java bindings, just
 * the C functions {@code MPI_Init_thread}, {@code MPI_Allreduce}, {@code MPI_Reduce_scatter_block},
 * {@code MPI_Allgather}, {@code MPI_Bcast}, {@code MPI_Barrier}, {@code MPI_Abort} and {@code MPI_Finalize}.
 *
 * <p><b>This binds Open MPI's ABI, not MPI's API.</b> The MPI standard leaves the handle types to the
 * implementation. In Open MPI, {@code MPI_COMM_WORLD}, {@code MPI_FLOAT}, {@code MPI_SUM}, ... are the addresses of
 * global objects exported by libmpi ({@code ompi_mpi_comm_world}, {@code ompi_mpi_float}, {@code ompi_mpi_op_sum}),
 * which we look up by name, and {@code MPI_IN_PLACE} is the address 1. MPICH and its derivatives (Intel MPI, Cray
 * MPICH) use integer handles instead ({@code MPI_COMM_WORLD == 0x44000000}); running on those would need a second
 * small table of constants here. Open MPI 4 and 5 share these names.
 *
 * <p>Calls come from the training thread only ({@code MPI_THREAD_FUNNELED}); the Java worker threads never touch MPI.
 */
public final class MpiCommunicator implements Communicator {

    private static final Linker LINKER = Linker.nativeLinker();
    private static final MemorySegment MPI_IN_PLACE = MemorySegment.ofAddress(1);
    private static final int MPI_THREAD_FUNNELED = 1;
    private static final int MPI_MAX_STRING = 256; // MPI_MAX_ERROR_STRING and MPI_MAX_LIBRARY_VERSION_STRING
    private static final long MAX_COUNT = Integer.MAX_VALUE; // MPI counts are C ints
    private static final long CHUNK = 1L << 28; // all-reduce large buffers in pieces of 1 GiB

    /** True when this process was started by mpirun/mpiexec (Open MPI) or by srun with PMIx. */
    public static boolean underMpirun() {
        return System.getenv("OMPI_COMM_WORLD_SIZE") != null || System.getenv("PMIX_RANK") != null;
    }

    /** The library to load: {@code LLMC_MPI_LIB} if set, else Debian's Open MPI. */
    static String libraryName() {
        String name = System.getenv("LLMC_MPI_LIB");
        return name != null && !name.isBlank() ? name : "libmpi.so.40";
    }

    private final MemorySegment commWorld, floatType, doubleType, byteType, opSum;
    private final MethodHandle allreduce,
            reduceScatterBlock,
            allgather,
            bcast,
            barrierHandle,
            abortHandle,
            finalize,
            errorString;
    private final int rank, size;
    private final String version;
    private boolean closed;

    private MpiCommunicator(SymbolLookup lib) {
        commWorld = global(lib, "ompi_mpi_comm_world");
        floatType = global(lib, "ompi_mpi_float");
        doubleType = global(lib, "ompi_mpi_double");
        byteType = global(lib, "ompi_mpi_byte");
        opSum = global(lib, "ompi_mpi_op_sum");

        // int MPI_Xxx(...): every MPI function returns an error code, 0 = MPI_SUCCESS
        var initThread = function(lib, "MPI_Init_thread", ADDRESS, ADDRESS, JAVA_INT, ADDRESS);
        var initialized = function(lib, "MPI_Initialized", ADDRESS);
        var commRank = function(lib, "MPI_Comm_rank", ADDRESS, ADDRESS);
        var commSize = function(lib, "MPI_Comm_size", ADDRESS, ADDRESS);
        var setErrhandler = function(lib, "MPI_Comm_set_errhandler", ADDRESS, ADDRESS);
        var libraryVersion = function(lib, "MPI_Get_library_version", ADDRESS, ADDRESS);
        allreduce = function(lib, "MPI_Allreduce", ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        reduceScatterBlock =
                function(lib, "MPI_Reduce_scatter_block", ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS, ADDRESS);
        allgather = function(lib, "MPI_Allgather", ADDRESS, JAVA_INT, ADDRESS, ADDRESS, JAVA_INT, ADDRESS, ADDRESS);
        bcast = function(lib, "MPI_Bcast", ADDRESS, JAVA_INT, ADDRESS, JAVA_INT, ADDRESS);
        barrierHandle = function(lib, "MPI_Barrier", ADDRESS);
        abortHandle = function(lib, "MPI_Abort", ADDRESS, JAVA_INT);
        finalize = function(lib, "MPI_Finalize");
        errorString = function(lib, "MPI_Error_string", JAVA_INT, ADDRESS, ADDRESS);

        try (var local = Arena.ofConfined()) {
            var flag = local.allocate(JAVA_INT);
            check("MPI_Initialized", (int) initialized.invokeExact(flag));
            if (flag.get(JAVA_INT, 0) == 0) {
                var provided = local.allocate(JAVA_INT);
                check("MPI_Init_thread", (int)
                        initThread.invokeExact(MemorySegment.NULL, MemorySegment.NULL, MPI_THREAD_FUNNELED, provided));
            }
            // errors come back as return codes (and become exceptions) instead of killing the job without a word
            check("MPI_Comm_set_errhandler", (int)
                    setErrhandler.invokeExact(commWorld, global(lib, "ompi_mpi_errors_return")));
            var value = local.allocate(JAVA_INT);
            check("MPI_Comm_rank", (int) commRank.invokeExact(commWorld, value));
            rank = value.get(JAVA_INT, 0);
            check("MPI_Comm_size", (int) commSize.invokeExact(commWorld, value));
            size = value.get(JAVA_INT, 0);
            var text = local.allocate(MPI_MAX_STRING);
            check("MPI_Get_library_version", (int) libraryVersion.invokeExact(text, value));
            String full = text.getString(0);
            version = full.contains(",") ? full.substring(0, full.indexOf(',')) : full.strip();
        } catch (LlmcException e) {
            throw e;
        } catch (Throwable e) {
            throw new IllegalStateException("MPI initialisation", e);
        }
    }

    /** MPI_Init: loads libmpi and joins the job that mpirun started. */
    public static MpiCommunicator init() {
        String name = libraryName();
        SymbolLookup lib;
        try {
            lib = SymbolLookup.libraryLookup(name, Arena.global());
        } catch (IllegalArgumentException e) {
            throw new LlmcException(
                    "cannot load Open MPI's " + name + ": install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin)"
                            + " or point LLMC_MPI_LIB at libmpi.so (" + e.getMessage() + ")");
        }
        if (lib.find("ompi_mpi_comm_world").isEmpty())
            throw new LlmcException(
                    name + " is not Open MPI (no ompi_mpi_comm_world symbol): llmc4j binds Open MPI's ABI;"
                            + " MPICH-style libraries with integer handles are not supported");
        return new MpiCommunicator(lib);
    }

    private static MemorySegment global(SymbolLookup lib, String name) {
        return lib.find(name).orElseThrow(() -> new LlmcException("Open MPI library lacks the symbol " + name));
    }

    private static MethodHandle function(SymbolLookup lib, String name, java.lang.foreign.MemoryLayout... args) {
        return LINKER.downcallHandle(global(lib, name), FunctionDescriptor.of(JAVA_INT, args));
    }

    private void check(String what, int code) {
        if (code != 0)
            throw new LlmcException(
                    "%s failed on rank %d: %s (MPI error %d)".formatted(what, rank, message(code), code));
    }

    private String message(int code) {
        try (var local = Arena.ofConfined()) {
            var text = local.allocate(MPI_MAX_STRING);
            var length = local.allocate(JAVA_INT);
            int rc = (int) errorString.invokeExact(code, text, length);
            return rc == 0 ? text.getString(0) : "unknown error";
        } catch (Throwable e) {
            return "unknown error";
        }
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String description() {
        return version + ", " + size + " processes";
    }

    @Override
    public void allReduceMean(MemorySegment floats, long count) {
        for (long at = 0; at < count; at += CHUNK) {
            long n = Math.min(CHUNK, count - at);
            var piece = floats.asSlice(at * Float.BYTES, n * Float.BYTES);
            call("MPI_Allreduce", () ->
                    (int) allreduce.invokeExact(MPI_IN_PLACE, piece, (int) n, floatType, opSum, commWorld));
        }
        scale(floats, 0, count, 1.0f / size); // MPI has no "average" operation: sum, then divide
    }

    @Override
    public float allReduceMean(float value) {
        return (float) (allReduceSum(value) / size);
    }

    @Override
    public double allReduceSum(double value) {
        try (var local = Arena.ofConfined()) {
            var cell = local.allocate(JAVA_DOUBLE);
            cell.set(JAVA_DOUBLE, 0, value);
            call("MPI_Allreduce", () ->
                    (int) allreduce.invokeExact(MPI_IN_PLACE, cell, 1, doubleType, opSum, commWorld));
            return cell.get(JAVA_DOUBLE, 0);
        }
    }

    @Override
    public void reduceScatterMean(MemorySegment floats, long shardCount) {
        checkCount(shardCount);
        long bytes = shardCount * Float.BYTES;
        // in place, MPI leaves this rank's reduced shard at the front of the buffer, over rank 0's raw gradients
        // (which nobody needs any more): move it home, no second buffer needed
        call("MPI_Reduce_scatter_block", () -> (int)
                reduceScatterBlock.invokeExact(MPI_IN_PLACE, floats, (int) shardCount, floatType, opSum, commWorld));
        if (rank > 0) MemorySegment.copy(floats, 0, floats, rank * bytes, bytes);
        scale(floats, rank * shardCount, shardCount, 1.0f / size);
    }

    @Override
    public void allGather(MemorySegment floats, long shardCount) {
        checkCount(shardCount);
        call("MPI_Allgather", () -> (int)
                allgather.invokeExact(MPI_IN_PLACE, 0, floatType, floats, (int) shardCount, floatType, commWorld));
    }

    @Override
    public void broadcast(MemorySegment bytes, int root) {
        checkCount(bytes.byteSize());
        call("MPI_Bcast", () -> (int) bcast.invokeExact(bytes, (int) bytes.byteSize(), byteType, root, commWorld));
    }

    @Override
    public void barrier() {
        call("MPI_Barrier", () -> (int) barrierHandle.invokeExact(commWorld));
    }

    @Override
    public void abort(int exitCode) {
        System.out.flush();
        System.err.flush();
        try {
            int rc = (int) abortHandle.invokeExact(commWorld, exitCode);
        } catch (Throwable ignored) {
            // fall through: at least this process ends
        }
        Runtime.getRuntime().halt(exitCode);
    }

    @Override
    public void close() {
        if (closed) return;
        closed = true;
        call("MPI_Finalize", () -> (int) finalize.invokeExact());
    }

    @FunctionalInterface
    private interface MpiCall {
        int invoke() throws Throwable;
    }

    private void call(String what, MpiCall call) {
        int code;
        try {
            code = call.invoke();
        } catch (Throwable e) {
            throw new IllegalStateException(what, e);
        }
        check(what, code);
    }

    private static void checkCount(long count) {
        if (count > MAX_COUNT) throw new LlmcException("MPI count " + count + " exceeds a C int; use more processes");
    }

    private static void scale(MemorySegment floats, long offset, long count, float factor) {
        if (factor == 1.0f) return;
        Parallel.forRange(count, (start, end) -> {
            for (long i = offset + start; i < offset + end; i++)
                floats.setAtIndex(JAVA_FLOAT, i, floats.getAtIndex(JAVA_FLOAT, i) * factor);
        });
    }
}
