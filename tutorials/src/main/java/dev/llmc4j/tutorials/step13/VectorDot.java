package dev.llmc4j.tutorials.step13;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Step 13: the Vector API in a few lines, on plain {@code float[]}: a dot product, y += alpha·x (axpy) and a
 * matrix-vector product, each with a scalar version to read first and to test against.
 *
 * <pre>
 *   dot(a, b, n)          = Σ_i a[i] * b[i]                  a, b: (n)
 *   axpy(y, alpha, x, n):   y[i] += alpha * x[i]             x, y: (n)
 *   matvec(w, x, rows, n) = out[r] = Σ_i w[r,i] * x[i]       w: (rows, n), x: (n), out: (rows)
 * </pre>
 * A {@link FloatVector} holds W floats (8 with AVX2, 16 with AVX-512); one {@code fma} does W multiply-adds.
 * The last {@code n % W} elements are handled by the same code with a mask that switches off the lanes past n.
 */
public final class VectorDot {
    private VectorDot() {}

    /** The widest vector this CPU has; W = SPECIES.length() floats. */
    static final VectorSpecies<Float> SPECIES = FloatVector.SPECIES_PREFERRED;

    public static int lanes() {
        return SPECIES.length();
    }

    // tag::scalar[]
    public static float scalarDot(float[] a, float[] b, int n) {
        float sum = 0;
        for (int i = 0; i < n; i++) sum += a[i] * b[i];
        return sum;
    }
    // end::scalar[]

    // tag::dot[]
    /** One accumulator: W lanes of partial sums, added up once at the end. */
    public static float dot(float[] a, float[] b, int n) {
        var sum = FloatVector.zero(SPECIES);
        int i = 0;
        for (int upper = SPECIES.loopBound(n); i < upper; i += SPECIES.length()) {
            var va = FloatVector.fromArray(SPECIES, a, i);
            var vb = FloatVector.fromArray(SPECIES, b, i);
            sum = va.fma(vb, sum); // sum[lane] += a[i+lane] * b[i+lane]
        }
        if (i < n) { // the tail: lanes at or past n are masked off
            VectorMask<Float> inRange = SPECIES.indexInRange(i, n);
            var va = FloatVector.fromArray(SPECIES, a, i, inRange); // masked-off lanes read as 0, never past the end
            var vb = FloatVector.fromArray(SPECIES, b, i, inRange);
            sum = va.fma(vb, sum);
        }
        return sum.reduceLanes(VectorOperators.ADD); // W partial sums -> 1
    }
    // end::dot[]

    // tag::dot4[]
    /**
     * Four accumulators. An fma takes about 4 cycles before its result can feed the next one, but a core can start
     * one or two every cycle: with a single accumulator each fma waits for the previous one. Four independent
     * chains keep the FMA units busy; they are summed once at the end.
     */
    public static float dot4(float[] a, int aOffset, float[] b, int bOffset, int n) {
        int w = SPECIES.length();
        var sum0 = FloatVector.zero(SPECIES);
        var sum1 = FloatVector.zero(SPECIES);
        var sum2 = FloatVector.zero(SPECIES);
        var sum3 = FloatVector.zero(SPECIES);
        int i = 0;
        for (; i + 4 * w <= n; i += 4 * w) { // 4 vectors per step, one per accumulator
            sum0 = load(a, aOffset + i).fma(load(b, bOffset + i), sum0);
            sum1 = load(a, aOffset + i + w).fma(load(b, bOffset + i + w), sum1);
            sum2 = load(a, aOffset + i + 2 * w).fma(load(b, bOffset + i + 2 * w), sum2);
            sum3 = load(a, aOffset + i + 3 * w).fma(load(b, bOffset + i + 3 * w), sum3);
        }
        for (; i < n; i += w) { // what is left: whole vectors, the last one masked
            var inRange = SPECIES.indexInRange(i, n); // relative to this row: lanes at or past n are off
            var va = FloatVector.fromArray(SPECIES, a, aOffset + i, inRange);
            var vb = FloatVector.fromArray(SPECIES, b, bOffset + i, inRange);
            sum0 = va.fma(vb, sum0);
        }
        return sum0.add(sum1).add(sum2.add(sum3)).reduceLanes(VectorOperators.ADD);
    }

    private static FloatVector load(float[] array, int offset) {
        return FloatVector.fromArray(SPECIES, array, offset);
    }
    // end::dot4[]

    // tag::axpy[]
    /** y += alpha * x: the masked store writes only the lanes inside the array. */
    public static void axpy(float[] y, float alpha, float[] x, int n) {
        var va = FloatVector.broadcast(SPECIES, alpha); // alpha in every lane
        for (int i = 0; i < n; i += SPECIES.length()) {
            var inRange = SPECIES.indexInRange(i, n); // all true except in the last, partial vector
            var vy = FloatVector.fromArray(SPECIES, y, i, inRange);
            var vx = FloatVector.fromArray(SPECIES, x, i, inRange);
            vx.fma(va, vy).intoArray(y, i, inRange);
        }
    }
    // end::axpy[]

    /** Math.fma rounds once, as the vector fma does: the two versions agree bit for bit. */
    public static void scalarAxpy(float[] y, float alpha, float[] x, int n) {
        for (int i = 0; i < n; i++) y[i] = Math.fma(alpha, x[i], y[i]);
    }

    // tag::matvec[]
    /** out (rows) = w (rows, n) · x (n): one dot per row, the row read from its offset in the flat array. */
    public static float[] matvec(float[] w, float[] x, int rows, int n) {
        var out = new float[rows];
        for (int r = 0; r < rows; r++) out[r] = dot4(w, r * n, x, 0, n); // row r starts at r*n
        return out;
    }
    // end::matvec[]

    public static float[] scalarMatvec(float[] w, float[] x, int rows, int n) {
        var out = new float[rows];
        for (int r = 0; r < rows; r++) {
            float sum = 0;
            for (int i = 0; i < n; i++) sum += w[r * n + i] * x[i];
            out[r] = sum;
        }
        return out;
    }
}
