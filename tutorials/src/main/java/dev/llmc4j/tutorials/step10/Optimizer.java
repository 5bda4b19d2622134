package dev.llmc4j.tutorials.step10;

import dev.llmc4j.train.TrainableModel;
import java.util.List;

/**
 * Step 10: everything between "we have the gradient" and "the parameters moved": gradient clipping, the learning
 * rate schedule and AdamW with decoupled weight decay (next to Adam with coupled L2), in double; and gradient
 * accumulation, the loop that makes k micro-batches one optimizer step, written against the real model.
 */
public final class Optimizer {
    private Optimizer() {}

    // tag::clip[]
    /** The global L2 norm over all gradients, as if they were one long vector. */
    public static double globalNorm(double[] grads) {
        double sum = 0;
        for (double g : grads) sum += g * g;
        return Math.sqrt(sum);
    }

    /** Clipping as a scale: shrink the whole gradient to norm maxNorm when it is longer; never change its direction. */
    public static double clipScale(double norm, double maxNorm) {
        return norm > maxNorm ? maxNorm / norm : 1.0;
    }
    // end::clip[]

    // tag::schedule[]
    /**
     * Linear warmup to maxRate over warmupSteps, then a cosine from maxRate down to maxRate * finalFraction at
     * totalSteps. step is 0-based.
     */
    public static double cosineLearningRate(
            int step, double maxRate, int warmupSteps, int totalSteps, double finalFraction) {
        if (step < warmupSteps) return maxRate * (step + 1) / warmupSteps;
        double progress = (double) (step - warmupSteps) / (totalSteps - warmupSteps); // 0 -> 1
        double minRate = maxRate * finalFraction;
        return minRate + 0.5 * (1 + Math.cos(Math.PI * progress)) * (maxRate - minRate);
    }
    // end::schedule[]

    // tag::adamw[]
    /** AdamW's state: a running mean m of the gradient and v of its square, per parameter. */
    public record AdamState(double[] m, double[] v) {
        public static AdamState zeros(int n) {
            return new AdamState(new double[n], new double[n]);
        }
    }

    /**
     * One AdamW step, t = 1, 2, ... Each parameter moves by about lr in the direction of its averaged gradient,
     * divided by the gradient's typical size: the step size no longer depends on the gradient's scale.
     * Weight decay is decoupled: p shrinks by lr * weightDecay * p, outside the adaptive part.
     */
    public static void adamw(
            double[] params,
            double[] grads,
            AdamState state,
            double lr,
            double beta1,
            double beta2,
            double eps,
            double weightDecay,
            double gradScale,
            int t) {
        for (int i = 0; i < params.length; i++) {
            double g = grads[i] * gradScale; // clipping folds in here
            state.m[i] = beta1 * state.m[i] + (1 - beta1) * g;
            state.v[i] = beta2 * state.v[i] + (1 - beta2) * g * g;
            double mHat = state.m[i] / (1 - Math.pow(beta1, t)); // m and v start at 0: undo that bias
            double vHat = state.v[i] / (1 - Math.pow(beta2, t));
            params[i] -= lr * (mHat / (Math.sqrt(vHat) + eps) + weightDecay * params[i]);
        }
    }
    // end::adamw[]

    // tag::l2[]
    /**
     * Adam with COUPLED L2 regularisation (what "Adam + weight decay" meant before AdamW): the decay term
     * weightDecay * p joins the gradient, so it goes through m and v and gets divided by sqrt(v) like the rest.
     * A parameter with a large gradient then barely decays; one with a zero gradient "decays" by a full Adam step.
     */
    public static void adamL2(
            double[] params,
            double[] grads,
            AdamState state,
            double lr,
            double beta1,
            double beta2,
            double eps,
            double weightDecay,
            int t) {
        for (int i = 0; i < params.length; i++) {
            double g = grads[i] + weightDecay * params[i]; // the L2 penalty's gradient, coupled
            state.m[i] = beta1 * state.m[i] + (1 - beta1) * g;
            state.v[i] = beta2 * state.v[i] + (1 - beta2) * g * g;
            double mHat = state.m[i] / (1 - Math.pow(beta1, t));
            double vHat = state.v[i] / (1 - Math.pow(beta2, t));
            params[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
        }
    }
    // end::l2[]

    // tag::accumulate[]
    /** One micro-batch: B*T input tokens and the B*T tokens that follow them. */
    public record MicroBatch(int[] inputs, int[] targets) {}

    /**
     * One optimizer step over k micro-batches of (B, T) tokens: the gradients of the MEAN loss over all k*B*T
     * positions, as if one batch k times larger had run, then clipping at norm 1 and AdamW (llm.c's betas and eps).
     * Returns that mean loss. t is the 1-based step.
     */
    public static float accumulatedStep(
            TrainableModel model, List<MicroBatch> microBatches, int B, int T, float lr, float weightDecay, int t) {
        int k = microBatches.size();
        model.zeroGrad(); // the only reset: each backward below ADDS into the gradients
        float meanLoss = 0;
        for (var micro : microBatches) {
            meanLoss += model.forward(micro.inputs(), micro.targets(), B, T) / k;
            model.backward(k); // dloss = 1/(B*T*k): this micro-batch's share of the mean
        }
        float gradScale = (float) clipScale(model.gradientNorm(), 1.0); // the norm of the SUM, after all k
        model.update(lr, 0.9f, 0.95f, 1e-8f, weightDecay, gradScale, t);
        return meanLoss;
    }
    // end::accumulate[]

    // tag::decay[]
    /** llm.c decays only the 2-D tensors: wte, wpe and the four weight matrices; never biases or layernorm gains. */
    public static boolean decays(int tensorIndex) {
        return switch (tensorIndex) {
            case 0, 1, 4, 6, 10, 12 -> true;
            default -> false;
        };
    }
    // end::decay[]
}
