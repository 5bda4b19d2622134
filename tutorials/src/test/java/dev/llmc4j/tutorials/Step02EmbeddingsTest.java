package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.maxAbsDifference;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step02.Embeddings;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 2: wte and wpe, forward and backward, against GPT2's encoder and a real model's tables. */
class Step02EmbeddingsTest {
    static final int B = 2, T = 4, C = 8, V = 10;
    static final int[] TOKENS = {3, 7, 3, 0, 9, 9, 9, 1}; // token 3 and token 9 repeat: their gradients must add up

    @Test
    void forwardMatchesGPT2() {
        var random = new Random(2);
        double[] wte = Tensors.roundedToFloat(gaussian(random, V * C, 0.02));
        double[] wpe = Tensors.roundedToFloat(gaussian(random, T * C, 0.01));
        var out = zeros(B * T * C);
        GPT2Kernels.BASELINE.encoderForward(out, TOKENS, segment(wte), segment(wpe), B, T, C);
        double[] lesson = Embeddings.forward(TOKENS, wte, wpe, B, T, C);
        double difference = maxAbsDifference(lesson, doubles(out, B * T * C));
        System.out.printf("encoder forward: max |lesson - GPT2| = %.1e%n", difference);
        assertTrue(difference < 1e-8, "one float addition apart at most"); // (float) (a + b) vs a + b
    }

    @Test
    void backwardAccumulatesLikeGPT2() {
        var random = new Random(3);
        double[] dout = Tensors.roundedToFloat(gaussian(random, B * T * C, 1));
        var dwte = zeros(V * C);
        var dwpe = zeros(T * C);
        GPT2Kernels.BASELINE.encoderBackward(dwte, dwpe, segment(dout), TOKENS, B, T, C);
        double[] lessonDwte = new double[V * C], lessonDwpe = new double[T * C];
        Embeddings.backward(lessonDwte, lessonDwpe, dout, TOKENS, B, T, C);
        assertTrue(maxAbsDifference(lessonDwte, doubles(dwte, V * C)) < 1e-6);
        assertTrue(maxAbsDifference(lessonDwpe, doubles(dwpe, T * C)) < 1e-6);
        // token 9 sits at (b,t) = (1,0), (1,1) and (1,2): its gradient row is the sum of those three output rows
        for (int c = 0; c < C; c++) {
            double expected = dout[4 * C + c] + dout[5 * C + c] + dout[6 * C + c];
            assertEquals(expected, lessonDwte[9 * C + c], 1e-12);
        }
        // token 5 never appears: no gradient
        for (int c = 0; c < C; c++) assertEquals(0.0, lessonDwte[5 * C + c]);
    }

    @Test
    void aRealModelsTables() {
        // a small GPT-2 (random init as llm.c does, seed 42): wte is the first tensor, wpe the second
        var config = new GPT2Config(16, 64, 128, 1, 2, 8);
        try (var model = GPT2.randomInit(config)) {
            int Vp = config.paddedVocabSize(), maxT = config.maxSeqLen(), channels = config.channels();
            double[] wte = doubles(model.parameters(), config.parameterOffset(0), Vp * channels);
            double[] wpe = doubles(model.parameters(), config.parameterOffset(1), maxT * channels);
            int[] tokens = {5, 17, 63, 0};
            double[] out = Embeddings.forward(tokens, wte, wpe, 1, 4, channels);
            System.out.printf(
                    "wte (%d, %d) and wpe (%d, %d); token 17 at t=1 starts %.4f %.4f %.4f ...%n",
                    Vp, channels, maxT, channels, out[channels], out[channels + 1], out[channels + 2]);
            assertEquals(wte[17 * channels] + wpe[channels], out[channels], 0);
        }
    }
}
