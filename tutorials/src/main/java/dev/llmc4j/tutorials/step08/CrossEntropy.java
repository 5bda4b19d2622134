package dev.llmc4j.tutorials.step08;

/**
 * Step 8: from logits to the loss, and the one-line gradient of the two together, in double.
 *
 * <pre>
 *   probs[i] = exp(logits[i] - max) / Σ_j exp(logits[j] - max)     softmax over the V real tokens (the max cancels)
 *   loss     = -log probs[target]                                  cross-entropy with the next token
 *   dloss/dlogits[i] = probs[i] - [i == target]                    softmax and cross-entropy differentiated together
 * </pre>
 * Rows are Vp wide (the vocabulary padded to a multiple of 128); the padding columns get probability 0 and
 * gradient 0.
 */
public final class CrossEntropy {
    private CrossEntropy() {}

    // tag::forward[]
    /** probs (N, Vp) from logits (N, Vp), softmax over the first V columns of each row. */
    public static double[] softmax(double[] logits, int N, int V, int Vp) {
        var probs = new double[N * Vp];
        for (int n = 0; n < N; n++) {
            double max = Double.NEGATIVE_INFINITY;
            for (int i = 0; i < V; i++) max = Math.max(max, logits[n * Vp + i]);
            double sum = 0;
            for (int i = 0; i < V; i++) sum += probs[n * Vp + i] = Math.exp(logits[n * Vp + i] - max);
            for (int i = 0; i < V; i++) probs[n * Vp + i] /= sum;
        }
        return probs;
    }

    /** The mean over the N rows of -log probs[target]. */
    public static double meanLoss(double[] probs, int[] targets, int N, int Vp) {
        double sum = 0;
        for (int n = 0; n < N; n++) sum += -Math.log(probs[n * Vp + targets[n]]);
        return sum / N;
    }
    // end::forward[]

    // tag::backward[]
    /**
     * The gradient of the MEAN loss: each row's loss counts 1/N, so dlogits = (probs - onehot(target)) / N.
     * No softmax Jacobian is ever built: differentiated together, softmax and log cancel to this subtraction.
     */
    public static double[] backward(double[] probs, int[] targets, int N, int V, int Vp) {
        var dlogits = new double[N * Vp];
        for (int n = 0; n < N; n++)
            for (int i = 0; i < V; i++) {
                double indicator = i == targets[n] ? 1 : 0;
                dlogits[n * Vp + i] = (probs[n * Vp + i] - indicator) / N;
            }
        return dlogits;
    }
    // end::backward[]
}
