package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.maxAbsDifference;
import static dev.llmc4j.tutorials.Tensors.numericGradient;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step14.FlashAttentionLesson;
import dev.llmc4j.tutorials.step14.OnlineSoftmax;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Step 14: the online softmax equals the two-pass softmax; the lesson's tiled flash attention equals plain
 * attention (a double reference here and common's {@link Attention}) forward and backward, on shapes where T is
 * not a multiple of the tiles; its lse is log Σ exp; and what the two keep for the backward at GPT-2 124M's size.
 */
class Step14FlashAttentionTest {
    final Random random = new Random(14);

    /** B, T, C, NH, BR, BC: tiles that divide T, ragged last tiles, BR != BC both ways, one position. */
    static final int[][] SHAPES = {
        {1, 64, 32, 2, 16, 16}, {2, 37, 24, 3, 16, 16}, {1, 100, 48, 4, 32, 16},
        {2, 70, 16, 1, 64, 64}, {1, 45, 24, 2, 8, 32}, {2, 1, 12, 3, 16, 16},
    };

    @Test
    void onlineSoftmaxOfOneRowEqualsTwoPass() {
        int n = 37, d = 5;
        double[] scores = gaussian(random, n, 3), values = gaussian(random, n * d, 1);
        double[] p = OnlineSoftmax.twoPass(scores);
        var expected = new double[d];
        for (int j = 0; j < n; j++) for (int i = 0; i < d; i++) expected[i] += p[j] * values[j * d + i];

        double worstOut = 0, worstP = 0;
        for (int blockSize : new int[] {1, 4, 16, 37, 64}) {
            var row = OnlineSoftmax.online(scores, values, d, blockSize);
            worstOut = Math.max(worstOut, maxAbsDifference(row.out(), expected));
            // the lse alone gives back every probability: p_j = exp(s_j - lse)
            for (int j = 0; j < n; j++) worstP = Math.max(worstP, Math.abs(Math.exp(scores[j] - row.lse()) - p[j]));
        }
        System.out.printf(
                "online softmax vs two-pass, 1 row of %d keys, blocks of 1, 4, 16, 37, 64: "
                        + "out %.1e, exp(s - lse) vs p %.1e%n",
                n, worstOut, worstP);
        assertTrue(worstOut < 1e-14 && worstP < 1e-15);

        // scores around 1000: exp overflows double (past 709), the running max keeps every exponent <= 0
        double[] large = scores.clone();
        for (int j = 0; j < n; j++) large[j] += 1000;
        double naiveSum = 0;
        for (double s : large) naiveSum += Math.exp(s);
        assertEquals(Double.POSITIVE_INFINITY, naiveSum);
        var row = OnlineSoftmax.online(large, values, d, 8);
        assertTrue(maxAbsDifference(row.out(), expected) < 1e-12);
        assertEquals(OnlineSoftmax.online(scores, values, d, 8).lse() + 1000, row.lse(), 1e-12);
    }

    /** Plain causal attention in double with the whole score matrix, and lse = log Σ exp(score) summed directly. */
    record Plain(double[] out, double[] lse) {}

    static Plain plain(double[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        var out = new double[B * T * C];
        var lse = new double[B * NH * T];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    var scores = new double[t + 1];
                    double sumExp = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        for (int i = 0; i < hs; i++)
                            scores[t2] +=
                                    qkv[(b * T + t) * 3 * C + h * hs + i] * qkv[(b * T + t2) * 3 * C + C + h * hs + i];
                        scores[t2] /= Math.sqrt(hs);
                        sumExp += Math.exp(scores[t2]); // no max shift: these scores are small
                    }
                    lse[(b * NH + h) * T + t] = Math.log(sumExp);
                    double[] p = OnlineSoftmax.twoPass(scores);
                    for (int t2 = 0; t2 <= t; t2++)
                        for (int i = 0; i < hs; i++)
                            out[(b * T + t) * C + h * hs + i] += p[t2] * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + i];
                }
        return new Plain(out, lse);
    }

    @Test
    void tiledFlashForwardEqualsPlainAttention() {
        double worstOut = 0, worstLse = 0, worstCommon = 0;
        for (int[] shape : SHAPES) {
            int B = shape[0], T = shape[1], C = shape[2], NH = shape[3], BR = shape[4], BC = shape[5];
            double[] qkv = roundedToFloat(gaussian(random, B * T * 3 * C, 1));
            var flash = FlashAttentionLesson.forward(qkv, B, T, C, NH, BR, BC);
            var reference = plain(qkv, B, T, C, NH);
            worstOut = Math.max(worstOut, maxAbsDifference(flash.out(), reference.out()));
            worstLse = Math.max(worstLse, maxAbsDifference(flash.lse(), reference.lse()));

            // common's attention, in float, with its (B, NH, T, T) preatt and att
            var out = zeros(B * T * C);
            CpuKernels.BASELINE.attentionForward(
                    out, zeros(B * NH * T * T), zeros(B * NH * T * T), segment(qkv), B, T, NH, NH, C / NH);
            worstCommon = Math.max(worstCommon, relativeError(doubles(out, B * T * C), flash.out()));
        }
        System.out.printf(
                "flash forward vs plain (double), %d shapes: out max |diff| %.1e, lse vs log Σ exp %.1e%n",
                SHAPES.length, worstOut, worstLse);
        System.out.printf(
                "common's Attention (float) vs flash lesson (double): out relative error %.1e%n", worstCommon);
        assertTrue(worstOut < 1e-13, "same math, another order of additions: " + worstOut);
        assertTrue(worstLse < 1e-13, "lse: " + worstLse);
        assertTrue(worstCommon < 1e-5, "float rounding only: " + worstCommon);
    }

    @Test
    void flashBackwardEqualsCommonsAttentionBackward() {
        double worst = 0;
        for (int[] shape : SHAPES) {
            int B = shape[0], T = shape[1], C = shape[2], NH = shape[3], BR = shape[4], BC = shape[5];
            double[] qkv = roundedToFloat(gaussian(random, B * T * 3 * C, 1));
            double[] dout = roundedToFloat(gaussian(random, B * T * C, 1));
            var flash = FlashAttentionLesson.forward(qkv, B, T, C, NH, BR, BC);
            var dqkv = new double[qkv.length];
            FlashAttentionLesson.backward(dqkv, dout, qkv, flash.out(), flash.lse(), B, T, C, NH, BR, BC);

            int scores = B * NH * T * T;
            var input = segment(qkv);
            var att = zeros(scores);
            CpuKernels.BASELINE.attentionForward(zeros(B * T * C), zeros(scores), att, input, B, T, NH, NH, C / NH);
            var commonDqkv = zeros(qkv.length);
            CpuKernels.BASELINE.attentionBackward(
                    commonDqkv, zeros(scores), zeros(scores), segment(dout), input, att, B, T, NH, NH, C / NH);
            double error = relativeError(doubles(commonDqkv, qkv.length), dqkv);
            worst = Math.max(worst, error);
            assertTrue(error < 1e-5, "B=" + B + " T=" + T + " BR=" + BR + " BC=" + BC + ": " + error);
        }
        System.out.printf(
                "common's attention backward (float) vs flash backward (double), %d shapes: dqkv relative error %.1e%n",
                SHAPES.length, worst);
    }

    @Test
    void flashBackwardPassesAGradientCheck() {
        int B = 1, T = 7, C = 8, NH = 2, BR = 4, BC = 2;
        double[] qkv = gaussian(random, B * T * 3 * C, 1), dout = gaussian(random, B * T * C, 1);
        var result = FlashAttentionLesson.forward(qkv, B, T, C, NH, BR, BC);
        var dqkv = new double[qkv.length];
        FlashAttentionLesson.backward(dqkv, dout, qkv, result.out(), result.lse(), B, T, C, NH, BR, BC);
        double[] numeric = numericGradient(
                qkv.clone(),
                x -> FlashAttentionLesson.forward(x, B, T, C, NH, BR, BC).out(),
                dout,
                1e-6);
        double error = relativeError(dqkv, numeric);
        System.out.printf("gradient check of the flash backward (double): dqkv relative error %.1e%n", error);
        assertTrue(error < 1e-7);
    }

    @Test
    void memoryOfTheScoresAtGpt2Size() {
        var config = GPT2Config.fromDescriptor("d12");
        int B = 4, T = config.maxSeqLen(), NH = config.numHeads(), L = config.numLayers();
        long plain = (long) B * NH * T * T; // one (B, NH, T, T) score matrix per layer
        long flash = (long) B * NH * T; // one lse (B, NH, T) per layer
        System.out.printf("GPT-2 124M (d12), B=%d, T=%d, NH=%d, fp32, per layer:%n", B, T, NH);
        System.out.printf(
                "  plain: scores (B,NH,T,T) %,d floats = %.0f MiB; all %d layers: %.2f GiB (common keeps two: preatt, att)%n",
                plain, plain * 4.0 / (1 << 20), L, L * plain * 4.0 / (1 << 30));
        System.out.printf(
                "  flash: lse (B,NH,T) %,d floats = %.0f KiB; all %d layers: %.2f MiB%n",
                flash, flash * 4.0 / (1 << 10), L, L * flash * 4.0 / (1 << 20));
        // checked against what the code allocates, not the formulas again: GPT2 keeps preatt and att, each
        // (L, B, NH, T, T) (tensors 6 and 7 of its 23 activations) ...
        long[] gpt2 = dev.llmc4j.gpt2.GPT2.activationSizes(config, B, T);
        assertEquals(L * plain, gpt2[6], "GPT2's preatt");
        assertEquals(L * plain, gpt2[7], "GPT2's att");
        // ... and the lesson's flash forward hands the backward only out and lse, (B, NH, T), on a small shape
        int b = 2, t = 37, c = 24, nh = 3;
        var result = FlashAttentionLesson.forward(gaussian(random, b * t * 3 * c, 1), b, t, c, nh, 16, 16);
        assertEquals((long) b * nh * t, result.lse().length, "lse: one number per (b, head, query)");
        assertEquals((long) b * t * c, result.out().length);
    }
}
