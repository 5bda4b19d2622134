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
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step04.Linear;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 4: the lesson's matmul against both of common's kernels (plain loops and Vector API), and a gradient check. */
class Step04MatmulTest {
    // ragged sizes on purpose: not multiples of the Vector API's lane count or of its 2-row x 4-vector tiles
    static final int N = 7, C = 19, OC = 10;

    final Random random = new Random(4);
    final double[] inp = roundedToFloat(gaussian(random, N * C, 1));
    final double[] weight = roundedToFloat(gaussian(random, OC * C, 0.2));
    final double[] bias = roundedToFloat(gaussian(random, OC, 0.1));
    final double[] dout = roundedToFloat(gaussian(random, N * OC, 1));

    @Test
    void forwardAndBackwardMatchBothKernels() {
        double[] out = Linear.forward(inp, weight, bias, N, C, OC);
        double[] dinp = new double[N * C], dweight = new double[OC * C], dbias = new double[OC];
        Linear.backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);

        for (var kernel : new Matmul[] {Matmul.BASELINE, Matmul.VECTOR}) {
            String name = kernel == Matmul.BASELINE ? "BASELINE" : "VECTOR";
            var outSegment = zeros(N * OC);
            kernel.forward(outSegment, segment(inp), segment(weight), segment(bias), N, C, OC);
            var dinpSegment = zeros(N * C);
            var dweightSegment = zeros(OC * C);
            var dbiasSegment = zeros(OC);
            kernel.backward(
                    dinpSegment, dweightSegment, dbiasSegment, segment(dout), segment(inp), segment(weight), N, C, OC);
            double[] errors = {
                relativeError(doubles(outSegment, N * OC), out), relativeError(doubles(dinpSegment, N * C), dinp),
                relativeError(doubles(dweightSegment, OC * C), dweight), relativeError(doubles(dbiasSegment, OC), dbias)
            };
            System.out.printf(
                    "Matmul.%-8s vs lesson: out %.1e, dinp %.1e, dweight %.1e, dbias %.1e%n",
                    name, errors[0], errors[1], errors[2], errors[3]);
            for (double error : errors) assertTrue(error < 1e-5, name + ": " + error);
        }
    }

    @Test
    void gradientCheckInDouble() {
        double[] dinp = new double[N * C], dweight = new double[OC * C], dbias = new double[OC];
        Linear.backward(dinp, dweight, dbias, dout, inp, weight, N, C, OC);
        double error = Math.max(
                relativeError(
                        dinp, numericGradient(inp.clone(), v -> Linear.forward(v, weight, bias, N, C, OC), dout, 1e-5)),
                Math.max(
                        relativeError(
                                dweight,
                                numericGradient(
                                        weight.clone(), v -> Linear.forward(inp, v, bias, N, C, OC), dout, 1e-5)),
                        relativeError(
                                dbias,
                                numericGradient(
                                        bias.clone(), v -> Linear.forward(inp, weight, v, N, C, OC), dout, 1e-5))));
        System.out.printf("gradient check (double): worst relative error %.1e%n", error);
        assertTrue(error < 1e-8); // the loss is linear in each input: central differences are exact up to rounding
    }

    @Test
    void whereGPT2sFlopsGo() {
        // one forward of GPT-2 124M at B=4, T=64: the four matmuls of each layer and the lm head
        var config = GPT2Config.fromDescriptor("d12");
        long tokens = 4 * 64, C = config.channels(), L = config.numLayers(), Vp = config.paddedVocabSize();
        long perLayer = Linear.forwardFlops(tokens, C, 3 * C)
                + Linear.forwardFlops(tokens, C, C)
                + Linear.forwardFlops(tokens, C, 4 * C)
                + Linear.forwardFlops(tokens, 4 * C, C);
        long lmHead = Linear.forwardFlops(tokens, C, Vp);
        System.out.printf(
                "d12, 256 tokens: %.2f GFLOP in the layers' matmuls, %.2f GFLOP in the lm head%n",
                L * perLayer / 1e9, lmHead / 1e9);
        // checked against the model's own tensor sizes, not the formula again: a matmul does one multiply-add
        // (2 flops) per weight and per token, so the layers cost 2 x tokens x (qkvw + attprojw + fcw + fcprojw)
        // and the head 2 x tokens x wte (Vp x C, tied)
        long[] sizes = config.parameterSizes();
        assertEquals(2 * tokens * (sizes[4] + sizes[6] + sizes[10] + sizes[12]), L * perLayer);
        assertEquals(2 * tokens * sizes[0], lmHead);
        // and the count is what the lesson's loops do: N·OC outputs of C multiply-adds each
        assertEquals(2L * 3 * 5 * 7, Linear.forwardFlops(3, 5, 7));
    }
}
