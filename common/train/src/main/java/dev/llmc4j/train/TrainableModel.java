package dev.llmc4j.train;

import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;

/**
 * What the {@link Trainer} needs of every model, whichever device runs it: forward with targets, backward with
 * gradient accumulation, the global gradient norm, AdamW, its optimizer state for checkpoints, and generation.
 *
 * <p>What only some models can do is a capability of its own, which the trainer checks with {@code instanceof}:
 * {@link ShardedOptimizer} (ZeRO-1), {@link HostGradients} (gradients in host memory, reduced by MPI),
 * {@link DeviceGradients} (gradients on a GPU, reduced by the model with NCCL) and {@link MixedPrecisionState}
 * (master weights, stochastic rounding and loss scaling of 16-bit training).
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
                throw new LlmcException(
                        "%s token %d: expected an id in [0, %d), found %d".formatted(what, i, vocabSize, tokens[i]));
        }
    }
}
