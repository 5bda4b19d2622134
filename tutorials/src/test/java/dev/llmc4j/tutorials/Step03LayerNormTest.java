package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.tutorials.step03.LayerNorm;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 3: LayerNorm by hand, checked by finite differences (double) and against GPT2's float layer. */
class Step03LayerNormTest {
    static final int B = 2, T = 3, C = 16, N = B * T;

    final Random random = new Random(3);
    final double[] x = roundedToFloat(gaussian(random, N * C, 2.0));
    final double[] weight = roundedToFloat(gaussian(random, C, 1.0));
    final double[] bias = roundedToFloat(gaussian(random, C, 1.0));
    final double[] dout = roundedToFloat(gaussian(random, N * C, 1.0));

    @Test
    void outputRowsHaveZeroMeanAndUnitVariance() {
        double[] ones = new double[C], zeros = new double[C];
        java.util.Arrays.fill(ones, 1);
        var result = LayerNorm.forward(x, ones, zeros, N, C);
        for (int row = 0; row < N; row++) {
            double mean = 0, square = 0;
            for (int i = 0; i < C; i++) mean += result.out()[row * C + i] / C;
            for (int i = 0; i < C; i++) square += result.out()[row * C + i] * result.out()[row * C + i] / C;
            assertEquals(0, mean, 1e-12);
            assertEquals(1, square, 1e-4); // not exactly 1: eps inside the square root
        }
    }

    @Test
    void gradientCheckInDouble() {
        var result = LayerNorm.forward(x, weight, bias, N, C);
        double[] dx = new double[N * C], dweight = new double[C], dbias = new double[C];
        LayerNorm.backward(dx, dweight, dbias, dout, x, weight, result.mean(), result.rstd(), N, C);

        double h = 1e-6;
        double[] numericDx = LayerNorm.numericGradient(
                x.clone(), v -> LayerNorm.forward(v, weight, bias, N, C).out(), dout, h);
        double[] numericDw = LayerNorm.numericGradient(
                weight.clone(), v -> LayerNorm.forward(x, v, bias, N, C).out(), dout, h);
        double[] numericDb = LayerNorm.numericGradient(
                bias.clone(), v -> LayerNorm.forward(x, weight, v, N, C).out(), dout, h);
        double errorX = relativeError(dx, numericDx),
                errorW = relativeError(dweight, numericDw),
                errorB = relativeError(dbias, numericDb);
        System.out.printf("gradient check (double): dx %.1e, dweight %.1e, dbias %.1e%n", errorX, errorW, errorB);
        assertTrue(errorX < 1e-7 && errorW < 1e-7 && errorB < 1e-7, "analytic and numeric gradients agree");
    }

    @Test
    void matchesGPT2sFloatLayer() {
        var out = zeros(N * C);
        var mean = zeros(N);
        var rstd = zeros(N);
        var xs = segment(x);
        var ws = segment(weight);
        GPT2Kernels.BASELINE.layernormForward(out, mean, rstd, xs, ws, segment(bias), B, T, C);
        var dx = zeros(N * C);
        var dw = zeros(C);
        var db = zeros(C);
        GPT2Kernels.BASELINE.layernormBackward(dx, dw, db, segment(dout), xs, ws, mean, rstd, B, T, C);

        var lesson = LayerNorm.forward(x, weight, bias, N, C);
        double[] ldx = new double[N * C], ldw = new double[C], ldb = new double[C];
        LayerNorm.backward(ldx, ldw, ldb, dout, x, weight, lesson.mean(), lesson.rstd(), N, C);

        double errors[] = {
            relativeError(doubles(out, N * C), lesson.out()),
            relativeError(doubles(rstd, N), lesson.rstd()),
            relativeError(doubles(dx, N * C), ldx),
            relativeError(doubles(dw, C), ldw),
            relativeError(doubles(db, C), ldb)
        };
        System.out.printf(
                "GPT2 (float) vs lesson (double): out %.1e, rstd %.1e, dx %.1e, dweight %.1e, dbias %.1e%n",
                errors[0], errors[1], errors[2], errors[3], errors[4]);
        for (double error : errors) assertTrue(error < 1e-5, "float rounding only: " + error);
    }
}
