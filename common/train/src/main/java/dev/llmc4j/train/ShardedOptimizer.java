package dev.llmc4j.train;

import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import java.util.List;

/**
 * A model that can shard its optimizer state, ZeRO-1 (llm.c's {@code -z 1}): each of P processes keeps AdamW's
 * moments of, and updates, only its own pieces of the parameters ({@link OptimizerShard}). {@link DataParallel}
 * asks for it; a model without it trains with ZeRO-0 only.
 */
public interface ShardedOptimizer {

    /**
     * The parameter slices ZeRO-1 cuts into one piece per process (see {@link OptimizerShard}); GPT-2 and Llama 3:
     * one per layer of each tensor, as llm.c cuts them.
     */
    List<ParameterSlice> parameterSlices();

    /**
     * From now on keep AdamW's moments for the shard's pieces only and let {@link TrainableModel#update} change only
     * those parameters; {@link TrainableModel#adamFirstMoments()} then holds {@code shard.count()} floats. Call before
     * the first update.
     */
    void shardOptimizerState(OptimizerShard shard);

    /** Sum of the squared gradients of the shard's pieces: this rank's share of the global norm. */
    double gradientSquareSum(OptimizerShard shard);
}
