package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.util.LlmcException;
import java.util.ArrayList;
import org.junit.jupiter.api.Test;

/** KV-cache inference must give the logits of recomputing the whole sequence. */
class Llama3InferenceTest {
    static final Llama3Config CONFIG = new Llama3Config(48, 97, 2, 4, 2, 32, 1.0f, 16, 1e-5f, 500000f, true, 3, 1);

    @Test
    void cachedGenerationEqualsFullRecomputation() {
        try (var model = Llama3.randomInit(CONFIG, 7)) {
            int[] prompt = {1, 5, 9, 33, 2, 70, 12};
            var session = model.newSession(CONFIG.maxSeqLen());
            var sampler = new Sampler(new XorShift(1234), 1.0f, 0, 0.9f);
            float[] logits = session.forward(prompt); // the prompt in one batch
            var sequence = new ArrayList<Integer>();
            for (int t : prompt) sequence.add(t);
            for (int step = 0; step < 20; step++) {
                // full recomputation over the sequence so far, batch 1
                int[] tokens = sequence.stream().mapToInt(Integer::intValue).toArray();
                int T = tokens.length;
                model.forward(tokens, null, 1, T);
                long lastRow = (long) (T - 1) * CONFIG.vocabSize();
                double maxDiff = 0;
                for (int v = 0; v < CONFIG.vocabSize(); v++) {
                    maxDiff = Math.max(maxDiff, Math.abs(Floats.get(model.logits(), lastRow + v) - logits[v]));
                }
                assertTrue(maxDiff < 1e-5, "step " + step + ": max |cached - full| = " + maxDiff);
                int next = sampler.sample(logits, 0, logits.length);
                sequence.add(next);
                logits = session.forward(new int[] {next});
            }
            assertEquals(prompt.length + 20, session.position());
        }
    }

    @Test
    void promptInPiecesEqualsPromptAtOnce() {
        try (var model = Llama3.randomInit(CONFIG, 8)) {
            int[] prompt = {3, 1, 4, 1, 5, 9, 2, 6};
            float[] atOnce = model.newSession(16).forward(prompt);
            var session = model.newSession(16);
            session.forward(new int[] {3, 1, 4});
            float[] inPieces = session.forward(new int[] {1, 5, 9, 2, 6});
            for (int v = 0; v < atOnce.length; v++) assertEquals(atOnce[v], inPieces[v], 1e-5);
        }
    }

    @Test
    void generateStopsAndReportsSpeed() {
        try (var model = Llama3.randomInit(CONFIG, 9)) {
            var produced = new ArrayList<Integer>();
            var stats = model.generate(
                    new int[] {1, 2, 3}, 10, new Sampler(new XorShift(42), 0.8f, 0, 0.95f), new int[0], produced::add);
            assertEquals(10, produced.size());
            assertEquals(10, stats.generatedTokens());
            assertTrue(stats.tokensPerSecond() > 0);
            // the TokenGenerator the Trainer uses: same tokens for the same sampler seed
            int[] viaGenerator = model.generator()
                    .generate(new int[] {1, 2, 3}, 10, new Sampler(new XorShift(42), 0.8f, 0, 0.95f), t -> {});
            assertEquals(produced, java.util.Arrays.stream(viaGenerator).boxed().toList());
            // a stop token ends the generation after it
            var stopped = new ArrayList<Integer>();
            model.generate(
                    new int[] {1, 2, 3},
                    10,
                    new Sampler(new XorShift(42), 0.8f, 0, 0.95f),
                    new int[] {produced.get(2)},
                    stopped::add);
            assertEquals(produced.subList(0, produced.indexOf(produced.get(2)) + 1), stopped);
            var e = assertThrows(LlmcException.class, () -> model.newSession(16).forward(new int[] {97}));
            assertTrue(e.getMessage().contains("97"));
        }
    }

    @Test
    void bf16WeightsFollowFp32() {
        try (var model = Llama3.randomInit(CONFIG, 10);
                var fp32 = model.inferenceWeights(Precision.FP32);
                var bf16 = model.inferenceWeights(Precision.BF16);
                var exactSession = model.newSession(32, fp32);
                var roundedSession = model.newSession(32, bf16)) {
            assertEquals(fp32.bytesPerToken(), 2 * bf16.bytesPerToken());
            int[] prompt = {1, 5, 9};
            exactSession.forward(prompt); // the prompt runs the fp32 matmuls in both
            roundedSession.forward(prompt);
            int token = 7;
            for (int step = 0; step < 20; step++) {
                float[] exact = exactSession.forward(new int[] {token}),
                        rounded = roundedSession.forward(new int[] {token});
                double diff = 0, norm = 0, maxDiff = 0;
                int best = 0, bf16Best = 0;
                for (int v = 0; v < exact.length; v++) {
                    diff += (exact[v] - rounded[v]) * (exact[v] - rounded[v]);
                    norm += exact[v] * exact[v];
                    maxDiff = Math.max(maxDiff, Math.abs(exact[v] - rounded[v]));
                    if (exact[v] > exact[best]) best = v;
                    if (rounded[v] > rounded[bf16Best]) bf16Best = v;
                }
                assertTrue(
                        Math.sqrt(diff / norm) < 2e-2, "step " + step + ": relative error " + Math.sqrt(diff / norm));
                assertTrue(
                        best == bf16Best || exact[best] - exact[bf16Best] <= 2 * maxDiff,
                        "step " + step + ": greedy token " + bf16Best + " instead of " + best);
                token = best;
            }
        }
    }
}
