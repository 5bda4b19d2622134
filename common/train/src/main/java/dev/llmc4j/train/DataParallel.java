package dev.llmc4j.train;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.util.LlmcException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * Data-parallel training as llm.c does it: every process holds the whole model, reads its own slice of every batch,
 * and after the backward the processes average their gradients, so that every one of them applies the same update.
 * <pre>
 * ZeRO-0 (-z 0)   all-reduce the gradients (N floats)            every rank: AdamW over all N parameters, m and v of N
 * ZeRO-1 (-z 1)   reduce-scatter each parameter slice: rank r    every rank: AdamW over its pieces (N/P parameters),
 *                 gets the averaged gradient of its piece r       m and v of N/P; then all-gather each slice
 * </pre>
 * The pieces are cut as llm.c cuts them (see {@link OptimizerShard}): every layer of every tensor split in P, so the
 * state files of a ZeRO-1 run hold m and v in llm.c's order. Under ZeRO-1 the global gradient norm is the square
 * root of the sum over ranks of each shard's squared norm. With one process every collective is a no-op and this is
 * plain training.
 *
 * <p>Host and device differ in who issues the collectives:
 * <ul>
 *   <li>a CPU model's gradients are in host memory ({@link HostGradients}); this class reduces them after the
 *       backward through the {@link Communicator} (MPI), slice by slice;</li>
 *   <li>a GPU model ({@link DeviceGradients}) reduces its own gradients with NCCL during the backward, layer by layer
 *       on a side stream, and all-gathers in its update ({@link DeviceGradients#reduceGradientsDuringBackward});
 *       here only the norm's partial sums and the losses travel.</li>
 * </ul>
 */
public final class DataParallel {

    private final Communicator comm;
    private final TrainableModel model;
    private final int zeroStage;
    private final List<ParameterSlice> slices;
    private final OptimizerShard shard;
    private final DeviceGradients onDevice; // null: the gradients are in host memory, reduced here

    public DataParallel(Communicator comm, TrainableModel model, int requestedZeroStage, PrintStream out) {
        if (requestedZeroStage < 0 || requestedZeroStage > 3)
            throw new LlmcException("ZeRO stage -z must be 0 or 1, found " + requestedZeroStage);
        this.comm = comm;
        this.model = model;
        this.slices = model instanceof ShardedOptimizer sharded
                ? sharded.parameterSlices()
                : List.of(new ParameterSlice(0, model.numParameters()));
        int P = comm.size();
        int stage = requestedZeroStage;
        if (stage > 1) {
            out.printf("warning: ZeRO stage %d is not supported, using ZeRO-1 (as llm.c does with 1)%n", stage);
            stage = 1;
        }
        if (stage == 1 && !OptimizerShard.splitsEvenly(slices, P)) { // llm.c's rule: no uneven pieces
            out.printf("warning: the parameter slices do not all split evenly over %d processes; ZeRO-1 off%n", P);
            stage = 0;
        }
        this.zeroStage = stage;
        this.shard =
                stage == 1 ? OptimizerShard.of(slices, comm.rank(), P) : OptimizerShard.whole(model.numParameters());
        if (stage == 1) {
            if (model instanceof ShardedOptimizer sharded) sharded.shardOptimizerState(shard);
            else if (!shard.isWhole())
                throw new LlmcException(model.getClass().getSimpleName() + " does not support ZeRO-1 (-z 1)");
        }
        this.onDevice = model instanceof DeviceGradients device ? device : null;
        if (onDevice == null && P > 1 && !(model instanceof HostGradients))
            throw new LlmcException(
                    model.getClass().getSimpleName() + " keeps no gradients to reduce across processes");
        if (onDevice != null && P > 1) {
            if (!(comm instanceof DeviceCollectives collectives))
                throw new LlmcException(comm.description() + " reduces host memory only; GPU gradients need NCCL");
            onDevice.reduceGradientsDuringBackward(collectives, shard);
        }
    }

    public int zeroStage() {
        return zeroStage;
    }

    /** This rank's pieces of the parameters (all of them without ZeRO-1). */
    public OptimizerShard shard() {
        return shard;
    }

    /** Floats in this rank's optimizer shard (all parameters without ZeRO-1): the size of m and v in the state file. */
    public long shardCount() {
        return shard.count();
    }

    /** The mean over ranks (of the losses, which every rank computed on its own slice of the batch). */
    public float mean(float value) {
        return comm.allReduceMean(value);
    }

    /**
     * After the backward of the last micro-step: averages the gradients over the ranks (ZeRO-1: this rank's pieces
     * only; a GPU model has done it during the backward) and returns the global gradient norm, the same on every rank.
     */
    public float reduceGradients() {
        if (comm.size() == 1) return model.gradientNorm();
        if (onDevice == null) {
            MemorySegment gradients = ((HostGradients) model).gradients();
            if (zeroStage == 0) comm.allReduceMean(gradients, model.numParameters());
            else
                for (ParameterSlice slice : slices)
                    comm.reduceScatterMean(floats(gradients, slice), slice.count() / comm.size());
        }
        if (zeroStage == 0) return model.gradientNorm();
        return (float) Math.sqrt(comm.allReduceSum(((ShardedOptimizer) model).gradientSquareSum(shard)));
    }

    /** AdamW on this rank's parameters; under ZeRO-1 every rank then gathers the pieces the others updated. */
    public void update(float learningRate, float weightDecay, float gradScale, int t) {
        model.update(
                learningRate,
                TrainingConfig.BETA1,
                TrainingConfig.BETA2,
                TrainingConfig.EPS,
                weightDecay,
                gradScale,
                t);
        if (zeroStage == 1 && onDevice == null) {
            MemorySegment parameters = ((HostGradients) model).parameters();
            for (ParameterSlice slice : slices) comm.allGather(floats(parameters, slice), slice.count() / comm.size());
        }
    }

    private static MemorySegment floats(MemorySegment all, ParameterSlice slice) {
        return all.asSlice(slice.offset() * Float.BYTES, slice.count() * Float.BYTES);
    }

    /** Bytes this rank keeps for training (parameters, gradients, optimizer state), activations aside. */
    public long stateBytesPerRank() {
        return model.trainingStateBytes(shard);
    }

    /**
     * Bytes each rank sends per optimizer step with ring algorithms: an all-reduce of N elements sends 2(P-1)/P·N of
     * them, and so do a reduce-scatter plus an all-gather (ZeRO-1 shards memory, not traffic).
     */
    public long bytesSentPerStep() {
        int P = comm.size();
        // NCCL sends the GPU's storage type (bf16: 2 bytes)
        int elementBytes = onDevice != null ? onDevice.deviceGradientType().bytes() : Float.BYTES;
        return 2L * (P - 1) * model.numParameters() / P * elementBytes;
    }
}
