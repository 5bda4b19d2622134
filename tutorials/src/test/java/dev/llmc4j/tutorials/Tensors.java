package dev.llmc4j.tutorials;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.function.Function;

/**
 * Test plumbing shared by the steps: the lessons work on plain {@code double[]} (easy to read, exact enough for
 * gradient checks), the real modules on off-heap float tensors ({@link MemorySegment}); these convert between them
 * and measure how far apart two results are.
 */
public final class Tensors {
    private Tensors() {}

    /** Off-heap memory for the real kernels; lives as long as the test JVM. */
    public static final Arena ARENA = Arena.ofAuto();

    /**
     * Central differences of loss(x) = f(x) · dout by every element of x, perturbed in place by ±h and restored: the
     * gradient check of each step's test (step 3 shows the same function as lesson code).
     */
    public static double[] numericGradient(double[] x, Function<double[], double[]> f, double[] dout, double h) {
        var gradient = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double saved = x[i];
            x[i] = saved + h;
            double plus = dot(f.apply(x), dout);
            x[i] = saved - h;
            double minus = dot(f.apply(x), dout);
            x[i] = saved;
            gradient[i] = (plus - minus) / (2 * h);
        }
        return gradient;
    }

    public static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) sum += a[i] * b[i];
        return sum;
    }

    public static double[] gaussian(Random random, int n, double std) {
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = random.nextGaussian() * std;
        return values;
    }

    /** The doubles rounded to floats, in a fresh segment. */
    public static MemorySegment segment(double[] values) {
        var segment = zeros(values.length);
        for (int i = 0; i < values.length; i++) segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) values[i]);
        return segment;
    }

    public static MemorySegment zeros(long n) {
        return ARENA.allocate(Math.max(1, n) * Float.BYTES, 64);
    }

    public static double[] doubles(MemorySegment segment, long offset, int n) {
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = segment.getAtIndex(ValueLayout.JAVA_FLOAT, offset + i);
        return values;
    }

    public static double[] doubles(MemorySegment segment, int n) {
        return doubles(segment, 0, n);
    }

    /** The doubles rounded to float and back: what the float module starts from. */
    public static double[] roundedToFloat(double[] values) {
        var rounded = new double[values.length];
        for (int i = 0; i < values.length; i++) rounded[i] = (float) values[i];
        return rounded;
    }

    /** ||a - b|| / ||b||, the error measure of every check (0 when both are zero). */
    public static double relativeError(double[] a, double[] b) {
        if (a.length != b.length) throw new IllegalArgumentException("lengths differ: " + a.length + " vs " + b.length);
        double diff = 0, norm = 0;
        for (int i = 0; i < a.length; i++) {
            diff += (a[i] - b[i]) * (a[i] - b[i]);
            norm += b[i] * b[i];
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /** Largest |a[i] - b[i]|. */
    public static double maxAbsDifference(double[] a, double[] b) {
        double max = 0;
        for (int i = 0; i < a.length; i++) max = Math.max(max, Math.abs(a[i] - b[i]));
        return max;
    }
}
