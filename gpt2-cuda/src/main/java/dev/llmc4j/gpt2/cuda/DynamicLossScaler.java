package dev.llmc4j.gpt2.cuda;

/**
 * Dynamic loss scaling for fp16 training, with PyTorch's GradScaler rules.
 *
 * <p>fp16 has 5 exponent bits: gradients below about 6e-8 flush to zero. Multiplying the loss by a large scale
 * lifts every gradient by the same factor (backward is linear in the loss), and the optimizer divides it out
 * again. Too large a scale overflows to inf; so:
 * <ul>
 *   <li>each step, check the (scaled) gradients for inf/NaN;</li>
 *   <li>if found: skip the optimizer step, halve the scale ({@code backoffFactor}), restart the count;</li>
 *   <li>otherwise: step with gradients divided by the scale; after {@code growthInterval} good steps in a row
 *       double the scale ({@code growthFactor}).</li>
 * </ul>
 * Pure Java bookkeeping: the GPU side only reports "found inf" (check_finite kernel).
 */
public final class DynamicLossScaler {
    public static final float DEFAULT_INITIAL_SCALE = 65536.0f; // 2^16, PyTorch's default
    public static final float DEFAULT_GROWTH_FACTOR = 2.0f;
    public static final float DEFAULT_BACKOFF_FACTOR = 0.5f;
    public static final int DEFAULT_GROWTH_INTERVAL = 2000;

    private final float growthFactor;
    private final float backoffFactor;
    private final int growthInterval;
    private float scale;
    private int goodSteps;
    private long skippedSteps;

    public DynamicLossScaler() {
        this(DEFAULT_INITIAL_SCALE, DEFAULT_GROWTH_FACTOR, DEFAULT_BACKOFF_FACTOR, DEFAULT_GROWTH_INTERVAL);
    }

    public DynamicLossScaler(float initialScale, float growthFactor, float backoffFactor, int growthInterval) {
        if (!(initialScale > 0) || Float.isInfinite(initialScale))
            throw new IllegalArgumentException("initial scale must be positive and finite: " + initialScale);
        if (!(growthFactor > 1)) throw new IllegalArgumentException("growth factor must be > 1: " + growthFactor);
        if (!(backoffFactor > 0 && backoffFactor < 1))
            throw new IllegalArgumentException("backoff factor must be in (0,1): " + backoffFactor);
        if (growthInterval < 1) throw new IllegalArgumentException("growth interval must be >= 1: " + growthInterval);
        this.scale = initialScale;
        this.growthFactor = growthFactor;
        this.backoffFactor = backoffFactor;
        this.growthInterval = growthInterval;
    }

    /** The factor the loss (and so every gradient) is multiplied by in this step. */
    public float scale() {
        return scale;
    }

    /** Multiply the unscaled gradients' step by this: 1 / scale. */
    public float inverseScale() {
        return 1.0f / scale;
    }

    /** Good steps since the last growth or overflow. */
    public int goodSteps() {
        return goodSteps;
    }

    /** Steps skipped because of inf/NaN gradients, in total. */
    public long skippedSteps() {
        return skippedSteps;
    }

    /** Continues from a saved state (resume): the scale and the good steps since it last changed. */
    public void restore(float savedScale, int savedGoodSteps) {
        if (!(savedScale > 0) || Float.isInfinite(savedScale))
            throw new IllegalArgumentException("loss scale must be positive and finite: " + savedScale);
        if (savedGoodSteps < 0 || savedGoodSteps >= growthInterval)
            throw new IllegalArgumentException("good steps must be in [0, " + growthInterval + "): " + savedGoodSteps);
        scale = savedScale;
        goodSteps = savedGoodSteps;
    }

    /**
     * Records the outcome of one step and adapts the scale.
     *
     * @param foundInfOrNan whether any scaled gradient was inf or NaN
     * @return true if the optimizer step should be applied, false if it must be skipped
     */
    public boolean update(boolean foundInfOrNan) {
        if (foundInfOrNan) {
            scale *= backoffFactor;
            goodSteps = 0;
            skippedSteps++;
            return false;
        }
        goodSteps++;
        if (goodSteps == growthInterval) {
            float grown = scale * growthFactor;
            if (Float.isFinite(grown)) scale = grown; // never grow into inf, the scale itself must stay usable
            goodSteps = 0;
        }
        return true;
    }

    @Override
    public String toString() {
        return "DynamicLossScaler[scale=" + scale + ", goodSteps=" + goodSteps + ", skipped=" + skippedSteps + "]";
    }
}
