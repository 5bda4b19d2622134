package dev.llmc4j.tutorials.step15;

import dev.llmc4j.random.XorShift;
import java.util.Random;

/**
 * Step 15: what storing the weights in bf16 does to training, on a problem small enough to print.
 *
 * <p>The toy: linear regression, y = X · wTrue, fitted by AdamW from a small random start.
 * <pre>
 *   inputs: (N, D)   targets: (N)   weights: (D)
 *   loss = mean over n of (inputs[n] · weights - targets[n])^2
 * </pre>
 * The arithmetic is fp32 everywhere (as on the GPU: bf16 is only how numbers are stored); the four variants differ
 * only in where the weights live between steps.
 */
public final class MixedPrecisionAdamW {
    private MixedPrecisionAdamW() {}

    // tag::lost[]
    /**
     * Adds {@code delta} to {@code start} {@code times} times, keeping the running value in one format:
     * fp32, bf16 rounded to nearest, bf16 rounded stochastically (random bits from {@code seed}).
     * Returns the three results in that order.
     */
    public static float[] addRepeatedly(float start, float delta, int times, int seed) {
        float fp32 = start, nearest = Formats.roundToBf16(start), stochastic = nearest;
        for (int i = 0; i < times; i++) {
            fp32 += delta;
            nearest = Formats.roundToBf16(nearest + delta); // 1 + 1e-4 is 1 again: the update vanishes
            stochastic = StochasticRounding.roundToBf16(stochastic + delta, StochasticRounding.randomBits(seed, i));
        }
        return new float[] {fp32, nearest, stochastic};
    }
    // end::lost[]

    // tag::storage[]
    /** Where the weights live between two optimizer steps. */
    public enum Storage {
        /** fp32 weights: the reference. */
        FP32,
        /** bf16 weights only, each update rounded to nearest: updates under half a bf16 step are lost. */
        BF16,
        /** fp32 master weights that AdamW updates; the bf16 copy the model computes with is rounded from them. */
        BF16_MASTER,
        /** bf16 weights only, each update rounded stochastically: no fp32 copy, unbiased on average. */
        BF16_STOCHASTIC
    }
    // end::storage[]

    /** The data: inputs (N, D) standard normal, targets = inputs · wTrue, wTrue of magnitude 0.5 to 2. */
    public record Problem(float[] inputs, float[] targets, float[] wTrue, int N, int D) {
        public static Problem random(long seed, int N, int D) {
            var random = new Random(seed);
            float[] inputs = new float[N * D], targets = new float[N], wTrue = new float[D];
            for (int d = 0; d < D; d++)
                wTrue[d] = (float) ((random.nextBoolean() ? 1 : -1) * (0.5 + 1.5 * random.nextDouble()));
            for (int i = 0; i < N * D; i++) inputs[i] = (float) random.nextGaussian();
            for (int n = 0; n < N; n++) {
                float y = 0;
                for (int d = 0; d < D; d++) y += inputs[n * D + d] * wTrue[d];
                targets[n] = y;
            }
            return new Problem(inputs, targets, wTrue, N, D);
        }

        /** The mean squared error of these weights; writes d loss / d weights into {@code grads} (D). */
        public float lossAndGradient(float[] weights, float[] grads) {
            java.util.Arrays.fill(grads, 0f);
            float loss = 0;
            for (int n = 0; n < N; n++) {
                float prediction = 0;
                for (int d = 0; d < D; d++) prediction += inputs[n * D + d] * weights[d];
                float error = prediction - targets[n];
                loss += error * error / N;
                for (int d = 0; d < D; d++) grads[d] += 2 * error * inputs[n * D + d] / N;
            }
            return loss;
        }
    }

    // tag::train[]
    /**
     * {@code steps} AdamW steps (beta1 0.9, beta2 0.95, eps 1e-8, no weight decay, constant lr) from weights drawn
     * with std 0.02 and rounded to bf16, so that every variant starts from the same numbers. Returns the loss before
     * each step and after the last one (steps + 1 values).
     */
    public static float[] train(Problem problem, Storage storage, int steps, float lr, long seed) {
        int D = problem.D();
        var init = new Random(seed);
        float[] weights = new float[D]; // what forward and backward compute with
        for (int d = 0; d < D; d++) weights[d] = Formats.roundToBf16((float) (0.02 * init.nextGaussian()));
        float[] master = storage == Storage.BF16_MASTER ? weights.clone() : null; // fp32, AdamW's copy
        float[] grads = new float[D], m = new float[D], v = new float[D];
        var rng = new XorShift(13371337); // stochastic rounding: one seed per update, as on the GPU
        boolean bf16 = storage != Storage.FP32;
        float[] losses = new float[steps + 1];
        for (int t = 1; t <= steps + 1; t++) {
            losses[t - 1] = problem.lossAndGradient(weights, grads);
            if (t == steps + 1) break;
            if (bf16) for (int d = 0; d < D; d++) grads[d] = Formats.roundToBf16(grads[d]); // gradients are bf16 too
            int seedThisStep = (int) rng.nextInt32();
            float beta1 = 0.9f, beta2 = 0.95f, eps = 1e-8f;
            float beta1Correction = (float) (1 - Math.pow(beta1, t)),
                    beta2Correction = (float) (1 - Math.pow(beta2, t));
            for (int d = 0; d < D; d++) {
                m[d] = beta1 * m[d] + (1 - beta1) * grads[d];
                v[d] = beta2 * v[d] + (1 - beta2) * grads[d] * grads[d];
                float step = lr * (m[d] / beta1Correction) / ((float) Math.sqrt(v[d] / beta2Correction) + eps);
                // the update itself is fp32 in every variant; only where its result is kept differs
                switch (storage) {
                    case FP32 -> weights[d] -= step;
                    case BF16 -> weights[d] = Formats.roundToBf16(weights[d] - step);
                    case BF16_MASTER -> {
                        master[d] -= step;
                        weights[d] = Formats.roundToBf16(master[d]);
                    }
                    case BF16_STOCHASTIC ->
                        weights[d] = StochasticRounding.roundToBf16(
                                weights[d] - step, StochasticRounding.randomBits(seedThisStep, d));
                }
            }
        }
        return losses;
    }
    // end::train[]
}
