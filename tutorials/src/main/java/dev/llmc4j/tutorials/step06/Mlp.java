package dev.llmc4j.tutorials.step06;

/**
 * Step 6: the MLP of a transformer block: widen to 4C, GELU, project back to C.
 *
 * <pre>
 *   h   = x · fcwᵀ + fcb         (N, 4C)    fcw (4C, C)
 *   a   = gelu(h)                (N, 4C)
 *   out = a · projwᵀ + projb     (N, C)     projw (C, 4C)
 * </pre>
 * The backward runs the same three steps in reverse, each one's input gradient being the next one's dout.
 */
public final class Mlp {
    private Mlp() {}

    /** The weights of one MLP. */
    public record Weights(double[] fcw, double[] fcb, double[] projw, double[] projb) {}

    /** Their gradients, same shapes. */
    public record Gradients(double[] fcw, double[] fcb, double[] projw, double[] projb) {
        public static Gradients zerosLike(Weights w) {
            return new Gradients(
                    new double[w.fcw.length],
                    new double[w.fcb.length],
                    new double[w.projw.length],
                    new double[w.projb.length]);
        }
    }

    /** What the forward keeps for the backward: h (before GELU) and a (after). */
    public record Activations(double[] h, double[] a, double[] out) {}

    // tag::mlp[]
    public static Activations forward(double[] x, Weights w, int N, int C) {
        double[] h = linear(x, w.fcw, w.fcb, N, C, 4 * C);
        double[] a = Gelu.forward(h);
        double[] out = linear(a, w.projw, w.projb, N, 4 * C, C);
        return new Activations(h, a, out);
    }

    /** Accumulates into dx (N, C) and the weight gradients. */
    public static void backward(
            double[] dx, Gradients g, double[] dout, double[] x, Weights w, Activations acts, int N, int C) {
        double[] da = new double[N * 4 * C];
        linearBackward(da, g.projw, g.projb, dout, acts.a, w.projw, N, 4 * C, C);
        double[] dh = new double[N * 4 * C];
        Gelu.backward(dh, acts.h, da);
        linearBackward(dx, g.fcw, g.fcb, dh, x, w.fcw, N, C, 4 * C);
    }
    // end::mlp[]

    // the matmul of step 4, repeated here so this step stands alone
    static double[] linear(double[] inp, double[] weight, double[] bias, int N, int C, int OC) {
        var out = new double[N * OC];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double sum = bias[o];
                for (int c = 0; c < C; c++) sum += inp[n * C + c] * weight[o * C + c];
                out[n * OC + o] = sum;
            }
        return out;
    }

    static void linearBackward(
            double[] dinp,
            double[] dweight,
            double[] dbias,
            double[] dout,
            double[] inp,
            double[] weight,
            int N,
            int C,
            int OC) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double d = dout[n * OC + o];
                for (int c = 0; c < C; c++) {
                    dinp[n * C + c] += d * weight[o * C + c];
                    dweight[o * C + c] += d * inp[n * C + c];
                }
                dbias[o] += d;
            }
    }
}
