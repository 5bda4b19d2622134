package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step09.DoubleGPT2;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Step 9: the whole backward pass. (1) The lesson's double GPT-2 passes a finite-difference gradient check on every
 * tensor; (2) GPT2's float gradients, all 16 tensors, match the lesson's.
 */
class Step09BackwardTest {
    static final GPT2Config CONFIG = new GPT2Config(8, 40, 64, 2, 2, 8);
    static final int B = 2, T = 5;

    static int[] tokens(long seed) {
        var random = new Random(seed);
        int[] tokens = new int[B * T];
        for (int i = 0; i < tokens.length; i++) tokens[i] = random.nextInt(CONFIG.vocabSize());
        return tokens;
    }

    static DoubleGPT2 lessonOf(GPT2 model) {
        return new DoubleGPT2(
                CONFIG.maxSeqLen(),
                CONFIG.vocabSize(),
                CONFIG.paddedVocabSize(),
                CONFIG.numLayers(),
                CONFIG.numHeads(),
                CONFIG.channels(),
                doubles(model.parameters(), (int) CONFIG.numParameters()));
    }

    @Test
    void finiteDifferencesOnEveryTensor() {
        int[] inputs = tokens(1), targets = tokens(2);
        try (var model = GPT2.randomInit(CONFIG)) {
            var lesson = lessonOf(model);
            lesson.lossAndGradients(inputs, targets, B, T);
            double[] analytic = lesson.grads.clone();
            var random = new Random(9);
            double h = 1e-5; // the O(h^2) truncation error against rounding of about 1e-16 * loss / h
            double worst = 0;
            for (int tensor = 0; tensor < 16; tensor++) {
                int start = lesson.offset(tensor);
                int size = (int) CONFIG.parameterSizes()[tensor];
                // the wte rows of tokens that occur carry the gradient; elsewhere sample at random
                int[] picks = new int[6];
                for (int k = 0; k < picks.length; k++) {
                    picks[k] = tensor == 0
                            ? inputs[k] * CONFIG.channels() + random.nextInt(CONFIG.channels())
                            : random.nextInt(size);
                }
                double[] numeric = new double[picks.length], exact = new double[picks.length];
                for (int k = 0; k < picks.length; k++) {
                    int i = start + picks[k];
                    double saved = lesson.params[i];
                    lesson.params[i] = saved + h;
                    double plus = lesson.loss(inputs, targets, B, T);
                    lesson.params[i] = saved - h;
                    double minus = lesson.loss(inputs, targets, B, T);
                    lesson.params[i] = saved;
                    numeric[k] = (plus - minus) / (2 * h);
                    exact[k] = analytic[i];
                }
                double error = relativeError(exact, numeric);
                System.out.printf(
                        "  %-9s analytic vs numeric (double, 6 entries): %.1e%n",
                        GPT2Config.PARAMETER_NAMES[tensor], error);
                worst = Math.max(worst, error);
            }
            assertTrue(worst < 1e-6, "worst relative error " + worst);
        }
    }

    @Test
    void gpt2sGradientsMatchTheLesson() {
        int[] inputs = tokens(3), targets = tokens(4);
        try (var model = GPT2.randomInit(CONFIG)) {
            var lesson = lessonOf(model);
            double lessonLoss = lesson.lossAndGradients(inputs, targets, B, T);
            float loss = model.forward(inputs, targets, B, T);
            model.zeroGrad();
            model.backward();
            assertEquals(lessonLoss, loss, 1e-5, "the losses agree");
            System.out.printf(
                    "loss: GPT2 %.7f, lesson %.7f (ln %d = %.4f)%n",
                    loss, lessonLoss, CONFIG.vocabSize(), Math.log(CONFIG.vocabSize()));
            double worst = 0;
            for (int tensor = 0; tensor < 16; tensor++) {
                int start = lesson.offset(tensor), size = (int) CONFIG.parameterSizes()[tensor];
                double[] gpt2 = doubles(model.gradients(), start, size);
                double[] ours = Arrays.copyOfRange(lesson.grads, start, start + size);
                double error = relativeError(gpt2, ours);
                System.out.printf(
                        "  d%-9s GPT2 (float) vs lesson (double): %.1e%n", GPT2Config.PARAMETER_NAMES[tensor], error);
                worst = Math.max(worst, error);
            }
            assertTrue(worst < 1e-4, "worst relative error " + worst);
        }
    }
}
