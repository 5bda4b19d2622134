package dev.llmc4j.distributed;

import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Data parallelism across GPUs, as llm.c's zero.cuh does it: one process per GPU, an NCCL communicator over all of
 * them, and every collective on device memory, enqueued on the model's CUDA stream.
 * <pre>
 * gradients (floatX on the GPU)     the model calls {@link DeviceCollectives}: ncclAllReduce / ncclReduceScatter
 *                                   (ncclAvg) of each layer's slices during the backward, on its side stream;
 *                                   ZeRO-1's ncclAllGather of the updated pieces after AdamW
 * loss, norm partials (1 number)    copied into a small device scratch buffer, ncclAllReduce, copied back
 * barrier                           an all-reduce of the scratch float, then wait for the stream (llm.c's way)
 * </pre>
 * The host-memory collectives of {@link Communicator} (MPI's all-reduce, reduce-scatter and all-gather on host
 * buffers) are not offered: a GPU model's data never leaves the GPU.
 *
 * <p>What the CUDA driver must do for it (allocate the scratch buffer, copy to and from it, make the model's
 * context current) comes in through {@link Device}, so that this class lives next to {@link Nccl} in the common
 * module, free of the CUDA binding, and is tested on a machine without a GPU against a stand-in NCCL library.
 *
 * <p>Under mpirun the MPI communicator that carried the NCCL id stays open: {@link #abort} ends the whole job through
 * it, {@link #close} finalizes it. Started with {@code -pi tcp|fs} there is no MPI; a {@link PeerWatch} given to
 * {@link #watchPeers} takes its place: {@link #abort} tells the other ranks through it before exiting, a peer that
 * fails or vanishes makes this process print one line, abort NCCL ({@link #abortCollectives}, which unblocks a
 * collective waiting for the dead rank) and exit, and {@link #close} says goodbye. Without one, the peers of a failed
 * rank would learn of it only through NCCL's own timeouts.
 */
public final class NcclCommunicator implements Communicator, DeviceCollectives {

    /** The few CUDA driver operations the communicator needs besides NCCL, from the GPU model's binding. */
    public interface Device {
        /** Makes the GPU's context current on this thread (before every NCCL call, as CUDA contexts are per thread). */
        void makeCurrent();

        /** cuMemAlloc. */
        long allocate(long bytes);

        /** cuMemFree. */
        void free(long address);

        /**
         * Host to device, synchronous. The all-reduce that follows on the model's stream reads what it wrote because
         * that stream is the legacy default stream, which a synchronous copy is ordered with; a model on a created
         * stream would need an asynchronous copy on that stream instead.
         */
        void copyToDevice(long destination, MemorySegment source, long bytes);

        /** Waits for the work enqueued on {@code stream}, then copies device to host. */
        void copyToHost(MemorySegment destination, long source, long bytes, MemorySegment stream);
    }

    private final Nccl nccl;
    private final Nccl.Comm comm;
    private final Device device;
    private final MemorySegment stream;
    private final Communicator host; // MPI under mpirun (abort, finalize); null with -pi tcp|fs
    private final String description;
    private final long scratch; // 8 bytes of device memory: one float or one double in flight
    private final Arena arena = Arena.ofConfined();
    private final MemorySegment hostScratch = arena.allocate(8, 8);
    private boolean closed;
    private volatile PeerWatch peers = PeerWatch.NONE; // -pi tcp|fs: the liveness channel to the other ranks

    /**
     * @param host the MPI communicator under mpirun (kept for abort and closed with this), or null
     * @param how  how the processes found each other, for the run's header ("NCCL id over tcp")
     */
    public NcclCommunicator(
            Nccl nccl, Nccl.Comm comm, Device device, MemorySegment stream, Communicator host, String how) {
        this.nccl = nccl;
        this.comm = comm;
        this.device = device;
        this.stream = stream;
        this.host = host;
        this.description = "NCCL %s, %d GPU%s (%s)"
                .formatted(versionName(nccl.version()), comm.size(), comm.size() == 1 ? "" : "s", how);
        device.makeCurrent();
        this.scratch = device.allocate(8);
    }

    /**
     * The whole start-up of one process of a multi-GPU run, after its model is on {@code gpu.localDevice()} (so
     * that the device's context is current): rank 0 makes the NCCL id, {@link NcclIdExchange} hands it to all by
     * {@code -pi}, every rank joins with ncclCommInitRank.
     *
     * @param mpi the MPI communicator under mpirun, else null (then -pi must be tcp or fs)
     */
    public static NcclCommunicator open(
            MultiGpuConfig gpu, Nccl nccl, Device device, MemorySegment stream, Communicator mpi) {
        device.makeCurrent();
        Nccl.Comm comm = gpu.connect(nccl, mpi);
        try {
            return new NcclCommunicator(
                    nccl,
                    comm,
                    device,
                    stream,
                    mpi,
                    "NCCL id over " + gpu.init().name().toLowerCase(java.util.Locale.ROOT));
        } catch (RuntimeException e) {
            comm.close();
            throw e;
        }
    }

    static String versionName(int version) {
        // NCCL >= 2.9 reports major*10000 + minor*100 + patch
        return "%d.%d.%d".formatted(version / 10000, version / 100 % 100, version % 100);
    }

    @Override
    public int rank() {
        return comm.rank();
    }

    @Override
    public int size() {
        return comm.size();
    }

    @Override
    public String description() {
        return description;
    }

    // ---- device memory, on the caller's stream (the GPU model's gradient reduction and ZeRO-1 all-gather) ----

    @Override
    public void groupStart() {
        nccl.groupStart();
    }

    @Override
    public void groupEnd() {
        nccl.groupEnd();
    }

    /** ncclAllReduce with ncclAvg, in place. */
    @Override
    public void allReduceMean(long address, long count, Nccl.DataType type, MemorySegment stream) {
        checkOpen();
        comm.allReduce(address, address, count, type, Nccl.ReduceOp.AVG, stream);
    }

    /** ncclReduceScatter with ncclAvg, in place: NCCL's in-place form has recv = send + rank·pieceCount. */
    @Override
    public void reduceScatterMean(long address, long pieceCount, Nccl.DataType type, MemorySegment stream) {
        checkOpen();
        comm.reduceScatter(
                address,
                address + comm.rank() * pieceCount * type.bytes(),
                pieceCount,
                type,
                Nccl.ReduceOp.AVG,
                stream);
    }

    /** ncclAllGather, in place: NCCL's in-place form has send = recv + rank·pieceCount. */
    @Override
    public void allGather(long address, long pieceCount, Nccl.DataType type, MemorySegment stream) {
        checkOpen();
        comm.allGather(address + comm.rank() * pieceCount * type.bytes(), address, pieceCount, type, stream);
    }

    private void checkOpen() {
        if (closed) throw new IllegalStateException("NCCL communicator is closed");
    }

    // ---- one number at a time, through the scratch buffer ----

    @Override
    public float allReduceMean(float value) {
        hostScratch.set(JAVA_FLOAT, 0, value);
        reduceScratch(Nccl.DataType.FLOAT32, Nccl.ReduceOp.AVG);
        return hostScratch.get(JAVA_FLOAT, 0);
    }

    @Override
    public double allReduceSum(double value) {
        hostScratch.set(JAVA_DOUBLE, 0, value);
        reduceScratch(Nccl.DataType.FLOAT64, Nccl.ReduceOp.SUM);
        return hostScratch.get(JAVA_DOUBLE, 0);
    }

    /** One number through the GPU: up, all-reduce on the stream, down (the copy down waits for the stream). */
    private void reduceScratch(Nccl.DataType type, Nccl.ReduceOp op) {
        checkOpen();
        device.makeCurrent();
        device.copyToDevice(scratch, hostScratch, type.bytes());
        comm.allReduce(scratch, scratch, 1, type, op, stream);
        device.copyToHost(hostScratch, scratch, type.bytes(), stream);
    }

    /** llm.c's multi_gpu_barrier: a collective every rank must join, and a wait for it to finish. */
    @Override
    public void barrier() {
        allReduceMean(0.0f);
    }

    @Override
    public void allReduceMean(MemorySegment floats, long count) {
        throw hostMemory("all-reduce");
    }

    @Override
    public void reduceScatterMean(MemorySegment floats, long shardCount) {
        throw hostMemory("reduce-scatter (ZeRO-1)");
    }

    @Override
    public void allGather(MemorySegment floats, long shardCount) {
        throw hostMemory("all-gather (ZeRO-1)");
    }

    @Override
    public void broadcast(MemorySegment bytes, int root) {
        throw hostMemory("broadcast");
    }

    private static UnsupportedOperationException hostMemory(String what) {
        return new UnsupportedOperationException(
                "NcclCommunicator works on device memory; no " + what + " of host memory");
    }

    /**
     * -pi tcp|fs: the channel that tells the other ranks when this one fails, and stops this one when another does
     * (started with {@link #abortCollectives} as its abort hook); {@link #abort} and {@link #close} go through it.
     */
    public void watchPeers(PeerWatch peers) {
        this.peers = peers;
    }

    @Override
    public void abort(int exitCode) {
        abort(exitCode, "exit code " + exitCode);
    }

    /**
     * Tears NCCL down without waiting for peers, then stops the job: through MPI_Abort when mpirun started it (every
     * rank stops), else the peer watch passes {@code message} on to the other ranks (which stop too) and this process
     * exits.
     */
    public void abort(int exitCode, String message) {
        peers.reportFailure(message); // first, while the peers' NCCL still waits for us
        abortCollectives();
        if (host != null && host.size() > 1) host.abort(exitCode);
        Runtime.getRuntime().halt(exitCode);
    }

    /** ncclCommAbort alone: unblocks any collective in flight (the hook a {@link PeerWatch} calls when a peer failed). */
    public void abortCollectives() {
        try {
            device.makeCurrent(); // a watch calls this from its own thread
            comm.abort();
        } catch (RuntimeException e) {
            System.err.println("ncclCommAbort: " + e.getMessage());
        }
    }

    /** ncclCommDestroy, frees the scratch buffer, then says goodbye to the peer watch, or MPI_Finalize under mpirun. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        try {
            device.makeCurrent();
            comm.close();
            device.free(scratch);
        } finally {
            arena.close();
            peers.close(); // last: a peer failing during the teardown above still stops us
            if (host != null) host.close();
        }
    }
}
