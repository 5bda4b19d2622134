package dev.llmc4j.tutorials.step03;

import java.util.function.Function;

/**
 * Step 3: LayerNorm over the C channels of each of the N = B*T positions, forward and backward, in double.
 *
 * <pre>
 *   forward, one row x (C):   mean = Σx / C      var = Σ(x - mean)² / C      rstd = 1 / sqrt(var + eps)
 *                             n = (x - mean) * rstd                          out = n * weight + bias
 *   backward, with g = weight * dout:
 *                             dbias += dout      dweight += n * dout
 *                             dx = rstd * (g - mean(g) - n * mean(g * n))
 * </pre>
 */
public final class LayerNorm {
    private LayerNorm() {}

    public static final double EPS = 1e-5;

    /** The forward's output and what the backward needs: mean and rstd of each row (N). */
    public record Result(double[] out, double[] mean, double[] rstd) {}

    // tag::forward[]
    public static Result forward(double[] x, double[] weight, double[] bias, int N, int C) {
        var out = new double[N * C];
        var mean = new double[N];
        var rstd = new double[N];
        for (int row = 0; row < N; row++) {
            int base = row * C;
            double m = 0;
            for (int i = 0; i < C; i++) m += x[base + i];
            m /= C;
            double variance = 0;
            for (int i = 0; i < C; i++) variance += (x[base + i] - m) * (x[base + i] - m);
            variance /= C;
            double s = 1.0 / Math.sqrt(variance + EPS);
            for (int i = 0; i < C; i++) {
                double n = (x[base + i] - m) * s;
                out[base + i] = n * weight[i] + bias[i];
            }
            mean[row] = m;
            rstd[row] = s;
        }
        return new Result(out, mean, rstd);
    }
    // end::forward[]

    // tag::backward[]
    /** Accumulates into dx (N*C), dweight (C) and dbias (C). */
    public static void backward(
            double[] dx,
            double[] dweight,
            double[] dbias,
            double[] dout,
            double[] x,
            double[] weight,
            double[] mean,
            double[] rstd,
            int N,
            int C) {
        for (int row = 0; row < N; row++) {
            int base = row * C;
            // the two means the normalisation takes away: mean(g) and mean(g * n)
            double gMean = 0, gnMean = 0;
            for (int i = 0; i < C; i++) {
                double n = (x[base + i] - mean[row]) * rstd[row];
                double g = weight[i] * dout[base + i];
                gMean += g;
                gnMean += g * n;
            }
            gMean /= C;
            gnMean /= C;
            for (int i = 0; i < C; i++) {
                double n = (x[base + i] - mean[row]) * rstd[row];
                double g = weight[i] * dout[base + i];
                dbias[i] += dout[base + i];
                dweight[i] += n * dout[base + i];
                dx[base + i] += rstd[row] * (g - gMean - n * gnMean);
            }
        }
    }
    // end::backward[]

    // tag::gradcheck[]
    /**
     * The gradient check: for the scalar loss = Σ f(x) * r (r fixed and random, so dout = r), the derivative by
     * each x[i] is (loss(x + h e_i) - loss(x - h e_i)) / 2h up to O(h²). Works for any f; x is restored.
     */
    public static double[] numericGradient(double[] x, Function<double[], double[]> f, double[] r, double h) {
        var gradient = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double saved = x[i];
            x[i] = saved + h;
            double plus = dot(f.apply(x), r);
            x[i] = saved - h;
            double minus = dot(f.apply(x), r);
            x[i] = saved;
            gradient[i] = (plus - minus) / (2 * h);
        }
        return gradient;
    }
    // end::gradcheck[]

    static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) sum += a[i] * b[i];
        return sum;
    }
}
