package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Kernels;
import dev.llmc4j.tutorials.step18.Llama3Lesson;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 18: the lesson's RMSNorm, RoPE, grouped-query attention and SwiGLU against llama3's and common's. */
class Step18Llama3Test {
    // a tiny Llama 3: C = 24, NH = 6 query heads of hd = 4, NKV = 2 key/value heads (groups of 3)
    static final int B = 2, T = 5, C = 24, NH = 6, NKV = 2, hd = C / NH;
    static final Llama3Config CONFIG = new Llama3Config(T, 32, 1, NH, NKV, C, 1.0f, 8, 1e-5f, 500000f, false, 3, 1);

    final Random random = new Random(18);

    static void check(String what, double error) {
        System.out.printf("%-34s relative error %.1e%n", what, error);
        assertTrue(error < 1e-5, what + ": " + error);
    }

    @Test
    void rmsnormMatchesLlama3() {
        double[] inp = roundedToFloat(gaussian(random, B * T * C, 1));
        double[] weight = roundedToFloat(gaussian(random, C, 1));
        var out = zeros(B * T * C);
        Llama3Kernels.BASELINE.rmsnormForward(out, zeros(B * T), segment(inp), segment(weight), B * T, C, CONFIG.normEps());
        check("RMSNorm vs Llama3.rmsnormForward:",
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
        Llama3Kernels.BASELINE.attentionForward(out, zeros(B * NH * T * T), zeros(B * NH * T * T), segment(qkv), B, T, NH, NKV, hd);
        check("GQA vs the attention kernel:",
                relativeError(doubles(out, B * T * C), Llama3Lesson.groupedQueryAttention(qkv, B, T, NH, NKV, hd)));
    }

    @Test
    void swigluMatchesLlama3() {
        int H = CONFIG.ffnHidden();
        double[] fch = roundedToFloat(gaussian(random, B * T * 2 * H, 1));
        var out = zeros(B * T * H);
        Llama3Kernels.BASELINE.swigluForward(out, segment(fch), B * T, H);
        check("SwiGLU vs Llama3.swigluForward:", relativeError(doubles(out, B * T * H), Llama3Lesson.swiglu(fch, B * T, H)));
    }
}
