package dev.llmc4j.sample;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.random.XorShift;
import org.junit.jupiter.api.Test;

class SamplerTest {

    @Test
    void sampleMultIsTheFirstIndexWhoseRunningSumExceedsTheCoin() {
        float[] probabilities = {0.1f, 0.2f, 0.3f, 0.4f};
        assertEquals(0, Sampler.sampleMult(probabilities, 0, 4, 0.0f));
        assertEquals(0, Sampler.sampleMult(probabilities, 0, 4, 0.09f));
        assertEquals(1, Sampler.sampleMult(probabilities, 0, 4, 0.1f)); // coin < cdf is strict
        assertEquals(3, Sampler.sampleMult(probabilities, 0, 4, 0.65f));
        assertEquals(1, Sampler.sampleMult(new float[] {0.1f, 0.1f}, 0, 2, 0.9f)); // total below the coin: n-1
    }

    @Test
    void sampleSoftmaxScalesTheCoinInsteadOfNormalising() {
        // logits ln 1, ln 2, ln 3, ln 4 -> probabilities 0.1, 0.2, 0.3, 0.4
        float[] logits = {(float) Math.log(1), (float) Math.log(2), (float) Math.log(3), (float) Math.log(4)};
        assertEquals(0, Sampler.sampleSoftmax(logits, 0, 4, 0.05f));
        assertEquals(1, Sampler.sampleSoftmax(logits, 0, 4, 0.25f));
        assertEquals(2, Sampler.sampleSoftmax(logits, 0, 4, 0.55f));
        assertEquals(3, Sampler.sampleSoftmax(logits, 0, 4, 0.999f));
        // a row inside a larger array: the index is relative to the row's offset
        float[] row = {99f, 0f, 0f, 99f};
        assertEquals(0, Sampler.sampleSoftmax(row, 1, 2, 0.4f));
        assertEquals(1, Sampler.sampleSoftmax(row, 1, 2, 0.6f));
    }

    @Test
    void llmcSamplerDrawsItsCoinFromXorShift1337() {
        float[] logits = new float[50];
        for (int i = 0; i < logits.length; i++) logits[i] = (float) Math.sin(i);
        var sampler = Sampler.llmc();
        var rng = new XorShift(1337);
        for (int t = 0; t < 20; t++) {
            assertEquals(Sampler.sampleSoftmax(logits, 0, 50, rng.nextFloat()), sampler.sample(logits, 0, 50));
        }
    }

    @Test
    void topKOnlyDrawsTheLargestLogits() {
        float[] logits = {5f, 1f, 4.5f, 0f, 4.9f, -3f};
        var sampler = new Sampler(new XorShift(42), 1.0f, 3);
        for (int t = 0; t < 500; t++) {
            int token = sampler.sample(logits, 0, logits.length);
            assertTrue(token == 0 || token == 2 || token == 4, "drew " + token);
        }
    }

    @Test
    void lowTemperatureIsNearlyGreedyAndHighTemperatureSpreads() {
        float[] logits = {1f, 2f, 3f, 2.5f};
        var cold = new Sampler(new XorShift(7), 0.01f, 0);
        for (int t = 0; t < 200; t++) assertEquals(2, cold.sample(logits, 0, 4));
        var hot = new Sampler(new XorShift(7), 100f, 0);
        int[] counts = new int[4];
        for (int t = 0; t < 4000; t++) counts[hot.sample(logits, 0, 4)]++;
        for (int c : counts) assertTrue(c > 800, "counts " + java.util.Arrays.toString(counts));
    }

    @Test
    void temperatureOneWithoutTopKIsExactlyLlmc() {
        float[] logits = {0.3f, -1f, 2f, 0.7f};
        var ours = new Sampler(new XorShift(99), 1.0f, 0);
        var rng = new XorShift(99);
        for (int t = 0; t < 50; t++)
            assertEquals(Sampler.sampleSoftmax(logits, 0, 4, rng.nextFloat()), ours.sample(logits, 0, 4));
    }

    @Test
    void topPOneIsExactlyLlmcToo() {
        float[] logits = {0.3f, -1f, 2f, 0.7f, 0.1f};
        var ours = new Sampler(new XorShift(5), 1.0f, 0, 1.0f);
        var rng = new XorShift(5);
        for (int t = 0; t < 50; t++)
            assertEquals(Sampler.sampleSoftmax(logits, 0, 5, rng.nextFloat()), ours.sample(logits, 0, 5));
    }

    // probabilities 0.05, 0.5, 0.15, 0.3 (index order differs from probability order on purpose)
    static final float[] NUCLEUS_LOGITS = {
        (float) Math.log(0.05), (float) Math.log(0.5), (float) Math.log(0.15), (float) Math.log(0.3)
    };

    @Test
    void topPOnlyDrawsTheSmallestSetOfMostLikelyTokensThatReachesP() {
        var sampler = new Sampler(new XorShift(11), 1.0f, 0, 0.7f); // 0.5 < 0.7 <= 0.5 + 0.3: tokens 1 and 3
        int[] counts = new int[4];
        for (int t = 0; t < 8000; t++) counts[sampler.sample(NUCLEUS_LOGITS, 0, 4)]++;
        assertEquals(0, counts[0] + counts[2], java.util.Arrays.toString(counts));
        // inside the nucleus the probabilities are renormalised: 0.5/0.8 and 0.3/0.8
        assertEquals(0.625, counts[1] / 8000.0, 0.02, java.util.Arrays.toString(counts));

        var wider = new Sampler(new XorShift(11), 1.0f, 0, 0.85f); // needs 0.15 too
        int[] seen = new int[4];
        for (int t = 0; t < 4000; t++) seen[wider.sample(NUCLEUS_LOGITS, 0, 4)]++;
        assertEquals(0, seen[0], java.util.Arrays.toString(seen));
        assertTrue(seen[2] > 0, java.util.Arrays.toString(seen));

        var tiny = new Sampler(new XorShift(11), 1.0f, 0, 0.01f); // the single most likely token
        for (int t = 0; t < 100; t++) assertEquals(1, tiny.sample(NUCLEUS_LOGITS, 0, 4));
    }

    @Test
    void keepNucleusZeroesTheTailAndReturnsTheKeptMass() {
        float[] probabilities = {0.05f, 0.5f, 0.15f, 0.3f};
        double kept = Sampler.keepNucleus(probabilities, 1.0, 0.7f);
        assertEquals(0.8, kept, 1e-6);
        assertEquals(
                java.util.List.of(0.0f, 0.5f, 0.0f, 0.3f),
                java.util.List.of(probabilities[0], probabilities[1], probabilities[2], probabilities[3]));
        float[] ties = {0.25f, 0.25f, 0.25f, 0.25f}; // ties with the last kept token stay
        assertEquals(1.0, Sampler.keepNucleus(ties, 1.0, 0.3f), 1e-6);
    }

    @Test
    void topKThenTopP() {
        // top-k 2 keeps tokens 1 and 3 (0.5 and 0.3, renormalised 0.625 and 0.375); top-p 0.6 then keeps only token 1
        var sampler = new Sampler(new XorShift(3), 1.0f, 2, 0.6f);
        for (int t = 0; t < 200; t++) assertEquals(1, sampler.sample(NUCLEUS_LOGITS, 0, 4));
    }

    @Test
    void temperatureZeroIsGreedyAndBadSettingsAreRefused() {
        var greedy = new Sampler(new XorShift(1), 0.0f, 0, 0.9f);
        for (int t = 0; t < 20; t++) assertEquals(1, greedy.sample(NUCLEUS_LOGITS, 0, 4));
        assertEquals(0, Sampler.argmax(new float[] {2f, 2f, 1f}, 0, 3)); // the first of equal logits
        org.junit.jupiter.api.Assertions.assertThrows(
                IllegalArgumentException.class, () -> new Sampler(new XorShift(1), -1f, 0));
        org.junit.jupiter.api.Assertions.assertThrows(
                IllegalArgumentException.class, () -> new Sampler(new XorShift(1), 1f, 0, 0f));
        org.junit.jupiter.api.Assertions.assertThrows(
                IllegalArgumentException.class, () -> new Sampler(new XorShift(1), 1f, 0, 1.5f));
    }
}
