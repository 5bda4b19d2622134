package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.llmc4j.model.GPT2Config;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The CPU reference the GPU tests trust, checked on the CPU: its backward pass against finite differences of its
 * forward pass, on a tiny model.
 */
class Gpt2ReferenceTest {
    static final GPT2Config TINY = new GPT2Config(8, 10, 16, 2, 2, 8);
    static final int B = 2, T = 5;

    @Test
    void gradientsMatchFiniteDifferences() {
        float[] params = Gpt2Reference.randomParameters(TINY, 3);
        // larger weights than 0.02 so every path carries a visible gradient
        for (int i = 0; i < params.length; i++) params[i] *= 10;
        var rng = new Random(4);
        int[] inputs = new int[B * T], targets = new int[B * T];
        for (int i = 0; i < B * T; i++) {
            inputs[i] = rng.nextInt(TINY.vocabSize());
            targets[i] = rng.nextInt(TINY.vocabSize());
        }

        var ref = new Gpt2Reference(TINY, params);
        ref.forward(inputs, targets, B, T);
        ref.backward(1);
        var layout = ParameterLayout.of(TINY);
        int checked = 0;
        for (int tensor = 0; tensor < ParameterLayout.NUM_TENSORS; tensor++) {
            int off = (int) layout.offset(tensor), n = (int) layout.size(tensor);
            for (int probe = 0; probe < 6; probe++) {
                int i = off + rng.nextInt(n);
                if (tensor == ParameterLayout.WTE && i - off >= TINY.vocabSize() * TINY.channels())
                    continue; // padding rows: no gradient path except logits
                float h = 1e-2f;
                float[] plus = params.clone(), minus = params.clone();
                plus[i] += h;
                minus[i] -= h;
                double numeric = (new Gpt2Reference(TINY, plus).forward(inputs, targets, B, T)
                                - new Gpt2Reference(TINY, minus).forward(inputs, targets, B, T))
                        / (2.0 * h);
                assertEquals(
                        numeric,
                        ref.grads[i],
                        2e-3 + 0.05 * Math.abs(numeric),
                        GPT2Config.PARAMETER_NAMES[tensor] + "[" + (i - off) + "]");
                checked++;
            }
        }
        assertTrue(checked > 80);
    }

    @Test
    void untrainedLossIsNearLogVocab() {
        var ref = new Gpt2Reference(TINY, Gpt2Reference.randomParameters(TINY, 1));
        int[] tokens = new int[B * T];
        float loss = ref.forward(tokens, tokens, B, T);
        assertEquals(Math.log(TINY.vocabSize()), loss, 0.1);
        assertEquals(-1, ref.forward(tokens, null, B, T));
    }

    @Test
    void adamwStepLowersTheLossOnTheSameBatch() {
        var ref = new Gpt2Reference(TINY, Gpt2Reference.randomParameters(TINY, 2));
        int[] inputs = {1, 2, 3, 4, 5, 6, 7, 8, 9, 0}, targets = {2, 3, 4, 5, 6, 7, 8, 9, 0, 1};
        float first = 0, loss = 0;
        for (int step = 1; step <= 20; step++) {
            loss = ref.forward(inputs, targets, B, T);
            if (step == 1) first = loss;
            ref.zeroGrad();
            ref.backward(1);
            ref.update(1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f, 1.0f, step);
        }
        assertTrue(loss < first - 0.5, first + " -> " + loss);
    }
}
