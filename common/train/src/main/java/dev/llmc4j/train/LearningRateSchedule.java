package dev.llmc4j.train;

import dev.llmc4j.util.LlmcException;

/**
 * llm.c's learning-rate schedulers ({@code llmc/schedulers.h}), in float arithmetic in the same operation order so
 * the rates are bit-identical. {@code step} is the 0-based optimizer step, N = {@code totalSteps} (llm.c's
 * train_num_batches), W = {@code warmupSteps}, min = lr * finalFraction.
 *
 * <pre>
 *   warmup (cosine, linear, wsd): step &lt; W  -&gt;  lr * (step+1) / W
 *   cosine:   r = (step-W)/(N-W);  min + 0.5*(1 + cos(pi*r)) * (lr-min)
 *   linear:   r = (step-W)/(N-W);  lr - r*(lr-min)
 *   constant: lr (no warmup)
 *   wsd:      lr until D = (int)(0.8*N); then r = (step-D)/(N-D);  min + (1 - sqrt(r)) * (lr-min)
 * </pre>
 * A ratio outside [0, 1] (step past N) is a programming error, as llm.c's assert.
 */
public sealed interface LearningRateSchedule {

    float learningRate(int step);

    /** The name llm.c's {@code -k} option uses. */
    String name();

    record Cosine(float maxRate, int warmupSteps, int totalSteps, float finalFraction) implements LearningRateSchedule {
        @Override
        public float learningRate(int step) {
            if (step < warmupSteps) return warmup(maxRate, step, warmupSteps);
            float decayRatio = ((float) (step - warmupSteps)) / (totalSteps - warmupSteps);
            checkRatio(decayRatio, step);
            float coefficient = 0.5f * (1.0f + (float) Math.cos((float) (Math.PI * decayRatio))); // 1 -> 0
            float minRate = maxRate * finalFraction;
            return minRate + coefficient * (maxRate - minRate);
        }

        @Override
        public String name() {
            return "cosine";
        }
    }

    record Linear(float maxRate, int warmupSteps, int totalSteps, float finalFraction) implements LearningRateSchedule {
        @Override
        public float learningRate(int step) {
            if (step < warmupSteps) return warmup(maxRate, step, warmupSteps);
            float decayRatio = ((float) (step - warmupSteps)) / (totalSteps - warmupSteps);
            checkRatio(decayRatio, step);
            float minRate = maxRate * finalFraction;
            return maxRate - decayRatio * (maxRate - minRate);
        }

        @Override
        public String name() {
            return "linear";
        }
    }

    record Constant(float maxRate) implements LearningRateSchedule {
        @Override
        public float learningRate(int step) {
            return maxRate;
        }

        @Override
        public String name() {
            return "constant";
        }
    }

    /** Warmup-stable-decay (arXiv 2405.18392): the last 20% decays as 1 - sqrt; a final fraction of 0 is usual. */
    record WarmupStableDecay(float maxRate, int warmupSteps, int totalSteps, float finalFraction)
            implements LearningRateSchedule {
        @Override
        public float learningRate(int step) {
            int decayPoint = (int) (0.8f * totalSteps);
            if (step < warmupSteps) {
                float ratio = ((float) (step + 1)) / warmupSteps; // note: divided first, unlike cosine/linear
                return maxRate * ratio;
            }
            if (step < decayPoint) return maxRate;
            float decayRatio = ((float) (step - decayPoint)) / (totalSteps - decayPoint);
            checkRatio(decayRatio, step);
            float minRate = maxRate * finalFraction;
            return minRate + (1.0f - (float) Math.sqrt(decayRatio)) * (maxRate - minRate);
        }

        @Override
        public String name() {
            return "wsd";
        }
    }

    /** Builds a schedule from its {@code -k} name: cosine, linear, constant or wsd. */
    static LearningRateSchedule of(String name, float maxRate, int warmupSteps, int totalSteps, float finalFraction) {
        return switch (name) {
            case "cosine" -> new Cosine(maxRate, warmupSteps, totalSteps, finalFraction);
            case "linear" -> new Linear(maxRate, warmupSteps, totalSteps, finalFraction);
            case "constant" -> new Constant(maxRate);
            case "wsd" -> new WarmupStableDecay(maxRate, warmupSteps, totalSteps, finalFraction);
            default ->
                throw new LlmcException(
                        "unknown learning rate schedule '" + name + "': use cosine, linear, constant or wsd");
        };
    }

    // lr * (step+1) / W, multiplied before dividing, as llm.c's cosine and linear warmup
    private static float warmup(float maxRate, int step, int warmupSteps) {
        return maxRate * ((float) (step + 1)) / warmupSteps;
    }

    private static void checkRatio(float decayRatio, int step) {
        if (!(decayRatio >= 0.0f && decayRatio <= 1.0f)) {
            throw new IllegalArgumentException(
                    "step " + step + " is outside the schedule (decay ratio " + decayRatio + ")");
        }
    }
}
