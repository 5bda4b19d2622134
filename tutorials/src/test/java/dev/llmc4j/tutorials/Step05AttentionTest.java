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

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.tutorials.step05.CausalSelfAttention;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 5: the lesson's attention against common's (the baseline kernels'), a gradient check, and causality. */
class Step05AttentionTest {
    static final int B = 2, T = 5, C = 12, NH = 3;

    final Random random = new Random(5);
    final double[] qkv = roundedToFloat(gaussian(random, B * T * 3 * C, 1));
    final double[] dout = roundedToFloat(gaussian(random, B * T * C, 1));

    @Test
    void matchesCommonsAttention() {
        var lesson = CausalSelfAttention.forward(qkv, B, T, C, NH);
        double[] lessonDqkv = new double[qkv.length];
        CausalSelfAttention.backward(lessonDqkv, dout, qkv, lesson.att(), B, T, C, NH);

        int attention = B * NH * T * T;
        var out = zeros(B * T * C);
        var preatt = zeros(attention);
        var att = zeros(attention);
        var input = segment(qkv);
        CpuKernels.BASELINE.attentionForward(out, preatt, att, input, B, T, NH, NH, C / NH);
        var dqkv = zeros(qkv.length);
        CpuKernels.BASELINE.attentionBackward(
                dqkv, zeros(attention), zeros(attention), segment(dout), input, att, B, T, NH, NH, C / NH);

        double[] errors = {
            relativeError(doubles(out, B * T * C), lesson.out()),
            relativeError(doubles(att, attention), lesson.att()),
            relativeError(doubles(dqkv, qkv.length), lessonDqkv)
        };
        System.out.printf(
                "Attention (float) vs lesson (double): out %.1e, att %.1e, dqkv %.1e%n",
                errors[0], errors[1], errors[2]);
        for (double error : errors) assertTrue(error < 1e-5, "float rounding only: " + error);
    }

    @Test
    void gradientCheckInDouble() {
        var result = CausalSelfAttention.forward(qkv, B, T, C, NH);
        double[] dqkv = new double[qkv.length];
        CausalSelfAttention.backward(dqkv, dout, qkv, result.att(), B, T, C, NH);
        double[] numeric = numericGradient(
                qkv.clone(), x -> CausalSelfAttention.forward(x, B, T, C, NH).out(), dout, 1e-6);
        double error = relativeError(dqkv, numeric);
        System.out.printf("gradient check (double): dqkv relative error %.1e%n", error);
        assertTrue(error < 1e-7);
    }

    @Test
    void thePastNeverSeesTheFuture() {
        var before = CausalSelfAttention.forward(qkv, B, T, C, NH);
        double[] changed = qkv.clone();
        int last = T - 1;
        for (int i = 0; i < 3 * C; i++) changed[(0 * T + last) * 3 * C + i] += 10; // change everything at position T-1
        var after = CausalSelfAttention.forward(changed, B, T, C, NH);
        for (int t = 0; t < last; t++)
            for (int c = 0; c < C; c++)
                assertEquals(before.out()[t * C + c], after.out()[t * C + c], 0, "position " + t);
        // every attention row sums to 1 over t2 <= t and is zero above the diagonal
        for (int row = 0; row < B * NH * T; row++) {
            int t = row % T;
            double sum = 0;
            for (int t2 = 0; t2 < T; t2++) {
                if (t2 > t) assertEquals(0, before.att()[row * T + t2]);
                sum += before.att()[row * T + t2];
            }
            assertEquals(1, sum, 1e-12);
        }
    }
}
