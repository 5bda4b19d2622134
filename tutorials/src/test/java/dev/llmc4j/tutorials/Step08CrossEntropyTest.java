package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.roundedToFloat;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.SoftmaxCrossEntropy;
import dev.llmc4j.tutorials.step08.CrossEntropy;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 8: softmax, cross-entropy and the fused backward against common's {@link SoftmaxCrossEntropy}. */
class Step08CrossEntropyTest {
    static final int N = 6, V = 11, Vp = 16; // 5 padding columns

    final Random random = new Random(8);
    final double[] logits = roundedToFloat(gaussian(random, N * Vp, 2));
    final int[] targets = {0, 3, 10, 3, 7, 1};

    @Test
    void matchesCommonsKernels() {
        var probs = zeros(N * Vp);
        var losses = zeros(N);
        SoftmaxCrossEntropy.softmaxForward(probs, segment(logits), N, V, Vp);
        SoftmaxCrossEntropy.crossentropyForward(losses, probs, targets, N, Vp);
        var dlosses = zeros(N);
        for (int n = 0; n < N; n++) dlosses.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, n, 1.0f / N); // mean
        var dlogits = zeros(N * Vp);
        SoftmaxCrossEntropy.crossentropySoftmaxBackward(dlogits, dlosses, probs, targets, N, V, Vp);

        double[] lessonProbs = CrossEntropy.softmax(logits, N, V, Vp);
        double moduleLoss = 0;
        for (double loss : doubles(losses, N)) moduleLoss += loss / N;
        double errorProbs = relativeError(doubles(probs, N * Vp), lessonProbs);
        double errorGrad =
                relativeError(doubles(dlogits, N * Vp), CrossEntropy.backward(lessonProbs, targets, N, V, Vp));
        System.out.printf(
                "SoftmaxCrossEntropy (float) vs lesson (double): probs %.1e, loss %.7f vs %.7f, dlogits %.1e%n",
                errorProbs, moduleLoss, CrossEntropy.meanLoss(lessonProbs, targets, N, Vp), errorGrad);
        assertTrue(errorProbs < 1e-6 && errorGrad < 1e-6);
        assertEquals(CrossEntropy.meanLoss(lessonProbs, targets, N, Vp), moduleLoss, 1e-5);
        for (int n = 0; n < N; n++)
            for (int i = V; i < Vp; i++)
                assertEquals(0, lessonProbs[n * Vp + i], "padding column " + i + " has no probability");
    }

    @Test
    void fusedGradientPassesTheGradientCheck() {
        double[] analytic = CrossEntropy.backward(CrossEntropy.softmax(logits, N, V, Vp), targets, N, V, Vp);
        double h = 1e-6;
        double[] x = logits.clone(), numeric = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double saved = x[i];
            x[i] = saved + h;
            double plus = CrossEntropy.meanLoss(CrossEntropy.softmax(x, N, V, Vp), targets, N, Vp);
            x[i] = saved - h;
            double minus = CrossEntropy.meanLoss(CrossEntropy.softmax(x, N, V, Vp), targets, N, Vp);
            x[i] = saved;
            numeric[i] = (plus - minus) / (2 * h);
        }
        double error = relativeError(analytic, numeric);
        System.out.printf("gradient check (double): dlogits relative error %.1e%n", error);
        assertTrue(error < 1e-7);
    }

    @Test
    void anUntrainedModelScoresLnV() {
        // all logits equal: every token has probability 1/V, the loss is ln V (ln 50257 = 10.82 for GPT-2)
        double[] flat = new double[N * Vp];
        double loss = CrossEntropy.meanLoss(CrossEntropy.softmax(flat, N, V, Vp), targets, N, Vp);
        assertEquals(Math.log(V), loss, 1e-12);
        System.out.printf(
                "uniform logits: loss = ln %d = %.4f; for GPT-2's vocabulary ln 50257 = %.4f%n",
                V, loss, Math.log(50257));
    }
}
