package dev.llmc4j.train;

/**
 * llm.c's {@code outlier_detector.h}: the z-score of a value against the last 128 values (the new value included),
 * from a running sum and sum of squares. Used on the loss and on the global gradient norm to skip updates that
 * look like spikes.
 */
public final class OutlierDetector {
    public static final int WINDOW = 128;

    private final double[] window = new double[WINDOW];
    private int count; // values stored, up to WINDOW
    private int oldest; // ring index of the value to replace next, once full
    private double sum;
    private double sumOfSquares;

    /**
     * Adds a value and returns its z-score: NaN while the window is still filling (fewer than 128 earlier values),
     * 0 when the window has no spread.
     */
    public double update(double value) {
        if (count < WINDOW) {
            window[count++] = value;
            sum += value;
            sumOfSquares += value * value;
            return Double.NaN;
        }
        double dropped = window[oldest];
        sum -= dropped;
        sumOfSquares -= dropped * dropped;
        window[oldest] = value;
        sum += value;
        sumOfSquares += value * value;
        oldest = (oldest + 1) % WINDOW;
        double mean = sum / WINDOW;
        double variance = sumOfSquares / WINDOW - mean * mean;
        double std = Math.sqrt(variance);
        if (std == 0.0) return 0.0;
        return (value - mean) / std;
    }

    /**
     * llm.c's skip rule: skip when a threshold is set (non-zero) and the z-score exceeds it; a NaN z-score (window
     * still filling) never skips.
     */
    public static boolean shouldSkip(double zScore, float threshold) {
        return threshold != 0.0f && zScore > threshold;
    }
}
