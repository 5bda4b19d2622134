package dev.llmc4j.tutorials.step04;

/**
 * Step 4: the matmul of a Linear layer, forward and backward, in double.
 *
 * <pre>
 *   shapes: inp (N, C), weight (OC, C) as PyTorch stores nn.Linear, bias (OC), out (N, OC)
 *   forward:   out[n,o]  = bias[o] + Σ_c inp[n,c] * weight[o,c]          out = inp · weightᵀ + bias
 *   backward:  dinp[n,c]    += Σ_o dout[n,o] * weight[o,c]                dinp    = dout · weight
 *              dweight[o,c] += Σ_n dout[n,o] * inp[n,c]                   dweight = doutᵀ · inp
 *              dbias[o]     += Σ_n dout[n,o]
 * </pre>
 * Every output element costs C multiply-adds, so the forward is 2·N·C·OC flops and the backward twice that.
 */
public final class Linear {
    private Linear() {}

    // tag::forward[]
    public static double[] forward(double[] inp, double[] weight, double[] bias, int N, int C, int OC) {
        var out = new double[N * OC];
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OC; o++) {
                double sum = bias == null ? 0 : bias[o];
                for (int c = 0; c < C; c++) sum += inp[n * C + c] * weight[o * C + c];
                out[n * OC + o] = sum;
            }
        }
        return out;
    }
    // end::forward[]

    // tag::backward[]
    /** Accumulates into dinp (N, C), dweight (OC, C) and dbias (OC, may be null). */
    public static void backward(
            double[] dinp,
            double[] dweight,
            double[] dbias,
            double[] dout,
            double[] inp,
            double[] weight,
            int N,
            int C,
            int OC) {
        for (int n = 0; n < N; n++) {
            for (int o = 0; o < OC; o++) {
                double d = dout[n * OC + o];
                for (int c = 0; c < C; c++) {
                    dinp[n * C + c] += d * weight[o * C + c]; // out[n,o] used inp[n,c] with factor weight[o,c]
                    dweight[o * C + c] += d * inp[n * C + c]; // ... and weight[o,c] with factor inp[n,c]
                }
                if (dbias != null) dbias[o] += d;
            }
        }
    }
    // end::backward[]

    /** Floating-point operations of one forward: a multiply and an add per term. */
    public static long forwardFlops(long N, long C, long OC) {
        return 2 * N * C * OC;
    }
}
