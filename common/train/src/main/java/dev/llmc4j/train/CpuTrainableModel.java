package dev.llmc4j.train;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.cpu.AdamWState;
import dev.llmc4j.model.OptimizerShard;
import java.lang.foreign.MemorySegment;

/**
 * A model that trains in host memory, as GPT-2 and Llama 3 do on the CPU: parameters and gradients in host memory
 * ({@link HostGradients}), AdamW's moments in an {@link AdamWState}. ZeRO-1, the moments for the state file and the
 * gradient norms follow from those two, so they are written once, here; a model adds only how ZeRO-1 cuts its
 * tensors ({@link #parameterSlices()}) and its update rule (which tensors decay, which stay frozen).
 */
public interface CpuTrainableModel extends TrainableModel, ShardedOptimizer, HostGradients {

    /** AdamW's moments: of all parameters, or under ZeRO-1 of this process's pieces. */
    AdamWState optimizerState();

    /** ZeRO-1: this process keeps AdamW's moments, and updates the parameters, of the shard's pieces only. */
    @Override
    default void shardOptimizerState(OptimizerShard shard) {
        optimizerState().shard(shard);
    }

    /** numParameters floats in parameter order, or under ZeRO-1 the shard's pieces one after the other. */
    @Override
    default MemorySegment adamFirstMoments() {
        return optimizerState().firstMoments();
    }

    @Override
    default MemorySegment adamSecondMoments() {
        return optimizerState().secondMoments();
    }

    /** The global L2 norm of all parameter gradients, summed in double over fixed blocks (thread-count free). */
    @Override
    default float gradientNorm() {
        return AdamW.gradientNorm(gradients(), numParameters());
    }

    /** Sum of the squared gradients of the shard's pieces: this rank's share of the global norm under ZeRO-1. */
    @Override
    default double gradientSquareSum(OptimizerShard shard) {
        return AdamWState.gradientSquareSum(gradients(), shard);
    }
}
