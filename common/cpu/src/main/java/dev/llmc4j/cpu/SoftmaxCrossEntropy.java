package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import java.lang.foreign.MemorySegment;

/**
 * Softmax over the vocabulary, cross-entropy with the targets, and the backward of the two together: the baseline
 * of {@link CpuKernels} (the vectorized versions are in {@link VectorizedCpuKernels}).
 */
public final class SoftmaxCrossEntropy {
    private SoftmaxCrossEntropy() {}

    /** probs (B,T,Vp) = softmax over the first V logits of each row; the padding columns get probability 0. */
    public static void softmaxForward(MemorySegment probs, MemorySegment logits, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float max = -10000.0f;
                for (int i = 0; i < V; i++) max = Math.max(max, get(logits, row + i));
                float sum = 0;
                for (int i = 0; i < V; i++) {
                    float e = (float) Math.exp(get(logits, row + i) - max);
                    set(probs, row + i, e);
                    sum += e;
                }
                for (int i = 0; i < V; i++) set(probs, row + i, get(probs, row + i) / sum);
                for (int i = V; i < Vp; i++) set(probs, row + i, 0);
            }
        });
    }

    /** losses (B,T) = -log probs[target]. */
    public static void crossentropyForward(MemorySegment losses, MemorySegment probs, int[] targets, int BT, int Vp) {
        for (long bt = 0; bt < BT; bt++) {
            set(losses, bt, (float) -Math.log(get(probs, bt * Vp + targets[(int) bt])));
        }
    }

    /**
     * Softmax and cross-entropy for training, without the (B,T,Vp) probabilities: losses (B,T) = -log
     * softmax(logits)[target] = log sum - (logits[target] - max), and maxAndSum (B,T,2) keeps each row's max over its
     * first V logits and sum = Σ exp(logit - max), from which the backward recomputes the probabilities. Writing them
     * costs more than computing their exponentials twice: Llama 3's at B=4 T=128 are 67 MB (16.7M floats), and
     * within its steps the vectorized softmaxForward took 6.5 to 8.9 ms where this pass, which only reads the
     * logits, takes 5.0 to 6.1.
     */
    public static void softmaxCrossEntropyForward(
            MemorySegment losses, MemorySegment maxAndSum, MemorySegment logits, int[] targets, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float max = -10000.0f;
                for (int i = 0; i < V; i++) max = Math.max(max, get(logits, row + i));
                float sum = 0;
                for (int i = 0; i < V; i++) sum += (float) Math.exp(get(logits, row + i) - max);
                set(maxAndSum, 2 * bt, max);
                set(maxAndSum, 2 * bt + 1, sum);
                set(losses, bt, (float) Math.log(sum) - (get(logits, row + targets[(int) bt]) - max));
            }
        });
    }

    /**
     * The backward of {@link #softmaxCrossEntropyForward}: dlogits (B,T,Vp) = (probs - onehot(target)) * dloss with
     * probs = exp(logit - max) / sum, 0 in the padding columns. Written, not added: nothing else adds to the logits'
     * gradient, so it needs no zeroing first (and the write no read of the old values).
     */
    public static void softmaxCrossEntropyBackward(
            MemorySegment dlogits,
            MemorySegment dlosses,
            MemorySegment logits,
            MemorySegment maxAndSum,
            int[] targets,
            int BT,
            int V,
            int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float dloss = get(dlosses, bt), max = get(maxAndSum, 2 * bt), sum = get(maxAndSum, 2 * bt + 1);
                int target = targets[(int) bt];
                for (int i = 0; i < V; i++) {
                    float probability = (float) Math.exp(get(logits, row + i) - max) / sum;
                    float indicator = i == target ? 1.0f : 0.0f;
                    set(dlogits, row + i, (probability - indicator) * dloss);
                }
                for (int i = V; i < Vp; i++) set(dlogits, row + i, 0);
            }
        });
    }

    /** Softmax and cross-entropy together have the simple gradient dlogits += (probs - onehot(target)) * dloss. */
    public static void crossentropySoftmaxBackward(
            MemorySegment dlogits, MemorySegment dlosses, MemorySegment probs, int[] targets, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float dloss = get(dlosses, bt);
                int target = targets[(int) bt];
                for (int i = 0; i < V; i++) {
                    float indicator = i == target ? 1.0f : 0.0f;
                    add(dlogits, row + i, (get(probs, row + i) - indicator) * dloss);
                }
            }
        });
    }
}
