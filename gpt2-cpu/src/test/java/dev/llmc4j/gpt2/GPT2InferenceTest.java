package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.model.GPT2Config;
import org.junit.jupiter.api.Test;

/**
 * Generation with the weights in bf16 against fp32: the same greedy tokens (unless two candidates are closer than
 * bf16's error) and close logits (MatVecTest checks the kernels against their plain loops).
 */
class GPT2InferenceTest {
    // C = 48: whole vectors and a ragged tail at 512 and 256 bits, for fp32 and for bf16 pairs
    static final GPT2Config SMALL = new GPT2Config(40, 97, 128, 2, 4, 48);

    @Test
    void bf16GreedyTokensAndLogitsFollowFp32() {
        try (var model = GPT2.randomInit(SMALL);
                var fp32 = new GPT2Inference(model, Precision.FP32);
                var bf16 = new GPT2Inference(model, Precision.BF16)) {
            assertEquals(fp32.weightBytesPerToken(), 2 * bf16.weightBytesPerToken());
            int token = 3;
            for (int step = 0; step < 30; step++) {
                float[] exact = fp32.next(token), rounded = bf16.next(token);
                double diff = 0, norm = 0, maxDiff = 0;
                for (int v = 0; v < exact.length; v++) {
                    diff += (exact[v] - rounded[v]) * (exact[v] - rounded[v]);
                    norm += exact[v] * exact[v];
                    maxDiff = Math.max(maxDiff, Math.abs(exact[v] - rounded[v]));
                }
                assertTrue(
                        Math.sqrt(diff / norm) < 2e-2, "step " + step + ": relative error " + Math.sqrt(diff / norm));
                int best = argmax(exact), bf16Best = argmax(rounded);
                assertTrue(
                        best == bf16Best || exact[best] - exact[bf16Best] <= 2 * maxDiff,
                        "step " + step + ": greedy token " + bf16Best + " instead of " + best);
                token = best; // both continue from fp32's token
            }
        }
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int v = 1; v < logits.length; v++) if (logits[v] > logits[best]) best = v;
        return best;
    }
}
