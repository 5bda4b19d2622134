package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.numericGradient;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.CausalSelfAttention;
import dev.llmc4j.cpu.Floats;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.llama3.Llama3Kernels;
import dev.llmc4j.tutorials.step18.Llama3Lesson;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Step 18: the lesson's RMSNorm, RoPE, grouped-query attention and SwiGLU, forward and backward, against llama3's and
 * common's and against finite differences; RoPE's relative-position property and Hugging Face's layout; one whole
 * block against the module.
 */
class Step18Llama3Test {
    // a tiny Llama 3: C = 24, NH = 6 query heads of hd = 4, NKV = 2 key/value heads (groups of 3)
    static final int B = 2, T = 5, C = 24, NH = 6, NKV = 2, hd = C / NH;
    static final Llama3Config CONFIG = new Llama3Config(T, 32, 1, NH, NKV, C, 1.0f, 8, 1e-5f, 500000f, false, 3, 1);

    final Random random = new Random(18);

    static void check(String what, double error) {
        System.out.printf("%-36s relative error %.1e%n", what, error);
        assertTrue(error < 1e-5, what + ": " + error);
    }

    @Test
    void rmsnormMatchesLlama3() {
        double[] inp = roundedToFloat(gaussian(random, B * T * C, 1));
        double[] weight = roundedToFloat(gaussian(random, C, 1));
        var out = zeros(B * T * C);
        Llama3Kernels.BASELINE.rmsnormForward(
                out, zeros(B * T), segment(inp), segment(weight), B * T, C, CONFIG.normEps());
        check(
                "RMSNorm vs Llama3.rmsnormForward:",
                relativeError(doubles(out, B * T * C), Llama3Lesson.rmsnorm(inp, weight, B * T, C, CONFIG.normEps())));
    }

    @Test
    void ropeMatchesLlama3() {
        double[] freqs = Llama3Lesson.ropeFrequencies(hd, CONFIG.ropeTheta());
        check("RoPE frequencies vs Llama3:", relativeError(freqs, Llama3.ropeFrequencies(CONFIG)));

        int rowWidth = CONFIG.qkvRows(), rotated = NH + NKV; // queries and keys turn, values do not
        double[] qkv = roundedToFloat(gaussian(random, B * T * rowWidth, 1));
        var real = segment(qkv);
        float[][] tables = Llama3.ropeTables(CONFIG, T);
        Llama3Kernels.BASELINE.rope(real, tables[0], tables[1], B * T, T, 0, rotated, hd, rowWidth, false);
        double[] lesson = qkv.clone();
        Llama3Lesson.rope(lesson, B * T, rowWidth, T, rotated, hd, freqs);
        check("RoPE vs Llama3.rope:", relativeError(doubles(real, B * T * rowWidth), lesson));

        // a rotation keeps lengths, and the inverse rotation (the backward) brings the input back
        Llama3Kernels.BASELINE.rope(real, tables[0], tables[1], B * T, T, 0, rotated, hd, rowWidth, true);
        check("RoPE then inverse vs input:", relativeError(doubles(real, B * T * rowWidth), qkv));
    }

    @Test
    void groupedQueryAttentionMatchesCommon() {
        int rowWidth = CONFIG.qkvRows();
        double[] qkv = roundedToFloat(gaussian(random, B * T * rowWidth, 1));
        var out = zeros(B * T * C);
        CausalSelfAttention.forward(out, zeros(B * NH * T * T), zeros(B * NH * T * T), segment(qkv), B, T, NH, NKV, hd);
        check(
                "GQA vs Attention.forward:",
                relativeError(doubles(out, B * T * C), Llama3Lesson.groupedQueryAttention(qkv, B, T, NH, NKV, hd)));
    }

    @Test
    void swigluMatchesLlama3() {
        int H = CONFIG.ffnHidden();
        double[] fch = roundedToFloat(gaussian(random, B * T * 2 * H, 1));
        var out = zeros(B * T * H);
        Llama3Kernels.BASELINE.swigluForward(out, segment(fch), B * T, H);
        check(
                "SwiGLU vs Llama3.swigluForward:",
                relativeError(doubles(out, B * T * H), Llama3Lesson.swiglu(fch, B * T, H)));
    }

    static void gradientCheck(String what, double[] analytic, double[] numeric) {
        double error = relativeError(analytic, numeric);
        System.out.printf("%-36s relative error %.1e%n", what, error);
        assertTrue(error < 1e-7, what + ": " + error);
    }

    @Test
    void rmsnormBackwardMatchesFiniteDifferencesAndLlama3() {
        int rows = 3, c = 8;
        double eps = 1e-5;
        double[] inp = roundedToFloat(gaussian(random, rows * c, 1)), weight = roundedToFloat(gaussian(random, c, 1));
        double[] dout = roundedToFloat(gaussian(random, rows * c, 1));
        double[] dinp = new double[rows * c], dweight = new double[c];
        Llama3Lesson.rmsnormBackward(dinp, dweight, dout, inp, weight, rows, c, eps);
        gradientCheck(
                "RMSNorm dinp vs finite differences:",
                dinp,
                numericGradient(inp.clone(), x -> Llama3Lesson.rmsnorm(x, weight, rows, c, eps), dout, 1e-6));
        gradientCheck(
                "RMSNorm dweight vs finite diff.:",
                dweight,
                numericGradient(weight.clone(), w -> Llama3Lesson.rmsnorm(inp, w, rows, c, eps), dout, 1e-6));
        var rstd = zeros(rows);
        var input = segment(inp);
        var w = segment(weight);
        Llama3Kernels.BASELINE.rmsnormForward(zeros(rows * c), rstd, input, w, rows, c, (float) eps);
        var realDinp = zeros(rows * c);
        var realDweight = zeros(c);
        Llama3Kernels.BASELINE.rmsnormBackward(realDinp, realDweight, segment(dout), input, w, rstd, rows, c);
        check("RMSNorm backward vs Llama3:", relativeError(doubles(realDinp, rows * c), dinp));
        check("RMSNorm dweight vs Llama3:", relativeError(doubles(realDweight, c), dweight));
    }

    @Test
    void ropeBackwardIsTheInverseRotation() {
        int rowWidth = CONFIG.qkvRows(), rotated = NH + NKV, rows = B * T;
        double[] freqs = Llama3Lesson.ropeFrequencies(hd, CONFIG.ropeTheta());
        double[] qkv = roundedToFloat(gaussian(random, rows * rowWidth, 1));
        double[] dout = roundedToFloat(gaussian(random, rows * rowWidth, 1));
        double[] dx = dout.clone();
        Llama3Lesson.ropeBackward(dx, rows, rowWidth, T, rotated, hd, freqs);
        gradientCheck(
                "RoPE backward vs finite differences:",
                dx,
                numericGradient(
                        qkv.clone(),
                        x -> {
                            double[] y = x.clone();
                            Llama3Lesson.rope(y, rows, rowWidth, T, rotated, hd, freqs);
                            return y;
                        },
                        dout,
                        1e-6));
        var real = segment(dout);
        float[][] tables = Llama3.ropeTables(CONFIG, T);
        Llama3Kernels.BASELINE.rope(real, tables[0], tables[1], rows, T, 0, rotated, hd, rowWidth, true);
        check("RoPE backward vs Llama3 inverse:", relativeError(doubles(real, rows * rowWidth), dx));
    }

    @Test
    void groupedQueryAttentionBackwardSumsDkAndDvOverEachGroup() {
        int rowWidth = CONFIG.qkvRows();
        double[] qkv = roundedToFloat(gaussian(random, B * T * rowWidth, 1));
        double[] dout = roundedToFloat(gaussian(random, B * T * C, 1));
        double[] dqkv = new double[qkv.length];
        Llama3Lesson.groupedQueryAttentionBackward(dqkv, dout, qkv, B, T, NH, NKV, hd);
        gradientCheck(
                "GQA backward vs finite differences:",
                dqkv,
                numericGradient(
                        qkv.clone(), x -> Llama3Lesson.groupedQueryAttention(x, B, T, NH, NKV, hd), dout, 1e-6));
        int attention = B * NH * T * T;
        var input = segment(qkv);
        var att = zeros(attention);
        CausalSelfAttention.forward(zeros(B * T * C), zeros(attention), att, input, B, T, NH, NKV, hd);
        var real = zeros(qkv.length);
        CausalSelfAttention.backward(
                real, zeros(attention), zeros(attention), segment(dout), input, att, B, T, NH, NKV, hd);
        check("GQA backward vs Attention.backward:", relativeError(doubles(real, qkv.length), dqkv));
        // the group sum, seen directly: with only query head 0 sending a gradient, kv head 0's dK is its share alone;
        // with all three heads of group 0 it is the sum of the three shares
        double[] all = new double[qkv.length], sumOfShares = new double[qkv.length];
        Llama3Lesson.groupedQueryAttentionBackward(all, onlyHeads(dout, 0, 3), qkv, B, T, NH, NKV, hd);
        for (int h = 0; h < 3; h++)
            Llama3Lesson.groupedQueryAttentionBackward(sumOfShares, onlyHeads(dout, h, h + 1), qkv, B, T, NH, NKV, hd);
        assertEquals(0, relativeError(all, sumOfShares), 1e-12, "dK, dV of a kv head = the sum over its query heads");
    }

    /** dout (B*T, NH*hd) with every query head outside [from, to) zeroed. */
    static double[] onlyHeads(double[] dout, int from, int to) {
        double[] out = new double[dout.length];
        for (int row = 0; row < B * T; row++)
            for (int h = from; h < to; h++) System.arraycopy(dout, row * C + h * hd, out, row * C + h * hd, hd);
        return out;
    }

    @Test
    void swigluBackwardMatchesFiniteDifferencesAndLlama3() {
        int rows = 3, H = 5;
        double[] fch = roundedToFloat(gaussian(random, rows * 2 * H, 2));
        double[] dout = roundedToFloat(gaussian(random, rows * H, 1));
        double[] dfch = new double[fch.length];
        Llama3Lesson.swigluBackward(dfch, fch, dout, rows, H);
        gradientCheck(
                "SwiGLU backward vs finite diff.:",
                dfch,
                numericGradient(fch.clone(), x -> Llama3Lesson.swiglu(x, rows, H), dout, 1e-6));
        var real = zeros(fch.length);
        Llama3Kernels.BASELINE.swigluBackward(real, segment(fch), segment(dout), rows, H);
        check("SwiGLU backward vs Llama3:", relativeError(doubles(real, fch.length), dfch));
    }

    /** One head x at every position 0..positions-1 (one row each), rotated: row p is x turned by p·f. */
    static double[] atEveryPosition(double[] x, int positions, double[] freqs) {
        double[] rows = new double[positions * x.length];
        for (int p = 0; p < positions; p++) System.arraycopy(x, 0, rows, p * x.length, x.length);
        Llama3Lesson.rope(rows, positions, x.length, positions, 1, x.length, freqs);
        return rows;
    }

    static double dotAt(double[] qs, int p, double[] ks, int p2, int hd) {
        double dot = 0;
        for (int i = 0; i < hd; i++) dot += qs[p * hd + i] * ks[p2 * hd + i];
        return dot;
    }

    @Test
    void afterRopeQueryKeyScoresDependOnlyOnThePositionDifference() {
        int headSize = 16, positions = 40;
        double[] freqs = Llama3Lesson.ropeFrequencies(headSize, 10000);
        double[] qs = atEveryPosition(gaussian(random, headSize, 1), positions, freqs);
        double[] ks = atEveryPosition(gaussian(random, headSize, 1), positions, freqs);
        double worst = 0;
        for (int distance = 0; distance < 10; distance++) {
            double first = dotAt(qs, distance, ks, 0, headSize);
            for (int shift = 1; shift + distance < positions; shift++)
                worst = Math.max(worst, Math.abs(dotAt(qs, shift + distance, ks, shift, headSize) - first));
        }
        // and it does depend on the difference: distance 0 and distance 5 give different scores
        double change = Math.abs(dotAt(qs, 5, ks, 0, headSize) - dotAt(qs, 0, ks, 0, headSize));
        System.out.printf(
                "RoPE: q·k at (p + s, p' + s) vs (p, p') for 40 positions: worst difference %.1e"
                        + " (the score moves by %.2f between distances 0 and 5)%n",
                worst, change);
        assertTrue(worst < 1e-12, "relative positions only: " + worst);
        assertTrue(change > 1e-3, "the score depends on the distance: " + change);
    }

    @Test
    void huggingFacesRotateHalfIsMetasRopeOnPermutedRows() {
        int headSize = 8, position = 7;
        double[] freqs = Llama3Lesson.ropeFrequencies(headSize, 500000);
        double[] head = gaussian(random, headSize, 1);
        double[] meta = atEveryPosition(head, position + 1, freqs);
        double[] metaAtP = Arrays.copyOfRange(meta, position * headSize, (position + 1) * headSize);
        double[] hf = Llama3Lesson.interleavedToHalves(head);
        Llama3Lesson.ropeRotateHalf(hf, 0, headSize, position, freqs);
        double permuted = relativeError(hf, Llama3Lesson.interleavedToHalves(metaAtP));
        double[] trap = head.clone(); // Meta's weights, HF's rotation, no permutation: the trap
        Llama3Lesson.ropeRotateHalf(trap, 0, headSize, position, freqs);
        double wrong = relativeError(trap, metaAtP);
        System.out.printf(
                "rotate-half on permuted rows vs interleaved RoPE: %.1e; without the permutation: %.2f%n",
                permuted, wrong);
        assertTrue(permuted < 1e-14, "the same rotation, up to the permutation");
        assertTrue(wrong > 0.1, "without it, a different function");
    }

    @Test
    void oneBlockFromTheLessonGivesTheModulesLoss() {
        var config = new Llama3Config(T, 32, 1, NH, NKV, C, 1.0f, 8, 1e-5f, 500000f, false, 3, 1);
        int V = config.vocabSize(), H = config.ffnHidden(), rows = B * T;
        int[] tokens = new int[rows], targets = new int[rows];
        for (int i = 0; i < rows; i++) {
            tokens[i] = random.nextInt(V);
            targets[i] = random.nextInt(V);
        }
        try (var model = Llama3.randomInit(config, 1337)) {
            long[] offsets = config.parameterOffsets(), sizes = config.parameterSizes();
            var parameters = model.parameters();
            // the norms start at 1: give them random gains, or a wrong index into them would go unseen
            for (int slot : new int[] {2, 8, 14})
                for (long i = 0; i < sizes[slot]; i++)
                    Floats.set(parameters, offsets[slot] + i, (float) (1 + 0.3 * random.nextGaussian()));
            double[][] p = new double[16][];
            for (int slot = 0; slot < 16; slot++) p[slot] = doubles(parameters, offsets[slot], (int) sizes[slot]);
            float moduleLoss = model.forward(tokens, targets, B, T);

            double[] x = new double[rows * C];
            for (int r = 0; r < rows; r++) System.arraycopy(p[0], tokens[r] * C, x, r * C, C); // wte; no wpe
            var weights = new Llama3Lesson.LayerWeights(p[2], p[4], p[6], p[8], p[10], p[12]);
            var shape = new Llama3Lesson.Shape(
                    B, T, C, NH, NKV, hd, H, config.normEps(), Llama3Lesson.ropeFrequencies(hd, config.ropeTheta()));
            x = Llama3Lesson.block(x, weights, shape);
            double[] logits = Llama3Lesson.linear(
                    Llama3Lesson.rmsnorm(x, p[14], rows, C, config.normEps()),
                    p[1],
                    rows,
                    C,
                    V); // the untied head: slot 1, not wte
            double loss = 0;
            for (int r = 0; r < rows; r++) {
                double max = Double.NEGATIVE_INFINITY, sum = 0;
                for (int v = 0; v < V; v++) max = Math.max(max, logits[r * V + v]);
                for (int v = 0; v < V; v++) sum += Math.exp(logits[r * V + v] - max);
                loss += (Math.log(sum) + max - logits[r * V + targets[r]]) / rows;
            }
            System.out.printf(
                    "one block + head from the lesson vs Llama3.forward: loss %.7f vs %.7f%n", loss, moduleLoss);
            assertEquals(moduleLoss, loss, 1e-5 * loss);
            assertTrue(relativeError(p[0], p[1]) > 0.5, "Llama 3's head is its own matrix, not wte");
        }
    }

    @Test
    void llama3TokensNeedFourBytes() {
        int vocabulary = 128_256; // Llama 3's tokenizer
        assertTrue(vocabulary - 1 > TokenShard.Kind.GPT2.maxTokenId(), "does not fit GPT-2's uint16 shards");
        assertEquals(4, TokenShard.Kind.LLAMA3.tokenBytes);
        assertEquals(2, TokenShard.Kind.GPT2.tokenBytes);
        // the 8B's KV cache per token: 32 layers x (k and v) x 8 kv heads x 128 x 2 bytes (bf16); 32 heads without GQA
        assertEquals(128 * 1024, 32 * 2 * 8 * 128 * 2);
        assertEquals(4 * 128 * 1024, 32 * 2 * 32 * 128 * 2);
    }
}
