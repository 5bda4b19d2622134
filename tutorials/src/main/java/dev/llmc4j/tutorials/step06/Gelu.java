package dev.llmc4j.tutorials.step06;

/**
 * Step 6: GELU, GPT-2's non-linearity, in the tanh approximation GPT-2 was trained with.
 *
 * <pre>
 *   u = sqrt(2/π) (x + 0.044715 x³)
 *   gelu(x)  = 0.5 x (1 + tanh u)
 *   gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh² u) sqrt(2/π) (1 + 3 * 0.044715 x²)
 * </pre>
 */
public final class Gelu {
    private Gelu() {}

    static final double SCALE = Math.sqrt(2.0 / Math.PI);

    // tag::gelu[]
    public static double[] forward(double[] x) {
        var out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double u = SCALE * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
            out[i] = 0.5 * x[i] * (1 + Math.tanh(u));
        }
        return out;
    }

    /** dx += gelu'(x) * dout: product rule on 0.5 x (1 + tanh u), chain rule through u. */
    public static void backward(double[] dx, double[] x, double[] dout) {
        for (int i = 0; i < x.length; i++) {
            double u = SCALE * (x[i] + 0.044715 * x[i] * x[i] * x[i]);
            double tanh = Math.tanh(u);
            double du = SCALE * (1 + 3 * 0.044715 * x[i] * x[i]);
            double local = 0.5 * (1 + tanh) + 0.5 * x[i] * (1 - tanh * tanh) * du;
            dx[i] += local * dout[i];
        }
    }
    // end::gelu[]
}
