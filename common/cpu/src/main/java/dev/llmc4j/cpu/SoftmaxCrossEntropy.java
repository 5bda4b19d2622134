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
