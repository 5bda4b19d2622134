package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step07.TransformerForward;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 7: the lesson's whole forward pass (double) against GPT2.forward (float) on the same random-init model. */
class Step07BlockTest {
    // a small GPT-2: context 16, vocabulary 50 (padded to 64), 2 layers, 2 heads, 16 channels
    static final GPT2Config CONFIG = new GPT2Config(16, 50, 64, 2, 2, 16);
    static final int B = 2, T = 6;

    static int[] tokens(long seed) {
        var random = new Random(seed);
        int[] tokens = new int[B * T];
        for (int i = 0; i < tokens.length; i++) tokens[i] = random.nextInt(CONFIG.vocabSize());
        return tokens;
    }

    static TransformerForward lessonOf(GPT2 model) {
        double[] parameters = doubles(model.parameters(), (int) CONFIG.numParameters());
        return new TransformerForward(
                CONFIG.maxSeqLen(),
                CONFIG.vocabSize(),
                CONFIG.paddedVocabSize(),
                CONFIG.numLayers(),
                CONFIG.numHeads(),
                CONFIG.channels(),
                parameters);
    }

    @Test
    void logitsMatchGPT2() {
        int[] tokens = tokens(7);
        try (var model = GPT2.randomInit(CONFIG)) {
            model.forward(tokens, null, B, T);
            int Vp = CONFIG.paddedVocabSize(), V = CONFIG.vocabSize();
            double[] expected = doubles(model.logits(), B * T * Vp);
            double[] lesson = lessonOf(model).logits(tokens, B, T);
            // compare the V real columns; the padding columns' logits are never used
            double[] a = new double[B * T * V], b = new double[B * T * V];
            for (int bt = 0; bt < B * T; bt++)
                for (int v = 0; v < V; v++) {
                    a[bt * V + v] = lesson[bt * Vp + v];
                    b[bt * V + v] = expected[bt * Vp + v];
                }
            double error = Tensors.relativeError(a, b);
            System.out.printf(
                    "logits (B=%d, T=%d, V=%d): lesson (double) vs GPT2.forward (float): relative error %.1e%n",
                    B, T, V, error);
            assertTrue(error < 1e-5, "float rounding only: " + error);
        }
    }

    @Test
    void aBlockWithZeroProjectionsIsTheIdentity() {
        try (var model = GPT2.randomInit(CONFIG)) {
            // zero attprojw, attprojb, fcprojw and fcprojb (tensors 6, 7, 12, 13): both halves add nothing
            for (int tensor : new int[] {6, 7, 12, 13}) {
                long offset = CONFIG.parameterOffset(tensor), size = CONFIG.parameterSizes()[tensor];
                dev.llmc4j.cpu.Floats.slice(model.parameters(), offset, size).fill((byte) 0);
            }
            var lesson = lessonOf(model);
            double[] x = Tensors.gaussian(new Random(1), B * T * CONFIG.channels(), 1);
            assertArrayEquals(x, lesson.block(x, 0, B, T), 0, "the residual stream passes through unchanged");

            // and the module: its logits are then those of a model without blocks, lnf(wte[x] + wpe) · wteᵀ,
            // computed here in a few lines that do not use the lesson's blocks
            int[] tokens = tokens(8);
            model.forward(tokens, null, B, T);
            int C = CONFIG.channels(), Vp = CONFIG.paddedVocabSize();
            double[] p = doubles(model.parameters(), (int) CONFIG.numParameters());
            double worst = 0;
            for (int bt = 0; bt < B * T; bt++) {
                double[] row = new double[C];
                for (int c = 0; c < C; c++)
                    row[c] = p[tokens[bt] * C + c] + p[(int) CONFIG.parameterOffset(1) + (bt % T) * C + c];
                double mean = 0, variance = 0;
                for (double v : row) mean += v / C;
                for (double v : row) variance += (v - mean) * (v - mean) / C;
                for (int c = 0; c < C; c++)
                    row[c] = (row[c] - mean) / Math.sqrt(variance + 1e-5) * p[(int) CONFIG.parameterOffset(14) + c]
                            + p[(int) CONFIG.parameterOffset(15) + c];
                for (int v = 0; v < CONFIG.vocabSize(); v++) {
                    double logit = 0;
                    for (int c = 0; c < C; c++) logit += row[c] * p[v * C + c];
                    double actual = dev.llmc4j.cpu.Floats.get(model.logits(), (long) bt * Vp + v);
                    worst = Math.max(worst, Math.abs(actual - logit) / (Math.abs(logit) + 1e-3));
                }
            }
            System.out.printf(
                    "zero output projections: the blocks are the identity in the lesson (exactly) and in"
                            + " GPT2.forward (logits of a model without blocks, worst relative difference %.1e)%n",
                    worst);
            assertTrue(worst < 1e-4, "GPT2's blocks add nothing either: " + worst);
        }
    }

    @Test
    void theResidualProjectionsStartSmallerByOneOverSqrtTwoL() {
        // GPT-2's init: 0.02 for every matrix, 0.02/sqrt(2L) for the two that write into the residual stream, so
        // that the 2L additions together have about the variance of one, whatever the depth
        for (int L : new int[] {2, 8}) {
            var config = new GPT2Config(16, 50, 64, L, 2, 16);
            try (var model = GPT2.randomInit(config)) {
                double[] expected = {0.02, 0.02 / Math.sqrt(2 * L), 0.02, 0.02 / Math.sqrt(2 * L)};
                int[] tensors = {4, 6, 10, 12}; // qkvw, attprojw, fcw, fcprojw
                for (int i = 0; i < 4; i++) {
                    double std = standardDeviation(doubles(model.parameters(), config.parameterOffset(tensors[i]), (int)
                            config.parameterSizes()[tensors[i]]));
                    assertEquals(
                            expected[i], std, 0.1 * expected[i], GPT2Config.PARAMETER_NAMES[tensors[i]] + ", L = " + L);
                }
                double sumOfVariances = 2 * L * Math.pow(0.02 / Math.sqrt(2 * L), 2);
                System.out.printf(
                        "L = %d: attprojw and fcprojw std %.4f = 0.02/sqrt(2L); 2L such additions:"
                                + " variance %.1e = 0.02²%n",
                        L, 0.02 / Math.sqrt(2 * L), sumOfVariances);
            }
        }
    }

    static double standardDeviation(double[] values) {
        double mean = 0, variance = 0;
        for (double v : values) mean += v / values.length;
        for (double v : values) variance += (v - mean) * (v - mean) / values.length;
        return Math.sqrt(variance);
    }
}
