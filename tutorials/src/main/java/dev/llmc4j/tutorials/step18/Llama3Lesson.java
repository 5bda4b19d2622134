package dev.llmc4j.tutorials.step18;

/**
 * Step 18: what Llama 3 changes in GPT-2's block, in double: RMSNorm, RoPE on interleaved pairs, grouped-query
 * attention and the SwiGLU MLP, each forward next to its backward, and a whole block built from them.
 * Flat row-major arrays; rows = B*T positions. Every backward ADDS into its gradients, as in the other steps.
 */
public final class Llama3Lesson {
    private Llama3Lesson() {}

    // tag::rmsnorm[]
    /** out (rows, C) = inp / sqrt(mean(inp²) + eps) * weight: LayerNorm without the mean and without a bias. */
    public static double[] rmsnorm(double[] inp, double[] weight, int rows, int C, double eps) {
        var out = new double[rows * C];
        for (int r = 0; r < rows; r++) {
            double sumOfSquares = 0;
            for (int i = 0; i < C; i++) sumOfSquares += inp[r * C + i] * inp[r * C + i];
            double rstd = 1 / Math.sqrt(sumOfSquares / C + eps);
            for (int i = 0; i < C; i++) out[r * C + i] = inp[r * C + i] * rstd * weight[i];
        }
        return out;
    }
    // end::rmsnorm[]

    // tag::rmsnorm-backward[]
    /**
     * With rstd = 1/sqrt(mean(x²) + eps), n = x·rstd and g = weight·dout: dweight += n·dout and
     * dinp += rstd·(g − n·mean(g·n)). The mean term removes the part of g along x: scaling x does not change n.
     */
    public static void rmsnormBackward(
            double[] dinp,
            double[] dweight,
            double[] dout,
            double[] inp,
            double[] weight,
            int rows,
            int C,
            double eps) {
        for (int r = 0; r < rows; r++) {
            double sumOfSquares = 0;
            for (int i = 0; i < C; i++) sumOfSquares += inp[r * C + i] * inp[r * C + i];
            double rstd = 1 / Math.sqrt(sumOfSquares / C + eps); // recomputed: the forward keeps only its output
            double gnMean = 0;
            for (int i = 0; i < C; i++) gnMean += weight[i] * dout[r * C + i] * inp[r * C + i] * rstd;
            gnMean /= C;
            for (int i = 0; i < C; i++) {
                double n = inp[r * C + i] * rstd;
                dweight[i] += n * dout[r * C + i];
                dinp[r * C + i] += rstd * (weight[i] * dout[r * C + i] - n * gnMean);
            }
        }
    }
    // end::rmsnorm-backward[]

    // tag::rope[]
    /** f_i = theta^(-2i/hd) for the hd/2 pairs of a head: fast turns for the first pairs, slow for the last. */
    public static double[] ropeFrequencies(int hd, double theta) {
        var freqs = new double[hd / 2];
        for (int i = 0; i < hd / 2; i++) freqs[i] = Math.pow(theta, -2.0 * i / hd);
        return freqs;
    }

    /**
     * Rotates, in place, the first {@code heads} heads of each row of x (rows, rowWidth): the pair (2i, 2i+1) of a
     * head at position p turns by the angle p·f_i. Row r is at position r % T.
     */
    public static void rope(double[] x, int rows, int rowWidth, int T, int heads, int hd, double[] freqs) {
        rotate(x, rows, rowWidth, T, heads, hd, freqs, 1);
    }
    // end::rope[]

    // tag::rope-backward[]
    /**
     * The backward of {@link #rope}: y = R·x with R a rotation, so dx = Rᵀ·dy, and a rotation's transpose is the
     * rotation by the opposite angle. In place on the gradient dx (rows, rowWidth); dy arrives where y was.
     */
    public static void ropeBackward(double[] dx, int rows, int rowWidth, int T, int heads, int hd, double[] freqs) {
        rotate(dx, rows, rowWidth, T, heads, hd, freqs, -1);
    }
    // end::rope-backward[]

    private static void rotate(
            double[] x, int rows, int rowWidth, int T, int heads, int hd, double[] freqs, int direction) {
        for (int r = 0; r < rows; r++) {
            int position = r % T;
            for (int h = 0; h < heads; h++) {
                int head = r * rowWidth + h * hd;
                for (int i = 0; i < hd / 2; i++) {
                    double c = Math.cos(position * freqs[i]), s = direction * Math.sin(position * freqs[i]);
                    double x0 = x[head + 2 * i], x1 = x[head + 2 * i + 1];
                    x[head + 2 * i] = x0 * c - x1 * s; // (x0 + j x1) * e^(±j p f_i)
                    x[head + 2 * i + 1] = x0 * s + x1 * c;
                }
            }
        }
    }

    // tag::rotate-half[]
    /**
     * Hugging Face's layout of the same rotation ("rotate_half"): a head's pair i is (i, i + hd/2), its first half
     * against its second, not (2i, 2i+1). One head x (hd) at position p, in place.
     */
    public static void ropeRotateHalf(double[] x, int offset, int hd, int position, double[] freqs) {
        int half = hd / 2;
        for (int i = 0; i < half; i++) {
            double c = Math.cos(position * freqs[i]), s = Math.sin(position * freqs[i]);
            double x0 = x[offset + i], x1 = x[offset + half + i];
            x[offset + i] = x0 * c - x1 * s;
            x[offset + half + i] = x0 * s + x1 * c;
        }
    }

    /**
     * The permutation that converts Meta's interleaved head (x0, x1, x2, x3, ...) into Hugging Face's halves
     * (x0, x2, ..., x1, x3, ...): applied to the ROWS of wq and wk when a checkpoint changes format. Forget it and
     * the model loads without an error and produces garbage, since every pair is rotated with the wrong partner.
     */
    public static double[] interleavedToHalves(double[] head) {
        int half = head.length / 2;
        var out = new double[head.length];
        for (int i = 0; i < half; i++) {
            out[i] = head[2 * i];
            out[half + i] = head[2 * i + 1];
        }
        return out;
    }
    // end::rotate-half[]

    // tag::gqa[]
    /**
     * Causal attention with NKV key/value heads shared by NH query heads: query head h reads kv head h / (NH/NKV).
     * qkv rows (B*T, (NH + 2 NKV) hd) are [q heads | k heads | v heads]; returns out (B*T, NH hd).
     */
    public static double[] groupedQueryAttention(double[] qkv, int B, int T, int NH, int NKV, int hd) {
        int rowWidth = (NH + 2 * NKV) * hd, group = NH / NKV;
        var out = new double[B * T * NH * hd];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < NH; h++) {
                    int q = (b * T + t) * rowWidth + h * hd;
                    int kvHead = h / group; // the only change from GPT-2's attention
                    var scores = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t2 = 0; t2 <= t; t2++) { // causal: positions up to t only
                        int k = (b * T + t2) * rowWidth + NH * hd + kvHead * hd;
                        double dot = 0;
                        for (int i = 0; i < hd; i++) dot += qkv[q + i] * qkv[k + i];
                        scores[t2] = dot / Math.sqrt(hd);
                        max = Math.max(max, scores[t2]);
                    }
                    double sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) sum += scores[t2] = Math.exp(scores[t2] - max);
                    for (int t2 = 0; t2 <= t; t2++) {
                        int v = (b * T + t2) * rowWidth + (NH + NKV) * hd + kvHead * hd;
                        for (int i = 0; i < hd; i++)
                            out[(b * T + t) * NH * hd + h * hd + i] += scores[t2] / sum * qkv[v + i];
                    }
                }
            }
        }
        return out;
    }
    // end::gqa[]

    // tag::gqa-backward[]
    /**
     * The backward of {@link #groupedQueryAttention}, adding into dqkv (same layout as qkv). Per query head it is
     * step 5's attention backward; the one change: a key/value head is read by NH/NKV query heads, so its dK and dV
     * are the SUM of what each of them sends back (the forward copied one k and v to several readers).
     */
    public static void groupedQueryAttentionBackward(
            double[] dqkv, double[] dout, double[] qkv, int B, int T, int NH, int NKV, int hd) {
        int rowWidth = (NH + 2 * NKV) * hd, group = NH / NKV;
        double scale = 1 / Math.sqrt(hd);
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                for (int h = 0; h < NH; h++) {
                    int q = (b * T + t) * rowWidth + h * hd, o = (b * T + t) * NH * hd + h * hd;
                    int kvHead = h / group;
                    var att = new double[t + 1]; // recompute the forward's weights
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        int k = (b * T + t2) * rowWidth + NH * hd + kvHead * hd;
                        for (int i = 0; i < hd; i++) att[t2] += qkv[q + i] * qkv[k + i] * scale;
                        max = Math.max(max, att[t2]);
                    }
                    for (int t2 = 0; t2 <= t; t2++) sum += att[t2] = Math.exp(att[t2] - max);
                    for (int t2 = 0; t2 <= t; t2++) att[t2] /= sum;
                    var datt = new double[t + 1];
                    double attDotDatt = 0;
                    for (int t2 = 0; t2 <= t; t2++) { // out = Σ att·v
                        int v = (b * T + t2) * rowWidth + (NH + NKV) * hd + kvHead * hd;
                        for (int i = 0; i < hd; i++) {
                            datt[t2] += dout[o + i] * qkv[v + i];
                            dqkv[v + i] += att[t2] * dout[o + i]; // += : the group's query heads all add here
                        }
                        attDotDatt += att[t2] * datt[t2];
                    }
                    for (int t2 = 0; t2 <= t; t2++) { // softmax, then score = q·k·scale
                        double dscore = att[t2] * (datt[t2] - attDotDatt) * scale;
                        int k = (b * T + t2) * rowWidth + NH * hd + kvHead * hd;
                        for (int i = 0; i < hd; i++) {
                            dqkv[q + i] += dscore * qkv[k + i];
                            dqkv[k + i] += dscore * qkv[q + i]; // += : summed over the group, as dV
                        }
                    }
                }
            }
        }
    }
    // end::gqa-backward[]

    // tag::swiglu[]
    /** fch rows (rows, 2H) are [up | gate]; out (rows, H) = silu(gate) * up with silu(g) = g * sigmoid(g). */
    public static double[] swiglu(double[] fch, int rows, int H) {
        var out = new double[rows * H];
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < H; i++) {
                double up = fch[r * 2 * H + i], gate = fch[r * 2 * H + H + i];
                out[r * H + i] = gate / (1 + Math.exp(-gate)) * up;
            }
        }
        return out;
    }
    // end::swiglu[]

    // tag::swiglu-backward[]
    /**
     * out = silu(g)·u: dup += dout·silu(g); dgate += dout·u·silu'(g), with
     * silu'(g) = sigmoid(g) + g·sigmoid(g)(1 − sigmoid(g)) = sigmoid(g)(1 + g(1 − sigmoid(g))).
     */
    public static void swigluBackward(double[] dfch, double[] fch, double[] dout, int rows, int H) {
        for (int r = 0; r < rows; r++) {
            for (int i = 0; i < H; i++) {
                double up = fch[r * 2 * H + i], gate = fch[r * 2 * H + H + i], d = dout[r * H + i];
                double sigmoid = 1 / (1 + Math.exp(-gate));
                dfch[r * 2 * H + i] += d * gate * sigmoid;
                dfch[r * 2 * H + H + i] += d * up * sigmoid * (1 + gate * (1 - sigmoid));
            }
        }
    }
    // end::swiglu-backward[]

    // tag::block[]
    /** One layer's weights, no biases: ln1w (C), qkvw ((NH+2NKV)hd, C), attprojw (C, C), ln2w (C), fcw (2H, C)
     * rows [up | gate], fcprojw (C, H). */
    public record LayerWeights(
            double[] ln1w, double[] qkvw, double[] attprojw, double[] ln2w, double[] fcw, double[] fcprojw) {}

    /** The sizes a block needs: NH query heads and NKV key/value heads of hd channels, SwiGLU width H. */
    public record Shape(int B, int T, int C, int NH, int NKV, int hd, int H, double eps, double[] freqs) {}

    /** out (rows, outWidth) = inp (rows, inWidth) · wᵀ with w (outWidth, inWidth): no bias in Llama. */
    public static double[] linear(double[] inp, double[] w, int rows, int inWidth, int outWidth) {
        var out = new double[rows * outWidth];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < outWidth; o++) {
                double sum = 0;
                for (int i = 0; i < inWidth; i++) sum += inp[r * inWidth + i] * w[o * inWidth + i];
                out[r * outWidth + o] = sum;
            }
        return out;
    }

    /** One Llama 3 block on the residual stream x (B*T, C); returns the new stream. */
    public static double[] block(double[] x, LayerWeights w, Shape s) {
        int rows = s.B() * s.T(), qkvWidth = (s.NH() + 2 * s.NKV()) * s.hd();
        double[] qkv = linear(rmsnorm(x, w.ln1w(), rows, s.C(), s.eps()), w.qkvw(), rows, s.C(), qkvWidth);
        rope(qkv, rows, qkvWidth, s.T(), s.NH() + s.NKV(), s.hd(), s.freqs()); // queries and keys; not values
        double[] atty = groupedQueryAttention(qkv, s.B(), s.T(), s.NH(), s.NKV(), s.hd());
        double[] attproj = linear(atty, w.attprojw(), rows, s.C(), s.C());
        var x2 = new double[rows * s.C()];
        for (int i = 0; i < x2.length; i++) x2[i] = x[i] + attproj[i]; // residual
        double[] fch = linear(rmsnorm(x2, w.ln2w(), rows, s.C(), s.eps()), w.fcw(), rows, s.C(), 2 * s.H());
        double[] fcproj = linear(swiglu(fch, rows, s.H()), w.fcprojw(), rows, s.H(), s.C());
        var x3 = new double[rows * s.C()];
        for (int i = 0; i < x3.length; i++) x3[i] = x2[i] + fcproj[i]; // residual
        return x3;
    }
    // end::block[]
}
