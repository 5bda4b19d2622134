package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
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
        return new TransformerForward(CONFIG.maxSeqLen(), CONFIG.vocabSize(), CONFIG.paddedVocabSize(),
                CONFIG.numLayers(), CONFIG.numHeads(), CONFIG.channels(), parameters);
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
            System.out.printf("logits (B=%d, T=%d, V=%d): lesson (double) vs GPT2.forward (float): relative error %.1e%n", B, T, V, error);
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
            System.out.println("a block whose output projections are zero leaves the residual stream as it was");
        }
    }
}
