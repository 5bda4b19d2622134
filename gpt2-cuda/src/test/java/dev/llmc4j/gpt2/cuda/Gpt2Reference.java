package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.model.GPT2Config;
import java.util.Random;

/**
 * A small, plain fp32 GPT-2 on the CPU (llm.c's train_gpt2.c, spec section 3.1), written only as the reference
 * the GPU tests compare against. Dot products accumulate in double, so it is a slightly better reference than
 * fp32 code. Backward passes accumulate (+=) like llm.c.
 */
final class Gpt2Reference {
    final GPT2Config config;
    final ParameterLayout layout;
    final float[] params;
    final float[] grads;
    private float[] adamM, adamV;

    // activations of the last forward
    private int B, T;
    private int[] inputs, targets;
    private float[] encoded, lnf, lnfMean, lnfRstd, logits, probs;
    private float[][] ln1, ln1Mean, ln1Rstd, qkv, att, atty, residual2, ln2, ln2Mean, ln2Rstd, fch, fchGelu, residual3;

    Gpt2Reference(GPT2Config config, float[] params) {
        this.config = config;
        this.layout = ParameterLayout.of(config);
        this.params = params.clone();
        this.grads = new float[params.length];
    }

    /** Random parameters in llm.c order: N(0, 0.02) weights, LayerNorm weights near 1, zero padding rows of wte. */
    static float[] randomParameters(GPT2Config config, long seed) {
        var layout = ParameterLayout.of(config);
        float[] p = new float[(int) layout.numParameters()];
        var rng = new Random(seed);
        for (int t = 0; t < ParameterLayout.NUM_TENSORS; t++) {
            int off = (int) layout.offset(t), n = (int) layout.size(t);
            boolean lnWeight = t == ParameterLayout.LN1W || t == ParameterLayout.LN2W || t == ParameterLayout.LNFW;
            for (int i = 0; i < n; i++)
                p[off + i] = lnWeight ? 1.0f + 0.1f * (float) rng.nextGaussian() : 0.02f * (float) rng.nextGaussian();
        }
        int C = config.channels();
        for (int v = config.vocabSize(); v < config.paddedVocabSize(); v++)
            for (int c = 0; c < C; c++) p[v * C + c] = 0;
        return p;
    }

    private int w(int tensor, int l) {
        return (int) layout.layer(tensor, l);
    }

    private int w(int tensor) {
        return (int) layout.offset(tensor);
    }

    float forward(int[] inputs, int[] targets, int B, int T) {
        int C = config.channels(), L = config.numLayers(), V = config.vocabSize(), Vp = config.paddedVocabSize();
        int BT = B * T;
        this.B = B;
        this.T = T;
        this.inputs = inputs.clone();
        this.targets = targets == null ? null : targets.clone();
        encoded = new float[BT * C];
        for (int bt = 0; bt < BT; bt++)
            for (int c = 0; c < C; c++)
                encoded[bt * C + c] = params[w(ParameterLayout.WTE) + inputs[bt] * C + c]
                        + params[w(ParameterLayout.WPE) + (bt % T) * C + c];
        ln1 = new float[L][];
        ln1Mean = new float[L][];
        ln1Rstd = new float[L][];
        qkv = new float[L][];
        att = new float[L][];
        atty = new float[L][];
        residual2 = new float[L][];
        ln2 = new float[L][];
        ln2Mean = new float[L][];
        ln2Rstd = new float[L][];
        fch = new float[L][];
        fchGelu = new float[L][];
        residual3 = new float[L][];
        for (int l = 0; l < L; l++) {
            float[] residual = l == 0 ? encoded : residual3[l - 1];
            ln1[l] = new float[BT * C];
            ln1Mean[l] = new float[BT];
            ln1Rstd[l] = new float[BT];
            layernorm(
                    ln1[l],
                    ln1Mean[l],
                    ln1Rstd[l],
                    residual,
                    w(ParameterLayout.LN1W, l),
                    w(ParameterLayout.LN1B, l),
                    BT,
                    C);
            qkv[l] = matmul(ln1[l], w(ParameterLayout.QKVW, l), w(ParameterLayout.QKVB, l), BT, C, 3 * C);
            atty[l] = new float[BT * C];
            att[l] = new float[B * config.numHeads() * T * T];
            attention(atty[l], att[l], qkv[l]);
            float[] attproj = matmul(atty[l], w(ParameterLayout.ATTPROJW, l), w(ParameterLayout.ATTPROJB, l), BT, C, C);
            residual2[l] = add(residual, attproj);
            ln2[l] = new float[BT * C];
            ln2Mean[l] = new float[BT];
            ln2Rstd[l] = new float[BT];
            layernorm(
                    ln2[l],
                    ln2Mean[l],
                    ln2Rstd[l],
                    residual2[l],
                    w(ParameterLayout.LN2W, l),
                    w(ParameterLayout.LN2B, l),
                    BT,
                    C);
            fch[l] = matmul(ln2[l], w(ParameterLayout.FCW, l), w(ParameterLayout.FCB, l), BT, C, 4 * C);
            fchGelu[l] = new float[fch[l].length];
            for (int i = 0; i < fch[l].length; i++) fchGelu[l][i] = gelu(fch[l][i]);
            float[] fcproj =
                    matmul(fchGelu[l], w(ParameterLayout.FCPROJW, l), w(ParameterLayout.FCPROJB, l), BT, 4 * C, C);
            residual3[l] = add(residual2[l], fcproj);
        }
        lnf = new float[BT * C];
        lnfMean = new float[BT];
        lnfRstd = new float[BT];
        layernorm(lnf, lnfMean, lnfRstd, residual3[L - 1], w(ParameterLayout.LNFW), w(ParameterLayout.LNFB), BT, C);
        logits = matmul(lnf, w(ParameterLayout.WTE), -1, BT, C, Vp);
        probs = new float[BT * Vp];
        double loss = 0;
        for (int bt = 0; bt < BT; bt++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int v = 0; v < V; v++) max = Math.max(max, logits[bt * Vp + v]);
            for (int v = 0; v < V; v++) sum += Math.exp(logits[bt * Vp + v] - max);
            for (int v = 0; v < V; v++) probs[bt * Vp + v] = (float) (Math.exp(logits[bt * Vp + v] - max) / sum);
            if (targets != null) loss -= Math.log(probs[bt * Vp + targets[bt]]);
        }
        return targets == null ? -1 : (float) (loss / BT);
    }

    float[] logits() {
        return logits;
    }

    void zeroGrad() {
        java.util.Arrays.fill(grads, 0);
    }

    void backward(int gradAccumSteps) {
        int C = config.channels(), L = config.numLayers(), V = config.vocabSize(), Vp = config.paddedVocabSize();
        int BT = B * T;
        float dloss = 1.0f / (BT * gradAccumSteps);
        float[] dlogits = new float[BT * Vp];
        for (int bt = 0; bt < BT; bt++)
            for (int v = 0; v < V; v++)
                dlogits[bt * Vp + v] = (probs[bt * Vp + v] - (v == targets[bt] ? 1 : 0)) * dloss;
        float[] dlnf = new float[BT * C];
        matmulBackward(dlnf, w(ParameterLayout.WTE), -1, dlogits, lnf, BT, C, Vp);
        float[] dresidual = new float[BT * C];
        layernormBackward(
                dresidual,
                w(ParameterLayout.LNFW),
                w(ParameterLayout.LNFB),
                dlnf,
                residual3[L - 1],
                lnfMean,
                lnfRstd,
                BT,
                C);
        for (int l = L - 1; l >= 0; l--) {
            float[] residual = l == 0 ? encoded : residual3[l - 1];
            // residual3 = residual2 + fcproj: both get dresidual
            float[] dfchGelu = new float[BT * 4 * C];
            matmulBackward(
                    dfchGelu,
                    w(ParameterLayout.FCPROJW, l),
                    w(ParameterLayout.FCPROJB, l),
                    dresidual,
                    fchGelu[l],
                    BT,
                    4 * C,
                    C);
            float[] dfch = new float[BT * 4 * C];
            for (int i = 0; i < dfch.length; i++) dfch[i] = geluGrad(fch[l][i]) * dfchGelu[i];
            float[] dln2 = new float[BT * C];
            matmulBackward(dln2, w(ParameterLayout.FCW, l), w(ParameterLayout.FCB, l), dfch, ln2[l], BT, C, 4 * C);
            layernormBackward(
                    dresidual,
                    w(ParameterLayout.LN2W, l),
                    w(ParameterLayout.LN2B, l),
                    dln2,
                    residual2[l],
                    ln2Mean[l],
                    ln2Rstd[l],
                    BT,
                    C);
            float[] datty = new float[BT * C];
            matmulBackward(
                    datty,
                    w(ParameterLayout.ATTPROJW, l),
                    w(ParameterLayout.ATTPROJB, l),
                    dresidual,
                    atty[l],
                    BT,
                    C,
                    C);
            float[] dqkv = new float[BT * 3 * C];
            attentionBackward(dqkv, datty, qkv[l], att[l], B, T, C, config.numHeads());
            float[] dln1 = new float[BT * C];
            matmulBackward(dln1, w(ParameterLayout.QKVW, l), w(ParameterLayout.QKVB, l), dqkv, ln1[l], BT, C, 3 * C);
            layernormBackward(
                    dresidual,
                    w(ParameterLayout.LN1W, l),
                    w(ParameterLayout.LN1B, l),
                    dln1,
                    residual,
                    ln1Mean[l],
                    ln1Rstd[l],
                    BT,
                    C);
        }
        for (int bt = 0; bt < BT; bt++)
            for (int c = 0; c < C; c++) {
                grads[w(ParameterLayout.WTE) + inputs[bt] * C + c] += dresidual[bt * C + c];
                grads[w(ParameterLayout.WPE) + (bt % T) * C + c] += dresidual[bt * C + c];
            }
    }

    float gradNorm() {
        double s = 0;
        for (float g : grads) s += (double) g * g;
        return (float) Math.sqrt(s);
    }

    /** AdamW as GPT2Cuda.update: decay only on 2-D tensors, gradients times gradScale. */
    void update(float lr, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {
        if (adamM == null) {
            adamM = new float[params.length];
            adamV = new float[params.length];
        }
        float c1 = (float) (1 - Math.pow(beta1, t)), c2 = (float) (1 - Math.pow(beta2, t));
        for (int tensor = 0; tensor < ParameterLayout.NUM_TENSORS; tensor++) {
            float wd = ParameterLayout.decays(tensor) ? weightDecay : 0;
            int off = (int) layout.offset(tensor), n = (int) layout.size(tensor);
            for (int i = off; i < off + n; i++) {
                float g = grads[i] * gradScale;
                adamM[i] = beta1 * adamM[i] + (1 - beta1) * g;
                adamV[i] = beta2 * adamV[i] + (1 - beta2) * g * g;
                params[i] -= lr * ((adamM[i] / c1) / ((float) Math.sqrt(adamV[i] / c2) + eps) + wd * params[i]);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // layers (static helpers are reused by KernelsGpuTest)

    static float gelu(float x) {
        double u = Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x);
        return (float) (0.5 * x * (1 + Math.tanh(u)));
    }

    static float geluGrad(float x) {
        double s = Math.sqrt(2 / Math.PI), u = s * (x + 0.044715 * x * x * x), th = Math.tanh(u);
        return (float) (0.5 * (1 + th) + 0.5 * x * (1 - th * th) * s * (1 + 3 * 0.044715 * x * x));
    }

    static float[] add(float[] a, float[] b) {
        float[] o = new float[a.length];
        for (int i = 0; i < a.length; i++) o[i] = a[i] + b[i];
        return o;
    }

    /** LayerNorm with weight/bias read from {@code p} at the given offsets. */
    static void layernorm(
            float[] out, float[] mean, float[] rstd, float[] inp, float[] p, int wOff, int bOff, int N, int C) {
        for (int n = 0; n < N; n++) {
            double m = 0, v = 0;
            for (int c = 0; c < C; c++) m += inp[n * C + c];
            m /= C;
            for (int c = 0; c < C; c++) {
                double d = inp[n * C + c] - m;
                v += d * d;
            }
            v /= C;
            double s = 1 / Math.sqrt(v + 1e-5);
            for (int c = 0; c < C; c++) out[n * C + c] = (float) ((inp[n * C + c] - m) * s * p[wOff + c] + p[bOff + c]);
            mean[n] = (float) m;
            rstd[n] = (float) s;
        }
    }

    private void layernorm(float[] out, float[] mean, float[] rstd, float[] inp, int wOff, int bOff, int N, int C) {
        layernorm(out, mean, rstd, inp, params, wOff, bOff, N, C);
    }

    static void layernormBackward(
            float[] dinp,
            float[] dparams,
            float[] p,
            int wOff,
            int bOff,
            float[] dout,
            float[] inp,
            float[] mean,
            float[] rstd,
            int N,
            int C) {
        for (int n = 0; n < N; n++) {
            double gMean = 0, gnMean = 0;
            for (int c = 0; c < C; c++) {
                double norm = (inp[n * C + c] - mean[n]) * rstd[n], g = p[wOff + c] * dout[n * C + c];
                gMean += g;
                gnMean += g * norm;
            }
            gMean /= C;
            gnMean /= C;
            for (int c = 0; c < C; c++) {
                double norm = (inp[n * C + c] - mean[n]) * rstd[n], g = p[wOff + c] * dout[n * C + c];
                dparams[bOff + c] += dout[n * C + c];
                dparams[wOff + c] += (float) (norm * dout[n * C + c]);
                dinp[n * C + c] += (float) ((g - gMean - norm * gnMean) * rstd[n]);
            }
        }
    }

    private void layernormBackward(
            float[] dinp, int wOff, int bOff, float[] dout, float[] inp, float[] mean, float[] rstd, int N, int C) {
        layernormBackward(dinp, grads, params, wOff, bOff, dout, inp, mean, rstd, N, C);
    }

    /** out (N, OC) = inp (N, C) W^T + bias; W at p[wOff] (OC, C), bias at p[bOff] or none if bOff < 0. */
    static float[] matmul(float[] inp, float[] p, int wOff, int bOff, int N, int C, int OC) {
        float[] out = new float[N * OC];
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double s = bOff >= 0 ? p[bOff + o] : 0;
                for (int i = 0; i < C; i++) s += (double) inp[n * C + i] * p[wOff + o * C + i];
                out[n * OC + o] = (float) s;
            }
        return out;
    }

    private float[] matmul(float[] inp, int wOff, int bOff, int N, int C, int OC) {
        return matmul(inp, params, wOff, bOff, N, C, OC);
    }

    private void matmulBackward(float[] dinp, int wOff, int bOff, float[] dout, float[] inp, int N, int C, int OC) {
        for (int n = 0; n < N; n++)
            for (int i = 0; i < C; i++) {
                double s = 0;
                for (int o = 0; o < OC; o++) s += (double) dout[n * OC + o] * params[wOff + o * C + i];
                dinp[n * C + i] += (float) s;
            }
        for (int o = 0; o < OC; o++) {
            for (int i = 0; i < C; i++) {
                double s = 0;
                for (int n = 0; n < N; n++) s += (double) dout[n * OC + o] * inp[n * C + i];
                grads[wOff + o * C + i] += (float) s;
            }
            if (bOff >= 0) {
                double s = 0;
                for (int n = 0; n < N; n++) s += dout[n * OC + o];
                grads[bOff + o] += (float) s;
            }
        }
    }

    private void attention(float[] out, float[] att, float[] qkv) {
        attentionForward(out, att, qkv, B, T, config.channels(), config.numHeads());
    }

    /** Causal attention; att (B, NH, T, T) gets the probabilities. */
    static void attentionForward(float[] out, float[] att, float[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        double scale = 1 / Math.sqrt(hs);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    int q = (b * T + t) * 3 * C + h * hs, row = ((b * NH + h) * T + t) * T;
                    double max = Double.NEGATIVE_INFINITY;
                    double[] s = new double[t + 1];
                    for (int t2 = 0; t2 <= t; t2++) {
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        double dot = 0;
                        for (int d = 0; d < hs; d++) dot += (double) qkv[q + d] * qkv[k + d];
                        s[t2] = dot * scale;
                        max = Math.max(max, s[t2]);
                    }
                    double sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        s[t2] = Math.exp(s[t2] - max);
                        sum += s[t2];
                    }
                    for (int t2 = 0; t2 <= t; t2++) att[row + t2] = (float) (s[t2] / sum);
                    for (int d = 0; d < hs; d++) {
                        double acc = 0;
                        for (int t2 = 0; t2 <= t; t2++)
                            acc += (double) att[row + t2] * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + d];
                        out[(b * T + t) * C + h * hs + d] = (float) acc;
                    }
                }
    }

    /** dqkv += attention backward. */
    static void attentionBackward(float[] dqkv, float[] dout, float[] qkv, float[] att, int B, int T, int C, int NH) {
        int hs = C / NH;
        double scale = 1 / Math.sqrt(hs);
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    int row = ((b * NH + h) * T + t) * T,
                            o = (b * T + t) * C + h * hs,
                            q = (b * T + t) * 3 * C + h * hs;
                    double[] datt = new double[t + 1];
                    double weighted = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        int v = (b * T + t2) * 3 * C + 2 * C + h * hs;
                        double dot = 0;
                        for (int d = 0; d < hs; d++) {
                            dot += (double) dout[o + d] * qkv[v + d];
                            dqkv[v + d] += att[row + t2] * dout[o + d];
                        }
                        datt[t2] = dot;
                        weighted += att[row + t2] * dot;
                    }
                    for (int t2 = 0; t2 <= t; t2++) {
                        double dpre = att[row + t2] * (datt[t2] - weighted) * scale;
                        int k = (b * T + t2) * 3 * C + C + h * hs;
                        for (int d = 0; d < hs; d++) {
                            dqkv[q + d] += (float) (dpre * qkv[k + d]);
                            dqkv[k + d] += (float) (dpre * qkv[q + d]);
                        }
                    }
                }
    }
}
