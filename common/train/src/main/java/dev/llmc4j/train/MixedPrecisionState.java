package dev.llmc4j.train;

import java.lang.foreign.MemorySegment;

/**
 * What a model that computes in 16 bits keeps besides AdamW's m and v, and an exact resume needs (llm.c's state
 * file, header[4] and [20..23]): fp32 master weights (llm.c's -w 1), the generator whose draws seed the update's
 * stochastic rounding, and fp16's dynamic loss scale. The CPU models compute in fp32 and have none of it.
 */
public interface MixedPrecisionState {

    /**
     * The fp32 master weights AdamW updates: a host copy of as many floats as
     * {@link TrainableModel#adamFirstMoments()} holds (all parameters, or under ZeRO-1 the shard's, in the same
     * order), current as of this call; writing into it changes nothing until {@link #loadMasterWeights}. Null when
     * the model keeps none (an fp32 model, or -w 0).
     */
    MemorySegment masterWeights();

    /** Makes {@code weights} (floats as {@link #masterWeights()} returns them) the master weights: resume. */
    void loadMasterWeights(MemorySegment weights);

    /** The stochastic-rounding generator's state now (llm.c's rng_state); 0 for a model that rounds to nearest. */
    long optimizerRngState();

    /** {@link #optimizerRngState()} as it was when the last update began (llm.c's rng_state_last_update). */
    long optimizerRngStateBeforeLastUpdate();

    /** Continues the rounding generator from a saved state (resume). */
    void restoreOptimizerRng(long state, long stateBeforeLastUpdate);

    /** fp16's dynamic loss scaler: the scale now and the good steps since it last changed; null without one. */
    LossScale lossScale();

    /** Continues the loss scaler from a saved state (resume). */
    void restoreLossScale(LossScale lossScale);

    /** A dynamic loss scaler's state: its scale and the good steps since its last change. */
    record LossScale(float scale, int goodSteps) {}
}
