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

import dev.llmc4j.cpu.Matmul;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.tutorials.step06.Gelu;
import dev.llmc4j.tutorials.step06.Mlp;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 6: GELU against GPT2's, the MLP against GPT2's layers chained the same way, and gradient checks. */
class Step06MlpTest {
    static final int N = 4, C = 6;

    final Random random = new Random(6);
    final double[] x = roundedToFloat(gaussian(random, N * C, 1));
    final Mlp.Weights weights = new Mlp.Weights(
            roundedToFloat(gaussian(random, 4 * C * C, 0.3)),
            roundedToFloat(gaussian(random, 4 * C, 0.1)),
            roundedToFloat(gaussian(random, C * 4 * C, 0.3)),
            roundedToFloat(gaussian(random, C, 0.1)));
    final double[] dout = roundedToFloat(gaussian(random, N * C, 1));

    @Test
    void geluMatchesGPT2() {
        double[] inputs = new double[81];
        for (int i = 0; i < inputs.length; i++) inputs[i] = -5 + i / 8.0; // -5 .. 5
        double[] ones = new double[inputs.length];
        java.util.Arrays.fill(ones, 1);
        var out = zeros(inputs.length);
        var dx = zeros(inputs.length);
        GPT2Kernels.BASELINE.geluForward(out, segment(inputs), inputs.length);
        GPT2Kernels.BASELINE.geluBackward(dx, segment(inputs), segment(ones), inputs.length);
        double[] lessonDx = new double[inputs.length];
        Gelu.backward(lessonDx, inputs, ones);
        double errorOut = relativeError(doubles(out, inputs.length), Gelu.forward(inputs));
        double errorDx = relativeError(doubles(dx, inputs.length), lessonDx);
        System.out.printf("GPT2 gelu (float) vs lesson (double): forward %.1e, derivative %.1e%n", errorOut, errorDx);
        assertTrue(errorOut < 1e-6 && errorDx < 1e-6);
        assertEquals(0, Gelu.forward(new double[] {0})[0]);
        assertEquals(3, Gelu.forward(new double[] {3})[0], 0.01, "almost the identity for large x ...");
        assertEquals(0, Gelu.forward(new double[] {-3})[0], 0.01, "... and almost zero for very negative x");
    }

    @Test
    void mlpMatchesGPT2sLayersChained() {
        var lesson = Mlp.forward(x, weights, N, C);
        var matmul = Matmul.VECTOR; // what the model runs by default
        var h = zeros(N * 4 * C);
        var a = zeros(N * 4 * C);
        var out = zeros(N * C);
        matmul.forward(h, segment(x), segment(weights.fcw()), segment(weights.fcb()), N, C, 4 * C);
        GPT2Kernels.BASELINE.geluForward(a, h, N * 4 * C);
        matmul.forward(out, a, segment(weights.projw()), segment(weights.projb()), N, 4 * C, C);
        double error = relativeError(doubles(out, N * C), lesson.out());
        System.out.printf("MLP: Matmul + GPT2 gelu (float) vs lesson (double): %.1e%n", error);
        assertTrue(error < 1e-5);
    }

    @Test
    void mlpGradientCheckInDouble() {
        var acts = Mlp.forward(x, weights, N, C);
        double[] dx = new double[N * C];
        var grads = Mlp.Gradients.zerosLike(weights);
        Mlp.backward(dx, grads, dout, x, weights, acts, N, C);

        // each tensor perturbed through its own copy, handed to the forward explicitly (no reliance on aliasing)
        var w = weights;
        double[][] errors = {
            {
                relativeError(
                        dx,
                        numericGradient(x.clone(), v -> Mlp.forward(v, w, N, C).out(), dout, 1e-6))
            },
            {
                relativeError(
                        grads.fcw(),
                        numericGradient(
                                w.fcw().clone(),
                                v -> Mlp.forward(x, new Mlp.Weights(v, w.fcb(), w.projw(), w.projb()), N, C)
                                        .out(),
                                dout,
                                1e-6))
            },
            {
                relativeError(
                        grads.fcb(),
                        numericGradient(
                                w.fcb().clone(),
                                v -> Mlp.forward(x, new Mlp.Weights(w.fcw(), v, w.projw(), w.projb()), N, C)
                                        .out(),
                                dout,
                                1e-6))
            },
            {
                relativeError(
                        grads.projw(),
                        numericGradient(
                                w.projw().clone(),
                                v -> Mlp.forward(x, new Mlp.Weights(w.fcw(), w.fcb(), v, w.projb()), N, C)
                                        .out(),
                                dout,
                                1e-6))
            },
            {
                relativeError(
                        grads.projb(),
                        numericGradient(
                                w.projb().clone(),
                                v -> Mlp.forward(x, new Mlp.Weights(w.fcw(), w.fcb(), w.projw(), v), N, C)
                                        .out(),
                                dout,
                                1e-6))
            }
        };
        double worst = 0;
        for (double[] error : errors) worst = Math.max(worst, error[0]);
        System.out.printf("MLP gradient check (double), x, fcw, fcb, projw, projb: worst relative error %.1e%n", worst);
        for (double[] error : errors) assertTrue(error[0] < 1e-7, "gradient check: " + error[0]);
    }

    @Test
    void mlpBackwardMatchesGPT2sLayersChained() {
        var acts = Mlp.forward(x, weights, N, C);
        double[] dx = new double[N * C];
        var grads = Mlp.Gradients.zerosLike(weights);
        Mlp.backward(dx, grads, dout, x, weights, acts, N, C);
        // the same chain backwards with the real kernels: fcproj, gelu, fc
        var matmul = Matmul.VECTOR; // what the model runs by default
        var input = segment(x);
        var h = zeros(N * 4 * C);
        var a = zeros(N * 4 * C);
        matmul.forward(h, input, segment(weights.fcw()), segment(weights.fcb()), N, C, 4 * C);
        GPT2Kernels.BASELINE.geluForward(a, h, N * 4 * C);
        var da = zeros(N * 4 * C);
        var dh = zeros(N * 4 * C);
        var dinp = zeros(N * C);
        var dfcw = zeros(4 * C * C);
        var dfcb = zeros(4 * C);
        var dprojw = zeros(C * 4 * C);
        var dprojb = zeros(C);
        matmul.backward(da, dprojw, dprojb, segment(dout), a, segment(weights.projw()), N, 4 * C, C);
        GPT2Kernels.BASELINE.geluBackward(dh, h, da, N * 4 * C);
        matmul.backward(dinp, dfcw, dfcb, dh, input, segment(weights.fcw()), N, C, 4 * C);
        double[] errors = {
            relativeError(doubles(dinp, N * C), dx),
            relativeError(doubles(dfcw, 4 * C * C), grads.fcw()),
            relativeError(doubles(dfcb, 4 * C), grads.fcb()),
            relativeError(doubles(dprojw, C * 4 * C), grads.projw()),
            relativeError(doubles(dprojb, C), grads.projb())
        };
        System.out.printf(
                "MLP backward: Matmul + GPT2 gelu (float) vs lesson: dx %.1e, dfcw %.1e, dfcb %.1e,"
                        + " dprojw %.1e, dprojb %.1e%n",
                errors[0], errors[1], errors[2], errors[3], errors[4]);
        for (double error : errors) assertTrue(error < 1e-5, "float rounding only: " + error);
    }
}
