package dev.llmc4j.train;

import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * What the {@link Trainer} needs of a model, whichever device runs it: forward with targets, backward with
 * gradient accumulation, the global gradient norm, AdamW, its optimizer state for checkpoints, and generation.
 */
public interface TrainableModel extends AutoCloseable {

    long numParameters();

    int vocabSize();

    int maxSeqLen();

    int numLayers();

    int channels();

    /** Forward over tokens (B,T) with targets (B,T); returns the mean loss. */
    float forward(int[] inputs, int[] targets, int B, int T);

    /** Sets the parameter gradients to zero (before the first micro-batch of a step). */
    void zeroGrad();

    /** Backward of the last forward, adding 1/microSteps of its gradient to the parameter gradients. */
    void backward(int microSteps);

    /** Global L2 norm of the parameter gradients. */
    float gradientNorm();

    /**
     * AdamW over all parameters (under ZeRO-1: over the optimizer shard) with weight decay on the 2-D tensors only
     * (llm.c's trainer rule); t is 1-based; the gradients are multiplied by gradScale first.
     */
    void update(float learningRate, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t);

    /** AdamW's first moments (numParameters floats, or the ZeRO-1 shard's, parameter order), allocated if needed. */
    MemorySegment adamFirstMoments();

    /** AdamW's second moments. */
    MemorySegment adamSecondMoments();

    // ---- data parallelism (see DataParallel): host memory for the CPU collectives, and ZeRO-1's optimizer shard ----

    /** The parameters, numParameters floats in host memory, for MPI; models that keep them on a GPU do not offer this. */
    default MemorySegment parameters() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " keeps no parameters in host memory for MPI");
    }

    /** The parameter gradients, numParameters floats in host memory, averaged across processes after the backward. */
    default MemorySegment gradients() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " keeps no gradients in host memory for MPI");
    }

    /**
     * ZeRO-1: from now on keep AdamW's moments for parameters [offset, offset + count) only and let {@link #update}
     * change only those; {@link #adamFirstMoments()} then holds count floats. Call before the first update.
     */
    default void shardOptimizerState(long offset, long count) {
        if (offset != 0 || count != numParameters())
            throw new UnsupportedOperationException(getClass().getSimpleName() + " does not support ZeRO-1 (-z 1)");
    }

    /** Sum of the squared gradients [offset, offset + count): a shard's share of the global norm under ZeRO-1. */
    default double gradientSquareSum(long offset, long count) {
        if (offset != 0 || count != numParameters())
            throw new UnsupportedOperationException(getClass().getSimpleName() + " does not support ZeRO-1 (-z 1)");
        double norm = gradientNorm();
        return norm * norm;
    }

    /** Writes the parameters as the model's llm.c checkpoint file. */
    void saveCheckpoint(Path file);

    /** Generates text tokens after a prompt (one token at a time, with a KV cache where the model has one). */
    TokenGenerator generator();

    @Override
    void close();
}
