package dev.llmc4j.train;

/**
 * Something that watches a training run (the monitor of {@code ./llmc train --ui}): the {@link Trainer} calls it at
 * the points where it logs, validates and samples. Every method does nothing unless overridden; a listener that
 * looks at the gradients or the update asks for it with {@link #inspects} on the few steps it wants, so the other
 * steps cost nothing. Rank 0 alone has listeners in a data-parallel run.
 */
public interface TrainingListener {

    /**
     * One step's line of the log, 1-based step as printed.
     *
     * @param lossZ        z-score of the loss against the last 128 (NaN while the window fills)
     * @param normZ        z-score of the gradient norm, likewise
     * @param tokensPerSecond the smoothed throughput (-1 before the first timed step)
     * @param skipped      whether the outlier rule (-sl, -sg) skipped this step's update
     */
    record StepLog(
            int step,
            int numSteps,
            float loss,
            double lossZ,
            float norm,
            double normZ,
            float learningRate,
            double millis,
            float tokensPerSecond,
            boolean skipped) {}

    /** Whether {@link #beforeUpdate} should run at this (1-based) step. */
    default boolean inspects(int step) {
        return false;
    }

    /**
     * The step's gradients are averaged over the ranks and their norm taken, the activations hold its last
     * micro-batch, and the parameters are not yet updated. Called only on steps the listener {@link #inspects}.
     */
    default void beforeUpdate(int step) {}

    /** After the update (or the skip) of a step: its log line. */
    default void stepDone(StepLog log) {}

    /** The val loss at a step (0 is before the first update); the model is between steps, free to run forwards. */
    default void validated(int step, float valLoss) {}

    /** The text (or token ids) of the sample generated at a step. */
    default void sampled(int step, String text) {}

    /** The run is over. */
    default void finished(Trainer.Result result) {}
}
