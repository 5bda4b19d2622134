package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.LearningRateSchedule;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.tutorials.step10.Optimizer;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 10: clipping, schedules, AdamW, weight decay and gradient accumulation against the real modules. */
class Step10OptimizerTest {
    static final GPT2Config TINY = new GPT2Config(16, 60, 64, 2, 2, 8);

    // ---- properties that hold whatever the module does ----

    @Test
    void theFirstAdamWStepMovesEveryParameterByAboutLrTimesTheSignOfItsGradient() {
        double lr = 1e-3;
        // gradients over eight orders of magnitude, both signs: the step must not depend on their size
        double[] grads = {3e-4, -2e-2, 0.7, -5.0, 40.0, -1e3, 2.5e4, -1e-2};
        double[] params = new double[grads.length];
        var state = Optimizer.AdamState.zeros(grads.length);
        Optimizer.adamw(params, grads, state, lr, 0.9, 0.95, 1e-8, 0.0, 1.0, 1);
        double worst = 0;
        for (int i = 0; i < grads.length; i++) {
            // step 1: m = 0.1 g and v = 0.05 g², so m / sqrt(v) = 0.1 / sqrt(0.05) = 0.447 sign(g) before the bias
            // corrections; dividing m by 1 - 0.9 and v by 1 - 0.95 makes it sign(g), a full step of lr
            assertEquals(0.1 * grads[i], state.m()[i], 1e-12 * Math.abs(grads[i]), "m after step 1");
            assertEquals(0.05 * grads[i] * grads[i], state.v()[i], 1e-12 * grads[i] * grads[i], "v after step 1");
            worst = Math.max(worst, Math.abs(params[i] + lr * Math.signum(grads[i])));
        }
        double uncorrected = state.m()[0] / Math.sqrt(state.v()[0]) / Math.signum(grads[0]);
        System.out.printf(
                "first AdamW step, gradients from 3e-4 to 2.5e4: |step + lr*sign(g)| <= %.1e (lr = %.0e);"
                        + " without bias correction m/sqrt(v) = %.3f%n",
                worst, lr, uncorrected);
        assertTrue(worst < 1e-4 * lr, "every first step is lr * sign(g): " + worst);
        assertEquals(0.1 / Math.sqrt(0.05), uncorrected, 1e-9);

        // where eps matters: a gradient as small as eps itself moves by lr * g / (|g| + eps) = lr / 2
        double[] tiny = {0.0};
        Optimizer.adamw(tiny, new double[] {1e-8}, Optimizer.AdamState.zeros(1), lr, 0.9, 0.95, 1e-8, 0.0, 1.0, 1);
        assertEquals(-lr / 2, tiny[0], 1e-6 * lr);
        tiny[0] = 0.0;
        Optimizer.adamL2(tiny, new double[] {1e-8}, Optimizer.AdamState.zeros(1), lr, 0.9, 0.95, 1e-8, 0.0, 1);
        assertEquals(-lr / 2, tiny[0], 1e-6 * lr);
    }

    @Test
    void clippingOnlyEverShrinks() {
        assertEquals(5.0, Optimizer.globalNorm(new double[] {3, 0, -4}), 1e-15);
        for (double norm : new double[] {0.0, 1e-3, 0.5, 0.999999, 1.0}) {
            assertEquals(1.0, Optimizer.clipScale(norm, 1.0), "below or at the threshold the gradient is unchanged");
        }
        for (double norm : new double[] {1.000001, 2.0, 37.5, 1e6}) {
            double scale = Optimizer.clipScale(norm, 1.0);
            assertTrue(scale < 1.0, "above the threshold the scale shrinks: " + scale);
            assertEquals(1.0, norm * scale, 1e-12, "and the clipped norm is the threshold");
        }
        assertEquals(0.5, Optimizer.clipScale(4.0, 2.0));
        assertEquals(1.0, Optimizer.clipScale(1.5, 2.0));
    }

    @Test
    void decoupledDecayIsLrTimesDecayTimesPWhateverTheGradientCoupledL2IsNot() {
        double lr = 1e-3, wd = 0.1;
        // three parameters, all p = 1: gradient 0, a small one and a large one
        double[] grads = {0.0, 1e-3, 10.0};
        double[] decoupled = {1, 1, 1}, decoupledNoDecay = {1, 1, 1}, coupled = {1, 1, 1};
        var s1 = Optimizer.AdamState.zeros(3);
        var s2 = Optimizer.AdamState.zeros(3);
        var s3 = Optimizer.AdamState.zeros(3);
        Optimizer.adamw(decoupled, grads, s1, lr, 0.9, 0.95, 1e-8, wd, 1.0, 1);
        Optimizer.adamw(decoupledNoDecay, grads, s2, lr, 0.9, 0.95, 1e-8, 0.0, 1.0, 1);
        Optimizer.adamL2(coupled, grads, s3, lr, 0.9, 0.95, 1e-8, wd, 1);
        System.out.println("one step, p = 1, lr 1e-3, weight decay 0.1: how much of the move is the decay");
        for (int i = 0; i < 3; i++) {
            double decoupledDecay = decoupledNoDecay[i] - decoupled[i];
            double coupledMove = 1 - coupled[i];
            System.out.printf(
                    "  gradient %-6s AdamW: decay %.2e of a total move %.2e;  Adam+L2: total move %.2e%n",
                    grads[i], decoupledDecay, 1 - decoupled[i], coupledMove);
            assertEquals(lr * wd * 1.0, decoupledDecay, 1e-15, "decoupled: exactly lr * wd * p, whatever the gradient");
        }
        // coupled: the zero-gradient parameter moves by a whole Adam step, lr, ten times AdamW's decay ...
        assertEquals(lr, 1 - coupled[0], 1e-9);
        // ... and the large-gradient one moves by lr too: its decay drowned in the normalisation (AdamW: lr + lr*wd)
        assertEquals(lr, 1 - coupled[2], 1e-9);
        assertEquals(lr * (1 + wd), 1 - decoupled[2], 1e-9);
        // the decay is proportional to p: p = 2 and p = -1, no gradient
        double[] twoAndMinusOne = {2, -1};
        Optimizer.adamw(twoAndMinusOne, new double[2], Optimizer.AdamState.zeros(2), lr, 0.9, 0.95, 1e-8, wd, 1.0, 1);
        assertArrayEquals(new double[] {2 - lr * wd * 2, -1 + lr * wd}, twoAndMinusOne, 1e-15);
        // coupled: wd * p acts as a gradient, so at step 1 it moves by lr * sign(p), whatever its size
        double[] coupledTwo = {2, -1};
        var state = Optimizer.AdamState.zeros(2);
        Optimizer.adamL2(coupledTwo, new double[2], state, lr, 0.9, 0.95, 1e-8, wd, 1);
        assertArrayEquals(new double[] {2 - lr, -1 + lr}, coupledTwo, 1e-9);
        assertArrayEquals(new double[] {0.1 * wd * 2, 0.1 * wd * -1}, state.m(), 1e-15, "m saw the penalty wd * p");
    }

    @Test
    void theAccumulationLoopIsOneStepOnABatchKTimesLarger() {
        int T = 8, k = 2;
        int[] x = RandomTokens.of(2 * k * T, TINY.vocabSize(), 5), y = RandomTokens.of(2 * k * T, TINY.vocabSize(), 6);
        var microBatches = List.of(
                new Optimizer.MicroBatch(Arrays.copyOf(x, 2 * T), Arrays.copyOf(y, 2 * T)),
                new Optimizer.MicroBatch(Arrays.copyOfRange(x, 2 * T, 4 * T), Arrays.copyOfRange(y, 2 * T, 4 * T)));
        int n = (int) TINY.numParameters();
        try (var accumulated = GPT2.randomInit(TINY);
                var big = GPT2.randomInit(TINY)) {
            double[] initial = doubles(big.parameters(), n);
            double worst = 0;
            float lessonLoss = 0, bigLoss = 0;
            for (int t = 1; t <= 2; t++) { // two steps: the second one must start from zeroed gradients
                lessonLoss = Optimizer.accumulatedStep(accumulated, microBatches, 2, T, 1e-3f, 0.1f, t);
                // the reference, written out: one forward and backward on the batch of B = 4, clip, AdamW
                big.zeroGrad();
                bigLoss = big.forward(x, y, 2 * k, T);
                big.backward(1);
                float norm = big.gradientNorm();
                big.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, norm > 1 ? 1 / norm : 1, t);
                assertEquals(bigLoss, lessonLoss, 1e-5 * bigLoss, "the mean loss over the micro-batches, step " + t);
                worst = Math.max(
                        worst, relativeError(doubles(accumulated.parameters(), n), doubles(big.parameters(), n)));
            }
            double moved = relativeError(doubles(big.parameters(), n), initial);
            System.out.printf(
                    "two steps on 2 micro-batches of B=2 vs on B=4: losses %.6f / %.6f, parameters differ by"
                            + " %.1e (and moved by %.1e)%n",
                    lessonLoss, bigLoss, worst, moved);
            assertTrue(worst < 1e-2 * moved, "the same steps: " + worst);
            assertTrue(moved > 1e-4, "the steps moved the parameters: " + moved);
        }
    }

    @Test
    void aWrongAccumulationScaleIsCaught() {
        // the check of gradientAccumulationEqualsOneBigBatch, run on a loop that forgets the 1/k: it must fail
        int T = 8;
        int[] x = RandomTokens.of(4 * T, TINY.vocabSize(), 3), y = RandomTokens.of(4 * T, TINY.vocabSize(), 4);
        try (var big = GPT2.randomInit(TINY);
                var wrong = GPT2.randomInit(TINY)) {
            big.zeroGrad();
            big.forward(x, y, 4, T);
            big.backward(1);
            wrong.zeroGrad();
            for (int micro = 0; micro < 2; micro++) {
                wrong.forward(
                        Arrays.copyOfRange(x, micro * 2 * T, (micro + 1) * 2 * T),
                        Arrays.copyOfRange(y, micro * 2 * T, (micro + 1) * 2 * T),
                        2,
                        T);
                wrong.backward(1); // forgot the 1/k: the SUM of two means, twice too large
            }
            int n = (int) TINY.numParameters();
            double error = relativeError(doubles(wrong.gradients(), n), doubles(big.gradients(), n));
            System.out.printf("the same check with 1/k forgotten: gradients differ by %.2f (twice as large)%n", error);
            assertEquals(1.0, error, 1e-4, "k = 2 micro-batches summed: 2x the big batch's gradient");
        }
    }

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
            // a clip scale that changes from step to step: a constant one would cancel out in m / sqrt(v)
            float gradScale = 1.0f / t;
            var step = new AdamW.Step(1e-2f, 0.9f, 0.95f, 1e-8f, 0.1f, gradScale, t);
            AdamW.update(moduleParams, segment(grads), m, v, 0, n, step);
            Optimizer.adamw(params, grads, state, 1e-2, 0.9, 0.95, 1e-8, 0.1, gradScale, t);
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
        System.out.printf(
                "cosine, peak 6e-4, warmup 10 of 100 steps: lr(0) %.2e, lr(9) %.2e, lr(55) %.2e, lr(99) %.2e%n",
                schedule.learningRate(0),
                schedule.learningRate(9),
                schedule.learningRate(55),
                schedule.learningRate(99));
    }

    @Test
    void clippingUsesTheGlobalNorm() {
        try (var model = GPT2.randomInit(TINY)) {
            model.zeroGrad();
            model.forward(
                    RandomTokens.of(4 * 8, TINY.vocabSize(), 1), RandomTokens.of(4 * 8, TINY.vocabSize(), 2), 4, 8);
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
                var slice = dev.llmc4j.cpu.Floats.slice(
                        model.parameters(), TINY.parameterOffset(tensor), TINY.parameterSizes()[tensor]);
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
            System.out.println(
                    "weight decay 0.5, lr 0.1, zero gradient: wte, wpe, qkvw, attprojw, fcw, fcprojw shrink by 5%; the rest stay");
        }
    }

    @Test
    void gradientAccumulationEqualsOneBigBatch() {
        int T = 8;
        int[] x = RandomTokens.of(4 * T, TINY.vocabSize(), 3), y = RandomTokens.of(4 * T, TINY.vocabSize(), 4);
        try (var big = GPT2.randomInit(TINY);
                var small = GPT2.randomInit(TINY)) {
            big.zeroGrad();
            big.forward(x, y, 4, T);
            big.backward(1);
            small.zeroGrad();
            for (int micro = 0; micro < 2; micro++) { // 2 micro-batches of B=2; backward(2) scales each loss by 1/2
                small.forward(
                        Arrays.copyOfRange(x, micro * 2 * T, (micro + 1) * 2 * T),
                        Arrays.copyOfRange(y, micro * 2 * T, (micro + 1) * 2 * T),
                        2,
                        T);
                small.backward(2);
            }
            int n = (int) TINY.numParameters();
            double error = relativeError(doubles(small.gradients(), n), doubles(big.gradients(), n));
            System.out.printf("B=4 in one go vs 2 accumulated micro-batches of B=2: gradients differ by %.1e%n", error);
            assertTrue(error < 1e-5);
        }
    }
}
