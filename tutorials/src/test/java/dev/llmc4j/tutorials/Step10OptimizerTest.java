package dev.llmc4j.tutorials;

import dev.llmc4j.testing.RandomTokens;
import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.LearningRateSchedule;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.tutorials.step10.Optimizer;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 10: clipping, schedules, AdamW, weight decay and gradient accumulation against the real modules. */
class Step10OptimizerTest {
    static final GPT2Config TINY = new GPT2Config(16, 60, 64, 2, 2, 8);


    @Test
    void adamwMatchesCommonsAdamW() {
        int n = 50;
        var random = new Random(10);
        double[] params = roundedToFloat(gaussian(random, n, 1));
        var moduleParams = segment(params);
        var m = zeros(n);
        var v = zeros(n);
        var state = Optimizer.AdamState.zeros(n);
        for (int t = 1; t <= 5; t++) {
            double[] grads = roundedToFloat(gaussian(random, n, 0.1));
            var step = new AdamW.Step(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, t);
            AdamW.update(moduleParams, segment(grads), m, v, 0, n, step);
            Optimizer.adamw(params, grads, state, 1e-2, 0.9, 0.95, 1e-8, 0.1, 0.5, t);
        }
        double error = relativeError(doubles(moduleParams, n), params);
        System.out.printf("5 AdamW steps: common's AdamW (float) vs lesson (double): %.1e%n", error);
        assertTrue(error < 1e-6);
    }

    @Test
    void cosineScheduleMatchesLlmcs() {
        var schedule = LearningRateSchedule.of("cosine", 6e-4f, 10, 100, 0.1f);
        for (int step = 0; step < 100; step++) {
            double lesson = Optimizer.cosineLearningRate(step, 6e-4, 10, 100, 0.1);
            assertEquals(lesson, schedule.learningRate(step), 1e-6 * 6e-4, "step " + step);
        }
        System.out.printf("cosine, peak 6e-4, warmup 10 of 100 steps: lr(0) %.2e, lr(9) %.2e, lr(55) %.2e, lr(99) %.2e%n",
                schedule.learningRate(0), schedule.learningRate(9), schedule.learningRate(55), schedule.learningRate(99));
    }

    @Test
    void clippingUsesTheGlobalNorm() {
        try (var model = GPT2.randomInit(TINY)) {
            model.zeroGrad();
            model.forward(RandomTokens.of(4 * 8, TINY.vocabSize(), 1), RandomTokens.of(4 * 8, TINY.vocabSize(), 2), 4, 8);
            model.backward();
            double lessonNorm = Optimizer.globalNorm(doubles(model.gradients(), (int) TINY.numParameters()));
            assertEquals(lessonNorm, model.gradientNorm(), 1e-6 * lessonNorm);
            double scale = Optimizer.clipScale(lessonNorm, 1.0);
            System.out.printf("gradient norm %.4f -> scale %.4f (clip at 1.0)%n", lessonNorm, scale);
            assertEquals(Math.min(1.0, lessonNorm * scale), Math.min(1.0, lessonNorm), 1e-12);
            assertEquals(0.5, Optimizer.clipScale(4.0, 2.0));
        }
    }

    @Test
    void weightDecayShrinksOnlyTheMatrices() {
        try (var model = GPT2.randomInit(TINY)) {
            // make the layernorm gains and the biases non-zero so that a decay would show
            for (int tensor : new int[] {3, 5}) {
                var slice = dev.llmc4j.cpu.Floats.slice(model.parameters(), TINY.parameterOffset(tensor), TINY.parameterSizes()[tensor]);
                for (long i = 0; i < TINY.parameterSizes()[tensor]; i++) dev.llmc4j.cpu.Floats.set(slice, i, 0.5f);
            }
            double[] before = doubles(model.parameters(), (int) TINY.numParameters());
            model.zeroGrad(); // zero gradient: AdamW's adaptive part is 0, only the decay moves anything
            model.update(0.1f, TrainingConfig.BETA1, TrainingConfig.BETA2, TrainingConfig.EPS, 0.5f, 1.0f, 1);
            double[] after = doubles(model.parameters(), (int) TINY.numParameters());
            for (int tensor = 0; tensor < 16; tensor++) {
                int i = (int) TINY.parameterOffset(tensor);
                double expected = Optimizer.decays(tensor) ? before[i] * (1 - 0.1 * 0.5) : before[i];
                assertEquals(expected, after[i], 1e-7, GPT2Config.PARAMETER_NAMES[tensor]);
            }
            System.out.println("weight decay 0.5, lr 0.1, zero gradient: wte, wpe, qkvw, attprojw, fcw, fcprojw shrink by 5%; the rest stay");
        }
    }

    @Test
    void gradientAccumulationEqualsOneBigBatch() {
        int T = 8;
        int[] x = RandomTokens.of(4 * T, TINY.vocabSize(), 3), y = RandomTokens.of(4 * T, TINY.vocabSize(), 4);
        try (var big = GPT2.randomInit(TINY); var small = GPT2.randomInit(TINY)) {
            big.zeroGrad();
            big.forward(x, y, 4, T);
            big.backward(1);
            small.zeroGrad();
            for (int micro = 0; micro < 2; micro++) { // 2 micro-batches of B=2; backward(2) scales each loss by 1/2
                small.forward(Arrays.copyOfRange(x, micro * 2 * T, (micro + 1) * 2 * T), Arrays.copyOfRange(y, micro * 2 * T, (micro + 1) * 2 * T), 2, T);
                small.backward(2);
            }
            int n = (int) TINY.numParameters();
            double error = relativeError(doubles(small.gradients(), n), doubles(big.gradients(), n));
            System.out.printf("B=4 in one go vs 2 accumulated micro-batches of B=2: gradients differ by %.1e%n", error);
            assertTrue(error < 1e-5);
        }
    }
}
