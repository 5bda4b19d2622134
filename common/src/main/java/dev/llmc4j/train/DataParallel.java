package dev.llmc4j.train;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.DeviceBuffer;
import dev.llmc4j.util.LlmcException;
import java.io.PrintStream;

/**
 * Data-parallel training as llm.c does it: every process holds the whole model, reads its own slice of every batch,
 * and after the backward the processes average their gradients, so that every one of them applies the same update.
 * <pre>
 * ZeRO-0 (-z 0)   all-reduce the gradients (N floats)           every rank: AdamW over all N parameters, m and v of N
 * ZeRO-1 (-z 1)   reduce-scatter: each rank gets the averaged   every rank: AdamW over its shard of N/P parameters,
 *                 gradient of its own shard of N/P floats        m and v of N/P; then all-gather the updated shards
 * </pre>
 * The shards are contiguous ranges of the flat parameter vector: rank r owns [r·N/P, (r+1)·N/P). (llm.c cuts every
 * tensor into P pieces instead; the state files have the same size, shard_N = N/P, but a different order.)
 * Under ZeRO-1 the global gradient norm is the square root of the sum over ranks of each shard's squared norm.
 * With one process every collective is a no-op and this is plain training.
 *
 * <p>A GPU model ({@link TrainableModel#deviceGradients()} not null) keeps its gradients on the device: they are
 * averaged there by NCCL ({@link Communicator#allReduceMeanOnDevice}) once per optimizer step, after the backward of
 * the last micro-step. llm.c overlaps that all-reduce with the backward, layer by layer on a side stream; this
 * simpler version waits for the whole backward (the next step, see the distributed chapter of the docs).
 */
public final class DataParallel {

    /** The one line a GPU run with -z 1 gets: the GPU model's AdamW updates every parameter, unsharded. */
    public static final String GPU_ZERO1_REFUSAL = "-z 1 (ZeRO-1) is not implemented on GPUs yet: use -z 0 (gradients all-reduced with NCCL, AdamW state replicated)";

    private final Communicator comm;
    private final TrainableModel model;
    private final int zeroStage;
    private final long shardOffset;
    private final long shardCount;

    public DataParallel(Communicator comm, TrainableModel model, int requestedZeroStage, PrintStream out) {
        if (requestedZeroStage < 0 || requestedZeroStage > 3)
            throw new LlmcException("ZeRO stage -z must be 0 or 1, found " + requestedZeroStage);
        this.comm = comm;
        this.model = model;
        int P = comm.size();
        long N = model.numParameters();
        int stage = requestedZeroStage;
        if (stage > 1) {
            out.printf("warning: ZeRO stage %d is not supported, using ZeRO-1 (as llm.c does with 1)%n", stage);
            stage = 1;
        }
        if (stage == 1 && N % P != 0) { // llm.c's rule: no uneven shards
            out.printf("warning: %d parameters do not split evenly over %d processes; ZeRO-1 off%n", N, P);
            stage = 0;
        }
        if (stage == 1 && P > 1 && model.deviceGradients() != null)
            throw new LlmcException(GPU_ZERO1_REFUSAL);
        this.zeroStage = stage;
        this.shardCount = stage == 1 ? N / P : N;
        this.shardOffset = stage == 1 ? comm.rank() * shardCount : 0;
        if (stage == 1) model.shardOptimizerState(shardOffset, shardCount);
    }

    public int zeroStage() {
        return zeroStage;
    }

    /** First parameter of this rank's optimizer shard (0 without ZeRO-1). */
    public long shardOffset() {
        return shardOffset;
    }

    /** Parameters in this rank's optimizer shard (all of them without ZeRO-1): the size of m and v in the state file. */
    public long shardCount() {
        return shardCount;
    }

    /** The mean over ranks (of the losses, which every rank computed on its own slice of the batch). */
    public float mean(float value) {
        return comm.allReduceMean(value);
    }

    /**
     * After the backward of the last micro-step: averages the gradients over the ranks (ZeRO-1: this rank's shard
     * only) and returns the global gradient norm, the same on every rank.
     */
    public float reduceGradients() {
        if (comm.size() == 1) return model.gradientNorm();
        DeviceBuffer onGpu = model.deviceGradients();
        if (onGpu != null) { // NCCL, in place on the model's stream; the norm kernels then run after it on that stream
            comm.allReduceMeanOnDevice(onGpu);
            return model.gradientNorm();
        }
        if (zeroStage == 0) {
            comm.allReduceMean(model.gradients(), model.numParameters());
            return model.gradientNorm();
        }
        comm.reduceScatterMean(model.gradients(), shardCount);
        return (float) Math.sqrt(comm.allReduceSum(model.gradientSquareSum(shardOffset, shardCount)));
    }

    /** AdamW on this rank's parameters; under ZeRO-1 then every rank gathers the shards the others updated. */
    public void update(float learningRate, float weightDecay, float gradScale, int t) {
        model.update(learningRate, TrainingConfig.BETA1, TrainingConfig.BETA2, TrainingConfig.EPS, weightDecay, gradScale, t);
        if (zeroStage == 1) comm.allGather(model.parameters(), shardCount);
    }

    /** Bytes this rank keeps for training (parameters, gradients, AdamW m and v), activations aside. */
    public long stateBytesPerRank() {
        return (2 * model.numParameters() + 2 * shardCount) * Float.BYTES;
    }

    /**
     * Bytes each rank sends per optimizer step with ring algorithms: an all-reduce of N floats sends 2(P-1)/P·N of
     * them, and so do a reduce-scatter plus an all-gather (ZeRO-1 shards memory, not traffic).
     */
    public long bytesSentPerStep() {
        int P = comm.size();
        DeviceBuffer onGpu = model.deviceGradients(); // NCCL sends the GPU's storage type (bf16: 2 bytes)
        int elementBytes = onGpu != null ? onGpu.type().bytes() : Float.BYTES;
        return 2L * (P - 1) * model.numParameters() / P * elementBytes;
    }
}
