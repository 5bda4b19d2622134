package dev.llmc4j.tutorials.step14;

import java.util.Arrays;

/**
 * Step 14: causal flash attention on the CPU, forward and backward, in double, in llm.c's layout.
 *
 * <pre>
 *   qkv  (B, T, 3C)   q at channel 0, k at C, v at 2C; head h owns channels h*hs .. h*hs+hs-1 of each (hs = C/NH)
 *   out  (B, T, C)    softmax(q k^T / sqrt(hs), causal) v, the heads side by side
 *   lse  (B, NH, T)   log Σ_t2 exp(score[t2]) per row: all the backward keeps instead of the (B, NH, T, T) matrix
 * </pre>
 * The T query rows of one (b, h) are cut into tiles of BR rows, its keys into blocks of BC. A query tile visits
 * the key blocks from the left up to its last query (later blocks are all in the future: skipped without a
 * look), and only one BR x BC tile of scores exists at any time. Same results as step 5's attention, up to
 * rounding.
 */
public final class FlashAttentionLesson {
    private FlashAttentionLesson() {}

    /** out (B, T, C) and the row log-sum-exp lse (B, NH, T). */
    public record Result(double[] out, double[] lse) {}

    // tag::forward[]
    public static Result forward(double[] qkv, int B, int T, int C, int NH, int BR, int BC) {
        int hs = C / NH;
        double scale = 1.0 / Math.sqrt(hs);
        var out = new double[B * T * C];
        var lse = new double[B * NH * T];
        var s = new double[BR * BC]; // one tile of scores, reused for every tile
        var m = new double[BR]; // per query row of the tile: running max,
        var l = new double[BR]; //   running sum of exp(s - m),
        var o = new double[BR * hs]; //   running unnormalised output (BR, hs)
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                for (int q0 = 0; q0 < T; q0 += BR) {
                    int q1 = Math.min(q0 + BR, T); // this tile: queries q0 .. q1-1
                    Arrays.fill(m, Double.NEGATIVE_INFINITY);
                    Arrays.fill(l, 0);
                    Arrays.fill(o, 0);
                    for (int k0 = 0; k0 < q1; k0 += BC) { // causal: blocks starting after q1-1 are skipped
                        int k1 = Math.min(k0 + BC, T);
                        // S = Q K^T * scale on the tile; above the diagonal (only in the last blocks) -inf
                        for (int t = q0; t < q1; t++)
                            for (int t2 = k0; t2 < k1; t2++)
                                s[(t - q0) * BC + t2 - k0] = t2 <= t
                                        ? dot(qkv, query(b, t, h, T, C, hs), qkv, key(b, t2, h, T, C, hs), hs) * scale
                                        : Double.NEGATIVE_INFINITY;
                        // the online softmax, row by row: rescale what is there, add this block
                        for (int t = q0; t < q1; t++) {
                            int r = t - q0;
                            double blockMax = Double.NEGATIVE_INFINITY;
                            for (int t2 = k0; t2 < k1; t2++) blockMax = Math.max(blockMax, s[r * BC + t2 - k0]);
                            double mNew = Math.max(m[r], blockMax); // finite: block 0 always holds key 0 <= t
                            double alpha = Math.exp(m[r] - mNew);
                            l[r] *= alpha;
                            for (int i = 0; i < hs; i++) o[r * hs + i] *= alpha;
                            for (int t2 = k0; t2 < k1; t2++) {
                                double p = Math.exp(s[r * BC + t2 - k0] - mNew); // 0 where masked
                                l[r] += p;
                                int v = value(b, t2, h, T, C, hs);
                                for (int i = 0; i < hs; i++) o[r * hs + i] += p * qkv[v + i];
                            }
                            m[r] = mNew;
                        }
                    }
                    for (int t = q0; t < q1; t++) {
                        int r = t - q0;
                        for (int i = 0; i < hs; i++) out[(b * T + t) * C + h * hs + i] = o[r * hs + i] / l[r];
                        lse[(b * NH + h) * T + t] = m[r] + Math.log(l[r]);
                    }
                }
            }
        }
        return new Result(out, lse);
    }
    // end::forward[]

    // tag::backward[]
    /**
     * The backward from q, k, v, out, dout and lse alone. Per tile: S again, P = exp(S - lse) (exactly the
     * softmax of the forward), dP = dO V^T, dS = P * (dP - D) with D_t = dO_t · O_t; then dV += P^T dO,
     * dK += dS^T Q * scale, dQ += dS K * scale. Accumulates into dqkv (B, T, 3C).
     */
    public static void backward(
            double[] dqkv,
            double[] dout,
            double[] qkv,
            double[] out,
            double[] lse,
            int B,
            int T,
            int C,
            int NH,
            int BR,
            int BC) {
        int hs = C / NH;
        double scale = 1.0 / Math.sqrt(hs);
        var p = new double[BR * BC]; // P tile
        var ds = new double[BR * BC]; // dS tile
        var d = new double[BR]; // D of the tile's rows
        for (int b = 0; b < B; b++) {
            for (int h = 0; h < NH; h++) {
                for (int q0 = 0; q0 < T; q0 += BR) {
                    int q1 = Math.min(q0 + BR, T);
                    for (int t = q0; t < q1; t++) { // D_t = Σ_i dO[t,i] O[t,i]: one dot per row
                        int o = (b * T + t) * C + h * hs;
                        d[t - q0] = dot(dout, o, out, o, hs);
                    }
                    for (int k0 = 0; k0 < q1; k0 += BC) {
                        int k1 = Math.min(k0 + BC, T);
                        // P and dS for the tile, recomputed: nothing of size T x T was kept
                        for (int t = q0; t < q1; t++) {
                            int r = t - q0, o = (b * T + t) * C + h * hs;
                            for (int t2 = k0; t2 < k1; t2++) {
                                int c = r * BC + t2 - k0;
                                if (t2 > t) {
                                    p[c] = 0;
                                    ds[c] = 0;
                                    continue;
                                } // the future: P = 0, no gradient
                                double score =
                                        dot(qkv, query(b, t, h, T, C, hs), qkv, key(b, t2, h, T, C, hs), hs) * scale;
                                p[c] = Math.exp(score - lse[(b * NH + h) * T + t]);
                                double dp = dot(dout, o, qkv, value(b, t2, h, T, C, hs), hs); // dP = dO V^T
                                ds[c] = p[c] * (dp - d[r]);
                            }
                        }
                        // the three products of the tile: dV += P^T dO, dK += dS^T Q * scale, dQ += dS K * scale
                        for (int t = q0; t < q1; t++) {
                            int r = t - q0, o = (b * T + t) * C + h * hs, q = query(b, t, h, T, C, hs);
                            for (int t2 = k0; t2 < k1; t2++) {
                                int c = r * BC + t2 - k0, k = key(b, t2, h, T, C, hs), v = value(b, t2, h, T, C, hs);
                                for (int i = 0; i < hs; i++) {
                                    dqkv[v + i] += p[c] * dout[o + i];
                                    dqkv[k + i] += ds[c] * qkv[q + i] * scale;
                                    dqkv[q + i] += ds[c] * qkv[k + i] * scale;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    // end::backward[]

    /** Offsets into qkv (B, T, 3C) of position t's query, key and value for head h. */
    static int query(int b, int t, int h, int T, int C, int hs) {
        return (b * T + t) * 3 * C + h * hs;
    }

    static int key(int b, int t, int h, int T, int C, int hs) {
        return (b * T + t) * 3 * C + C + h * hs;
    }

    static int value(int b, int t, int h, int T, int C, int hs) {
        return (b * T + t) * 3 * C + 2 * C + h * hs;
    }

    static double dot(double[] a, int ia, double[] b, int ib, int n) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += a[ia + i] * b[ib + i];
        return sum;
    }
}
