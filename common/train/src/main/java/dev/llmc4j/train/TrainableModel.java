package dev.llmc4j.train;

import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * What the {@link Trainer} needs of a model, whichever device runs it: forward with targets, backward with
 * gradient accumulation, the global gradient norm, AdamW, its optimizer state for checkpoints, and generation.
 */
public interface TrainableModel extends AutoCloseable {

    long numParameters();

    int vocabSize();

    int maxSeqLen();

    /** Forward over tokens (B,T) with targets (B,T); returns the mean loss. */
    float forward(int[] inputs, int[] targets, int B, int T);

    /**
     * The cross-entropy loss at each position (B*T floats) of the last forward with targets: HellaSwag scores each
     * completion by the mean of these over its tokens.
     */
    default float[] tokenLosses() {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " does not hand out per-position losses");
    }

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

    /**
     * AdamW's first moments (numParameters native-order floats, or under ZeRO-1 the shard's, parameter order) in host
     * memory, current as of this call. A CPU model hands out its live state (allocated, zero, if needed); a device model copies its moments
     * down into a host buffer it owns, so writing into the segment changes nothing until {@link #loadAdamMoments}.
     */
    MemorySegment adamFirstMoments();

    /** AdamW's second moments, with the same contract as {@link #adamFirstMoments()}. */
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
     * The type a GPU model stores its gradients in (what NCCL sends), or null for a model whose gradients are in host
     * memory ({@link #gradients()}): a GPU model reduces them itself, see {@link #reduceGradientsDuringBackward}.
     */
    default Nccl.DataType deviceGradientType() {
        return null;
    }

    /**
     * The parameter slices ZeRO-1 cuts into one piece per process (see {@link OptimizerShard}); one slice, the whole
     * vector, unless the model says otherwise (GPT-2: one per layer of each tensor, as llm.c cuts them).
     */
    default List<ParameterSlice> parameterSlices() {
        return List.of(new ParameterSlice(0, numParameters()));
    }

    /**
     * ZeRO-1: from now on keep AdamW's moments for the shard's pieces only and let {@link #update} change only those
     * parameters; {@link #adamFirstMoments()} then holds {@code shard.count()} floats. Call before the first update.
     */
    default void shardOptimizerState(OptimizerShard shard) {
        if (!shard.isWhole())
            throw new UnsupportedOperationException(getClass().getSimpleName() + " does not support ZeRO-1 (-z 1)");
    }

    /** Sum of the squared gradients of the shard's pieces: this rank's share of the global norm under ZeRO-1. */
    default double gradientSquareSum(OptimizerShard shard) {
        if (!shard.isWhole())
            throw new UnsupportedOperationException(getClass().getSimpleName() + " does not support ZeRO-1 (-z 1)");
        double norm = gradientNorm();
        return norm * norm;
    }

    /**
     * A GPU model: from now on the backward of the last micro-step of each optimizer step averages the gradients
     * across the ranks as it goes, layer by layer on a side stream (ZeRO-0: all-reduce; ZeRO-1: reduce-scatter, so
     * that each rank gets the average of its own pieces), and under ZeRO-1 {@link #update} all-gathers the updated
     * pieces. A model whose gradients are in host memory does not do this: {@link DataParallel} reduces them.
     */
    default void reduceGradientsDuringBackward(DeviceCollectives collectives, OptimizerShard shard) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " keeps its gradients in host memory");
    }

    /** Bytes this rank keeps for training (parameters, gradients, optimizer state of the shard), activations aside. */
    default long trainingStateBytes(OptimizerShard shard) {
        return (2 * numParameters() + 2 * shard.count()) * Float.BYTES;
    }

    /**
     * Makes {@code first} and {@code second} (numParameters floats each, or the ZeRO-1 shard's) the model's AdamW
     * moments: resume calls it after reading a state file into the segments {@link #adamFirstMoments()} and {@link #adamSecondMoments()}
     * returned. The default copies into those segments (nothing to do when they are the same memory, as for the
     * CPU model); a device model uploads.
     */
    default void loadAdamMoments(MemorySegment first, MemorySegment second) {
        MemorySegment m = adamFirstMoments(), v = adamSecondMoments();
        long bytes = m.byteSize();
        if (!sameMemory(first, m)) MemorySegment.copy(first, 0, m, 0, bytes);
        if (!sameMemory(second, v)) MemorySegment.copy(second, 0, v, 0, bytes);
    }

    // ---- mixed precision: what an exact resume needs besides m and v (llm.c's state file, header[4] and [20..23]) ----

    /**
     * The fp32 master weights AdamW updates, for a model that computes in 16 bits and keeps them (llm.c's -w 1): a
     * host copy of as many floats as {@link #adamFirstMoments()} holds (all parameters, or under ZeRO-1 the shard's,
     * in the same order), current as of this call; writing into it changes nothing until {@link #loadMasterWeights}.
     * Null for a model that keeps none (the CPU models: their parameters are the fp32 weights).
     */
    default MemorySegment masterWeights() {
        return null;
    }

    /** Makes {@code weights} (floats as {@link #masterWeights()} returns them) the master weights: resume. */
    default void loadMasterWeights(MemorySegment weights) {
        throw new UnsupportedOperationException(getClass().getSimpleName() + " keeps no fp32 master weights");
    }

    /**
     * The state of the generator whose draws seed the update's stochastic rounding (llm.c's rng_state), as it is
     * now; 0 for a model that rounds no other way than to nearest (the CPU models).
     */
    default long optimizerRngState() {
        return 0;
    }

    /** {@link #optimizerRngState()} as it was when the last {@link #update} began (llm.c's rng_state_last_update). */
    default long optimizerRngStateBeforeLastUpdate() {
        return 0;
    }

    /** Continues the rounding generator from a saved state (resume); nothing to do for a model without one. */
    default void restoreOptimizerRng(long state, long stateBeforeLastUpdate) {}

    /**
     * fp16's dynamic loss scaler, for the state file: the scale now and the good steps since it last changed; null
     * for a model without one (every model but an fp16 GPU model).
     */
    default LossScale lossScale() {
        return null;
    }

    /** Continues the loss scaler from a saved state (resume). */
    default void restoreLossScale(LossScale lossScale) {}

    /** A dynamic loss scaler's state: its scale and the good steps since its last change. */
    record LossScale(float scale, int goodSteps) {}

    private static boolean sameMemory(MemorySegment a, MemorySegment b) {
        return a.isNative() && b.isNative() && a.address() == b.address();
    }

    /**
     * Model FLOPs utilisation in [0, 1] of a step of {@code tokens} tokens at sequence length {@code seqLen} that
     * took {@code seconds}, for devices with a known peak; -1 (no MFU column in the step line) otherwise.
     */
    default double flopsUtilization(int seqLen, long tokens, double seconds) {
        return -1;
    }

    /** Writes the parameters as the model's llm.c checkpoint file. */
    void saveCheckpoint(Path file);

    /** Generates text tokens after a prompt (one token at a time, with a KV cache where the model has one). */
    TokenGenerator generator();

    @Override
    void close();

    /** A model's input check: {@code count} token ids, each in [0, vocabSize), or a one-line error naming the first bad one. */
    static void checkTokens(String what, int[] tokens, int count, int vocabSize) {
        if (tokens.length < count)
            throw new LlmcException(what + " tokens: expected " + count + " (B*T), found " + tokens.length);
        for (int i = 0; i < count; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocabSize)
                throw new LlmcException("%s token %d: expected an id in [0, %d), found %d".formatted(what, i, vocabSize, tokens[i]));
        }
    }
}
