package dev.llmc4j.tutorials.step07;

/**
 * Step 7: the transformer block and the residual stream, and with them GPT-2's whole forward pass, in double.
 *
 * <pre>
 *   x = wte[tokens] + wpe[positions]                          the residual stream (B, T, C)
 *   for each of the L blocks:
 *       x = x + attproj(attention(qkv(layernorm1(x))))         the attention half READS x and ADDS to it
 *       x = x + fcproj(gelu(fc(layernorm2(x))))                the MLP half, the same
 *   logits = layernormf(x) · wteᵀ                             (B, T, Vp): the lm head reuses wte (weight tying)
 * </pre>
 * The block never overwrites x: each half adds its contribution. That is the residual stream: a block whose two
 * projections are zero is the identity, and in the backward the gradient of x reaches every earlier layer
 * directly through the additions.
 *
 * <p>Parameters come as llm.c lays them out: 16 tensors in one array (see {@code GPT2Config.parameterSizes()}),
 * the per-layer ones stacked layer after layer. This class takes them from such an array; the layer functions at
 * the bottom are steps 3 to 6 repeated in their shortest form so this step stands alone.
 */
public final class TransformerForward {
    public final int maxT, V, Vp, L, NH, C;
    private final double[][] tensors; // the 16 parameter tensors, llm.c's order

    public TransformerForward(int maxT, int V, int Vp, int L, int NH, int C, double[] parameters) {
        this.maxT = maxT;
        this.V = V;
        this.Vp = Vp;
        this.L = L;
        this.NH = NH;
        this.C = C;
        long[] sizes = {
            (long) Vp * C,
            (long) maxT * C,
            L * C,
            L * C,
            3L * L * C * C,
            3L * L * C,
            (long) L * C * C,
            L * C,
            L * C,
            L * C,
            4L * L * C * C,
            4L * L * C,
            4L * L * C * C,
            L * C,
            C,
            C
        };
        tensors = new double[16][];
        int offset = 0;
        for (int i = 0; i < 16; i++) {
            tensors[i] = java.util.Arrays.copyOfRange(parameters, offset, offset + (int) sizes[i]);
            offset += (int) sizes[i];
        }
        if (offset != parameters.length)
            throw new IllegalArgumentException("expected " + offset + " parameters, found " + parameters.length);
    }

    /** Tensor {@code index} (0..15) of layer l: its l-th slice of {@code perLayer} values. */
    double[] layer(int index, int l, int perLayer) {
        return java.util.Arrays.copyOfRange(tensors[index], l * perLayer, (l + 1) * perLayer);
    }

    // tag::block[]
    /** One block on the residual stream x (N = B*T rows of C): returns the new stream; x is left as it was. */
    public double[] block(double[] x, int l, int B, int T) {
        int N = B * T;
        double[] ln1 = layernorm(x, layer(2, l, C), layer(3, l, C), N, C);
        double[] qkv = linear(ln1, layer(4, l, 3 * C * C), layer(5, l, 3 * C), N, C, 3 * C);
        double[] atty = attention(qkv, B, T, C, NH);
        double[] attproj = linear(atty, layer(6, l, C * C), layer(7, l, C), N, C, C);
        double[] residual2 = add(x, attproj); // first addition to the stream

        double[] ln2 = layernorm(residual2, layer(8, l, C), layer(9, l, C), N, C);
        double[] fch = linear(ln2, layer(10, l, 4 * C * C), layer(11, l, 4 * C), N, C, 4 * C);
        double[] fchGelu = gelu(fch);
        double[] fcproj = linear(fchGelu, layer(12, l, 4 * C * C), layer(13, l, C), N, 4 * C, C);
        return add(residual2, fcproj); // second addition
    }
    // end::block[]

    // tag::forward[]
    /** Logits (B, T, Vp) of the tokens (B, T). */
    public double[] logits(int[] tokens, int B, int T) {
        double[] wte = tensors[0], wpe = tensors[1];
        var x = new double[B * T * C];
        for (int bt = 0; bt < B * T; bt++)
            for (int c = 0; c < C; c++) x[bt * C + c] = wte[tokens[bt] * C + c] + wpe[(bt % T) * C + c];
        for (int l = 0; l < L; l++) x = block(x, l, B, T);
        double[] lnf = layernorm(x, tensors[14], tensors[15], B * T, C);
        return linear(lnf, wte, null, B * T, C, Vp);
    }
    // end::forward[]

    // ---- steps 3 to 6, shortest form ----

    static double[] add(double[] a, double[] b) {
        var out = new double[a.length];
        for (int i = 0; i < a.length; i++) out[i] = a[i] + b[i];
        return out;
    }

    static double[] layernorm(double[] x, double[] w, double[] b, int N, int C) {
        var out = new double[N * C];
        for (int r = 0; r < N; r++) {
            double mean = 0, variance = 0;
            for (int i = 0; i < C; i++) mean += x[r * C + i] / C;
            for (int i = 0; i < C; i++) variance += (x[r * C + i] - mean) * (x[r * C + i] - mean) / C;
            double rstd = 1 / Math.sqrt(variance + 1e-5);
            for (int i = 0; i < C; i++) out[r * C + i] = (x[r * C + i] - mean) * rstd * w[i] + b[i];
        }
        return out;
    }

    static double[] linear(double[] x, double[] w, double[] bias, int N, int C, int OC) {
        var out = new double[N * OC];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double sum = bias == null ? 0 : bias[o];
                for (int i = 0; i < C; i++) sum += x[n * C + i] * w[o * C + i];
                out[n * OC + o] = sum;
            }
        return out;
    }

    static double[] attention(double[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        var out = new double[B * T * C];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    var weights = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        double s = 0;
                        for (int i = 0; i < hs; i++)
                            s += qkv[(b * T + t) * 3 * C + h * hs + i] * qkv[(b * T + t2) * 3 * C + C + h * hs + i];
                        weights[t2] = s / Math.sqrt(hs);
                        max = Math.max(max, weights[t2]);
                    }
                    for (int t2 = 0; t2 <= t; t2++) sum += weights[t2] = Math.exp(weights[t2] - max);
                    for (int t2 = 0; t2 <= t; t2++)
                        for (int i = 0; i < hs; i++)
                            out[(b * T + t) * C + h * hs + i] +=
                                    weights[t2] / sum * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + i];
                }
        return out;
    }

    static double[] gelu(double[] x) {
        var out = new double[x.length];
        for (int i = 0; i < x.length; i++)
            out[i] = 0.5 * x[i] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
        return out;
    }
}
