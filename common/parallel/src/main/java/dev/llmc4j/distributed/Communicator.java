package dev.llmc4j.distributed;

import java.lang.foreign.MemorySegment;

/**
 * The collective operations data-parallel training needs, over {@link #size()} processes that each run the same
 * program (SPMD). Every call is collective: all ranks make it, in the same order, with the same counts, or the job
 * hangs. Buffers are float32 in host memory; a GPU model reduces its gradients through {@link DeviceCollectives}.
 *
 * <p>Implementations: {@link SingleProcess} (one process, every operation is a no-op), {@link MpiCommunicator}
 * (Open MPI through the FFM API, started by {@code mpirun}) and {@link NcclCommunicator} (GPUs: NCCL on device
 * memory, also a {@link DeviceCollectives}).
 */
public interface Communicator extends AutoCloseable {

    /** This process, 0..size-1. Rank 0 writes logs, samples and the model checkpoint. */
    int rank();

    /** Number of processes. */
    int size();

    /** What runs the collectives, for the run's header ("single process", "Open MPI 4.1.4"). */
    String description();

    /** In place: every rank ends with the element-wise mean over ranks of {@code floats[0, count)}. */
    void allReduceMean(MemorySegment floats, long count);

    /** The mean over ranks of one number (losses). */
    float allReduceMean(float value);

    /** The sum over ranks of one number (squared gradient norms of the ZeRO-1 shards). */
    double allReduceSum(double value);

    /**
     * ZeRO-1's gradient reduction. {@code floats} holds {@code size * shardCount} floats on every rank; afterwards
     * this rank's shard, {@code floats[rank * shardCount, (rank + 1) * shardCount)}, holds the mean over ranks of that
     * shard. The rest of {@code floats} is left undefined: only the shard's owner uses (and updates) those parameters.
     */
    void reduceScatterMean(MemorySegment floats, long shardCount);

    /**
     * In place: each rank contributes its shard {@code floats[rank * shardCount, (rank + 1) * shardCount)}, and
     * every rank ends with all {@code size * shardCount} floats (ZeRO-1's parameter all-gather after the update).
     */
    void allGather(MemorySegment floats, long shardCount);

    /** In place: every rank ends with root's {@code bytes} (the NCCL unique id over MPI). */
    void broadcast(MemorySegment bytes, int root);

    /** Returns once every rank has called it (before rank 0 marks a checkpoint DONE). */
    void barrier();

    /**
     * Stops every rank of the job with this exit code, now: a rank that fails must not leave the others waiting
     * forever in their next collective. Does not return.
     */
    void abort(int exitCode);

    /** Ends the communicator (MPI_Finalize); every rank calls it once, at the end. */
    @Override
    void close();
}
