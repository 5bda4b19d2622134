package dev.llmc4j.tutorials.step05;

/**
 * Step 5: causal multi-head self-attention, forward and backward, in double.
 *
 * <pre>
 *   qkv (B, T, 3C): each position's query, key and value side by side; head h owns channels h*hs .. h*hs+hs-1
 *   of each (hs = C / NH).
 *   for each b, h and position t:
 *     score[t2] = q_t · k_t2 / sqrt(hs)              for t2 &lt;= t only: a position never sees the future
 *     att[t2]   = exp(score[t2]) / Σ exp(score)      softmax over t2 = 0..t
 *     out_t     = Σ_t2 att[t2] * v_t2                 (B, T, C): the heads side by side again
 * </pre>
 */
public final class CausalSelfAttention {
    private CausalSelfAttention() {}

    /** out (B, T, C) and the attention weights att (B, NH, T, T), zero above the diagonal. */
    public record Result(double[] out, double[] att) {}

    // tag::forward[]
    public static Result forward(double[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        double scale = 1.0 / Math.sqrt(hs);
        var out = new double[B * T * C];
        var att = new double[B * NH * T * T];
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                for (int t = 0; t < T; t++) {
                    int q = (b * T + t) * 3 * C + h * hs; // this position's query
                    int row = ((b * NH + h) * T + t) * T; // att[b, h, t, :]
                    double max = Double.NEGATIVE_INFINITY;
                    for (int t2 = 0; t2 <= t; t2++) {
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        double score = 0;
                        for (int i = 0; i < hs; i++) score += qkv[q + i] * qkv[k + i];
                        att[row + t2] = score * scale;
                        max = Math.max(max, att[row + t2]);
                    }
                    double sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        att[row + t2] = Math.exp(att[row + t2] - max); // minus the max: exp cannot overflow
                        sum += att[row + t2];
                    }
                    for (int t2 = 0; t2 <= t; t2++) att[row + t2] /= sum;
                    int o = (b * T + t) * C + h * hs;
                    for (int t2 = 0; t2 <= t; t2++) {
                        int v = (b * T + t2) * 3 * C + 2 * C + h * hs;
                        for (int i = 0; i < hs; i++) out[o + i] += att[row + t2] * qkv[v + i];
                    }
                }
            }
        }
        return new Result(out, att);
    }
    // end::forward[]

    // tag::backward[]
    /**
     * Back through the three steps in reverse. out = Σ att·v gives datt[t2] = dout · v_t2 and dv_t2 += att[t2] dout.
     * The softmax's Jacobian is att[t2] ([t2 == t3] - att[t3]), so dscore[t3] = att[t3] (datt[t3] - Σ att·datt).
     * score = q·k * scale gives dq += dscore * k * scale and dk += dscore * q * scale. Accumulates into dqkv.
     */
    public static void backward(double[] dqkv, double[] dout, double[] qkv, double[] att, int B, int T, int C, int NH) {
        int hs = C / NH;
        double scale = 1.0 / Math.sqrt(hs);
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                for (int t = 0; t < T; t++) {
                    int q = (b * T + t) * 3 * C + h * hs;
                    int row = ((b * NH + h) * T + t) * T;
                    int o = (b * T + t) * C + h * hs;
                    var datt = new double[t + 1];
                    for (int t2 = 0; t2 <= t; t2++) {
                        int v = (b * T + t2) * 3 * C + 2 * C + h * hs;
                        for (int i = 0; i < hs; i++) {
                            datt[t2] += dout[o + i] * qkv[v + i];
                            dqkv[v + i] += att[row + t2] * dout[o + i];
                        }
                    }
                    double weighted = 0; // Σ att · datt
                    for (int t2 = 0; t2 <= t; t2++) weighted += att[row + t2] * datt[t2];
                    for (int t2 = 0; t2 <= t; t2++) {
                        double dscore = att[row + t2] * (datt[t2] - weighted) * scale;
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        for (int i = 0; i < hs; i++) {
                            dqkv[q + i] += dscore * qkv[k + i];
                            dqkv[k + i] += dscore * qkv[q + i];
                        }
                    }
                }
            }
        }
    }
    // end::backward[]
}
