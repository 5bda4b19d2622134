package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import java.lang.foreign.MemorySegment;

/**
 * The AdamW update (Loshchilov and Hutter), as llm.c and PyTorch apply it: per parameter p with gradient g,
 * <pre>
 *   m = beta1 m + (1 - beta1) g          first moment, a running mean of the gradient
 *   v = beta2 v + (1 - beta2) g^2        second moment, a running mean of its square
 *   m̂ = m / (1 - beta1^t), v̂ = v / (1 - beta2^t)    bias corrections: m and v start at zero
 *   p -= lr (m̂ / (sqrt(v̂) + eps) + weightDecay p)   decoupled weight decay
 * </pre>
 * The gradient is multiplied by {@code gradScale} first: gradient clipping and loss scaling fold in here.
 * {@link #update} is the baseline of {@link CpuKernels#adamwUpdate}.
 */
public final class AdamW {
    private AdamW() {}

    /** Hyper-parameters of one update; t is the 1-based step number. */
    public record Step(
            float learningRate, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {}

    /** Updates floats [offset, offset + count) of params, in parallel, with moments m and v of the same layout. */
    public static void update(
            MemorySegment params,
            MemorySegment grads,
            MemorySegment m,
            MemorySegment v,
            long offset,
            long count,
            Step step) {
        float beta1 = step.beta1(), beta2 = step.beta2(), lr = step.learningRate(), eps = step.eps();
        float decay = step.weightDecay(), scale = step.gradScale();
        float correction1 = (float) (1.0 - Math.pow(beta1, step.t()));
        float correction2 = (float) (1.0 - Math.pow(beta2, step.t()));
        Parallel.forRange(count, (start, end) -> {
            for (long i = offset + start; i < offset + end; i++) {
                float grad = get(grads, i) * scale;
                float mean = beta1 * get(m, i) + (1 - beta1) * grad;
                float meanSquare = beta2 * get(v, i) + (1 - beta2) * grad * grad;
                float mHat = mean / correction1;
                float vHat = meanSquare / correction2;
                float param = get(params, i);
                set(m, i, mean);
                set(v, i, meanSquare);
                set(params, i, param - lr * (mHat / ((float) Math.sqrt(vHat) + eps) + decay * param));
            }
        });
    }

    /**
     * The global L2 norm of the first n floats of grads (what gradient clipping compares with its threshold).
     * Summed in double over fixed blocks, so the result does not depend on the number of threads.
     */
    public static float gradientNorm(MemorySegment grads, long n) {
        return (float) Math.sqrt(gradientSquareSum(grads, 0, n));
    }

    /**
     * The sum of the squares of grads [offset, offset + count), in double over fixed blocks of 65536 (so the result
     * does not depend on the thread count): a ZeRO-1 shard's share of the global norm.
     */
    public static double gradientSquareSum(MemorySegment grads, long offset, long count) {
        long block = 1 << 16;
        int blocks = (int) ((count + block - 1) / block);
        double[] partial = new double[blocks];
        Parallel.forRange(blocks, (start, end) -> {
            for (long k = start; k < end; k++) {
                double sum = 0;
                for (long i = offset + k * block; i < offset + Math.min(count, (k + 1) * block); i++) {
                    float g = get(grads, i);
                    sum += (double) g * g;
                }
                partial[(int) k] = sum;
            }
        });
        double total = 0;
        for (double s : partial) total += s;
        return total;
    }
}
