package dev.llmc4j.distributed;

import java.lang.foreign.MemorySegment;

/**
 * The collectives a GPU model issues itself, on its own CUDA streams, while it computes: NCCL's all-reduce,
 * reduce-scatter and all-gather on device memory, in place, averaged over the ranks where they reduce. A model that
 * overlaps its gradient reduction with the backward (llm.c's way) calls these between its kernels, so it needs them
 * on raw device addresses rather than through {@link Communicator}'s host buffers.
 * <pre>
 * allReduceMean(a, n)       every rank:  a[0, n) := mean over ranks of a[0, n)
 * reduceScatterMean(a, k)   rank r:      a[r·k, (r+1)·k) := mean over ranks of that range; the rest is not used
 * allGather(a, k)           every rank:  a[q·k, (q+1)·k) := rank q's a[q·k, (q+1)·k), for every q
 * </pre>
 * Addresses are {@code CUdeviceptr}s, counts are elements of {@code type}, and every call is enqueued on
 * {@code stream}: it starts after the work already there and returns at once. Between {@link #groupStart()} and
 * {@link #groupEnd()} NCCL fuses the calls into one launch (llm.c reduces a layer's 12 tensors that way). The caller
 * (the GPU model) has its CUDA context current.
 *
 * <p>{@link NcclCommunicator} implements it; the tests use recorders.
 */
public interface DeviceCollectives {

    int rank();

    int size();

    void groupStart();

    void groupEnd();

    void allReduceMean(long address, long count, Nccl.DataType type, MemorySegment stream);

    /** In place: {@code address} holds size·pieceCount elements; this rank's piece is at rank·pieceCount. */
    void reduceScatterMean(long address, long pieceCount, Nccl.DataType type, MemorySegment stream);

    /** In place: {@code address} holds size·pieceCount elements; this rank contributes its piece at rank·pieceCount. */
    void allGather(long address, long pieceCount, Nccl.DataType type, MemorySegment stream);
}
