package dev.llmc4j.tutorials.step09;

import java.util.Arrays;

/**
 * Step 9: GPT-2's whole forward AND backward pass in double, to check GPT2's float gradients against, and to be
 * checked itself by finite differences.
 *
 * <p>The backward visits the forward's steps in reverse order. Each step receives the gradient of its output
 * and adds (+=) the gradients of its inputs: several steps read the same tensor (the residual stream feeds a
 * layernorm AND an addition; wte feeds the encoder AND the lm head), and their contributions must add up.
 *
 * <p>Parameters: llm.c's 16 tensors in one array, per-layer tensors stacked layer-major (wte, wpe, ln1w, ln1b, qkvw,
 * qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb). The gradients have the same layout.
 */
public final class DoubleGPT2 {
    public final int maxT, V, Vp, L, NH, C;
    public final double[] params;
    public final double[] grads;
    private final int[] offsets = new int[17]; // where each tensor starts; offsets[16] = total

    public DoubleGPT2(int maxT, int V, int Vp, int L, int NH, int C, double[] params) {
        this.maxT = maxT;
        this.V = V;
        this.Vp = Vp;
        this.L = L;
        this.NH = NH;
        this.C = C;
        int[] sizes = {
            Vp * C,
            maxT * C,
            L * C,
            L * C,
            L * 3 * C * C,
            L * 3 * C,
            L * C * C,
            L * C,
            L * C,
            L * C,
            L * 4 * C * C,
            L * 4 * C,
            L * 4 * C * C,
            L * C,
            C,
            C
        };
        for (int i = 0; i < 16; i++) offsets[i + 1] = offsets[i] + sizes[i];
        if (params.length != offsets[16])
            throw new IllegalArgumentException("expected " + offsets[16] + " parameters, found " + params.length);
        this.params = params;
        this.grads = new double[params.length];
    }

    /** Where tensor {@code index} (0..15) starts in params and grads. */
    public int offset(int index) {
        return offsets[index];
    }

    // A view of L-stacked tensor `index` at layer l: copied out of params (reads) or grads (writes, added back).
    private double[] read(int index, int l, int size) {
        return Arrays.copyOfRange(params, offsets[index] + l * size, offsets[index] + (l + 1) * size);
    }

    private void accumulate(int index, int l, double[] gradient) {
        int start = offsets[index] + l * gradient.length;
        for (int i = 0; i < gradient.length; i++) grads[start + i] += gradient[i];
    }

    /** What one layer's forward keeps for its backward. */
    private record LayerCache(
            double[] input,
            Norm ln1,
            double[] qkv,
            double[] att,
            double[] atty,
            double[] residual2,
            Norm ln2,
            double[] fch,
            double[] fchGelu) {}

    private record Norm(double[] out, double[] mean, double[] rstd) {}

    /** The mean cross-entropy loss of predicting targets (B,T) from inputs (B,T); no gradients. */
    public double loss(int[] inputs, int[] targets, int B, int T) {
        return run(inputs, targets, B, T, false);
    }

    /** The loss, and {@link #grads} set to its gradient (overwritten, not accumulated). */
    public double lossAndGradients(int[] inputs, int[] targets, int B, int T) {
        Arrays.fill(grads, 0);
        return run(inputs, targets, B, T, true);
    }

    // tag::run[]
    private double run(int[] inputs, int[] targets, int B, int T, boolean backward) {
        int N = B * T;
        // ---- forward: encoder, L blocks, final layernorm, lm head, softmax, cross-entropy ----
        double[] wte = read(0, 0, Vp * C), wpe = read(1, 0, maxT * C);
        var x = new double[N * C];
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) x[n * C + c] = wte[inputs[n] * C + c] + wpe[(n % T) * C + c];
        var caches = new LayerCache[L];
        for (int l = 0; l < L; l++) {
            Norm ln1 = layernorm(x, read(2, l, C), read(3, l, C), N);
            double[] qkv = linear(ln1.out, read(4, l, 3 * C * C), read(5, l, 3 * C), N, C, 3 * C);
            double[] att = new double[B * NH * T * T];
            double[] atty = attention(qkv, att, B, T);
            double[] residual2 = add(x, linear(atty, read(6, l, C * C), read(7, l, C), N, C, C));
            Norm ln2 = layernorm(residual2, read(8, l, C), read(9, l, C), N);
            double[] fch = linear(ln2.out, read(10, l, 4 * C * C), read(11, l, 4 * C), N, C, 4 * C);
            double[] fchGelu = gelu(fch);
            double[] residual3 = add(residual2, linear(fchGelu, read(12, l, 4 * C * C), read(13, l, C), N, 4 * C, C));
            caches[l] = new LayerCache(x, ln1, qkv, att, atty, residual2, ln2, fch, fchGelu);
            x = residual3;
        }
        Norm lnf = layernorm(x, read(14, 0, C), read(15, 0, C), N);
        double[] logits = linear(lnf.out, wte, null, N, C, Vp);
        double[] probs = new double[N * Vp];
        double loss = 0;
        for (int n = 0; n < N; n++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int i = 0; i < V; i++) max = Math.max(max, logits[n * Vp + i]);
            for (int i = 0; i < V; i++) sum += probs[n * Vp + i] = Math.exp(logits[n * Vp + i] - max);
            for (int i = 0; i < V; i++) probs[n * Vp + i] /= sum;
            loss -= Math.log(probs[n * Vp + targets[n]]) / N;
        }
        if (!backward) return loss;

        // ---- backward: the same steps in reverse ----
        double[] dlogits = new double[N * Vp]; // softmax + cross-entropy (step 8)
        for (int n = 0; n < N; n++)
            for (int i = 0; i < V; i++) dlogits[n * Vp + i] = (probs[n * Vp + i] - (i == targets[n] ? 1 : 0)) / N;
        double[] dwte = new double[Vp * C], dlnf = new double[N * C];
        linearBackward(dlnf, dwte, null, dlogits, lnf.out, wte, N, C, Vp); // lm head: wte's first use
        double[] dx = new double[N * C], dlnfw = new double[C], dlnfb = new double[C];
        layernormBackward(dx, dlnfw, dlnfb, dlnf, x, read(14, 0, C), lnf);
        accumulate(14, 0, dlnfw);
        accumulate(15, 0, dlnfb);

        for (int l = L - 1; l >= 0; l--) {
            LayerCache cache = caches[l];
            // residual3 = residual2 + fcproj: dx flows to both unchanged
            double[] dresidual2 = dx.clone(), dfcproj = dx;
            double[] dfchGelu = new double[N * 4 * C], dfcprojw = new double[4 * C * C], dfcprojb = new double[C];
            linearBackward(dfchGelu, dfcprojw, dfcprojb, dfcproj, cache.fchGelu, read(12, l, 4 * C * C), N, 4 * C, C);
            double[] dfch = geluBackward(cache.fch, dfchGelu);
            double[] dln2 = new double[N * C], dfcw = new double[4 * C * C], dfcb = new double[4 * C];
            linearBackward(dln2, dfcw, dfcb, dfch, cache.ln2.out, read(10, l, 4 * C * C), N, C, 4 * C);
            double[] dln2w = new double[C], dln2b = new double[C];
            layernormBackward(dresidual2, dln2w, dln2b, dln2, cache.residual2, read(8, l, C), cache.ln2);
            // residual2 = input + attproj
            double[] dinput = dresidual2.clone(), dattproj = dresidual2;
            double[] datty = new double[N * C], dattprojw = new double[C * C], dattprojb = new double[C];
            linearBackward(datty, dattprojw, dattprojb, dattproj, cache.atty, read(6, l, C * C), N, C, C);
            double[] dqkv = attentionBackward(datty, cache.qkv, cache.att, B, T);
            double[] dln1 = new double[N * C], dqkvw = new double[3 * C * C], dqkvb = new double[3 * C];
            linearBackward(dln1, dqkvw, dqkvb, dqkv, cache.ln1.out, read(4, l, 3 * C * C), N, C, 3 * C);
            double[] dln1w = new double[C], dln1b = new double[C];
            layernormBackward(dinput, dln1w, dln1b, dln1, cache.input, read(2, l, C), cache.ln1);
            double[][] layerGrads = {
                dln1w, dln1b, dqkvw, dqkvb, dattprojw, dattprojb, dln2w, dln2b, dfcw, dfcb, dfcprojw, dfcprojb
            };
            for (int k = 0; k < 12; k++) accumulate(2 + k, l, layerGrads[k]);
            dx = dinput;
        }
        double[] dwpe = new double[maxT * C]; // encoder: wte's second use
        for (int n = 0; n < N; n++)
            for (int c = 0; c < C; c++) {
                dwte[inputs[n] * C + c] += dx[n * C + c];
                dwpe[(n % T) * C + c] += dx[n * C + c];
            }
        accumulate(0, 0, dwte);
        accumulate(1, 0, dwpe);
        return loss;
    }
    // end::run[]

    // ---- the layers of steps 3 to 6, forward and backward ----

    static double[] add(double[] a, double[] b) {
        var out = new double[a.length];
        for (int i = 0; i < a.length; i++) out[i] = a[i] + b[i];
        return out;
    }

    private Norm layernorm(double[] x, double[] w, double[] b, int N) {
        double[] out = new double[N * C], mean = new double[N], rstd = new double[N];
        for (int r = 0; r < N; r++) {
            double m = 0, variance = 0;
            for (int i = 0; i < C; i++) m += x[r * C + i] / C;
            for (int i = 0; i < C; i++) variance += (x[r * C + i] - m) * (x[r * C + i] - m) / C;
            double s = 1 / Math.sqrt(variance + 1e-5);
            for (int i = 0; i < C; i++) out[r * C + i] = (x[r * C + i] - m) * s * w[i] + b[i];
            mean[r] = m;
            rstd[r] = s;
        }
        return new Norm(out, mean, rstd);
    }

    private void layernormBackward(
            double[] dx, double[] dw, double[] db, double[] dout, double[] x, double[] w, Norm norm) {
        for (int r = 0; r < dout.length / C; r++) {
            double gMean = 0, gnMean = 0;
            for (int i = 0; i < C; i++) {
                double n = (x[r * C + i] - norm.mean[r]) * norm.rstd[r];
                gMean += w[i] * dout[r * C + i] / C;
                gnMean += w[i] * dout[r * C + i] * n / C;
            }
            for (int i = 0; i < C; i++) {
                double n = (x[r * C + i] - norm.mean[r]) * norm.rstd[r];
                db[i] += dout[r * C + i];
                dw[i] += n * dout[r * C + i];
                dx[r * C + i] += (w[i] * dout[r * C + i] - gMean - n * gnMean) * norm.rstd[r];
            }
        }
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

    static void linearBackward(
            double[] dx, double[] dw, double[] db, double[] dout, double[] x, double[] w, int N, int C, int OC) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double d = dout[n * OC + o];
                for (int i = 0; i < C; i++) {
                    dx[n * C + i] += d * w[o * C + i];
                    dw[o * C + i] += d * x[n * C + i];
                }
                if (db != null) db[o] += d;
            }
    }

    private double[] attention(double[] qkv, double[] att, int B, int T) {
        int hs = C / NH;
        var out = new double[B * T * C];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    int row = ((b * NH + h) * T + t) * T;
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        double s = 0;
                        for (int i = 0; i < hs; i++)
                            s += qkv[(b * T + t) * 3 * C + h * hs + i] * qkv[(b * T + t2) * 3 * C + C + h * hs + i];
                        att[row + t2] = s / Math.sqrt(hs);
                        max = Math.max(max, att[row + t2]);
                    }
                    for (int t2 = 0; t2 <= t; t2++) sum += att[row + t2] = Math.exp(att[row + t2] - max);
                    for (int t2 = 0; t2 <= t; t2++) {
                        att[row + t2] /= sum;
                        for (int i = 0; i < hs; i++)
                            out[(b * T + t) * C + h * hs + i] +=
                                    att[row + t2] * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + i];
                    }
                }
        return out;
    }

    private double[] attentionBackward(double[] dout, double[] qkv, double[] att, int B, int T) {
        int hs = C / NH;
        double scale = 1 / Math.sqrt(hs);
        var dqkv = new double[qkv.length];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    int row = ((b * NH + h) * T + t) * T,
                            q = (b * T + t) * 3 * C + h * hs,
                            o = (b * T + t) * C + h * hs;
                    var datt = new double[t + 1];
                    double weighted = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        int v = (b * T + t2) * 3 * C + 2 * C + h * hs;
                        for (int i = 0; i < hs; i++) {
                            datt[t2] += dout[o + i] * qkv[v + i];
                            dqkv[v + i] += att[row + t2] * dout[o + i];
                        }
                        weighted += att[row + t2] * datt[t2];
                    }
                    for (int t2 = 0; t2 <= t; t2++) {
                        double dscore = att[row + t2] * (datt[t2] - weighted) * scale;
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        for (int i = 0; i < hs; i++) {
                            dqkv[q + i] += dscore * qkv[k + i];
                            dqkv[k + i] += dscore * qkv[q + i];
                        }
                    }
                }
        return dqkv;
    }

    static final double GELU_SCALE = Math.sqrt(2 / Math.PI);

    static double[] gelu(double[] x) {
        var out = new double[x.length];
        for (int i = 0; i < x.length; i++)
            out[i] = 0.5 * x[i] * (1 + Math.tanh(GELU_SCALE * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
        return out;
    }

    static double[] geluBackward(double[] x, double[] dout) {
        var dx = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double tanh = Math.tanh(GELU_SCALE * (x[i] + 0.044715 * x[i] * x[i] * x[i]));
            double local =
                    0.5 * (1 + tanh) + 0.5 * x[i] * (1 - tanh * tanh) * GELU_SCALE * (1 + 3 * 0.044715 * x[i] * x[i]);
            dx[i] = local * dout[i];
        }
        return dx;
    }
}
