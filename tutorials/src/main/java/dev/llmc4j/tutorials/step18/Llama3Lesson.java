package dev.llmc4j.tutorials.step18;

/**
 * Step 18: what Llama 3 changes in GPT-2's block, in double: RMSNorm, RoPE on interleaved pairs, grouped-query
 * attention and the SwiGLU MLP. Flat row-major arrays; rows = B*T positions.
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
        for (int r = 0; r < rows; r++) {
            int position = r % T;
            for (int h = 0; h < heads; h++) {
                int head = r * rowWidth + h * hd;
                for (int i = 0; i < hd / 2; i++) {
                    double c = Math.cos(position * freqs[i]), s = Math.sin(position * freqs[i]);
                    double x0 = x[head + 2 * i], x1 = x[head + 2 * i + 1];
                    x[head + 2 * i] = x0 * c - x1 * s;                 // (x0 + j x1) * e^(j p f_i)
                    x[head + 2 * i + 1] = x0 * s + x1 * c;
                }
            }
        }
    }
    // end::rope[]

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
                    int kvHead = h / group;                            // the only change from GPT-2's attention
                    var scores = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t2 = 0; t2 <= t; t2++) {                  // causal: positions up to t only
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
                        for (int i = 0; i < hd; i++) out[(b * T + t) * NH * hd + h * hd + i] += scores[t2] / sum * qkv[v + i];
                    }
                }
            }
        }
        return out;
    }
    // end::gqa[]

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
}
