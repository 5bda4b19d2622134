package dev.llmc4j.sample;

import dev.llmc4j.random.XorShift;
import java.util.Arrays;

/**
 * Picking the next token. The static methods are llm.c's two samplers, bit for bit; an instance adds the
 * xorshift rng (llm.c's {@code random_f32}) and, for our own {@code sample} command, temperature and top-k.
 *
 * <p>With temperature 1 and no top-k, {@link #sample} is llm.c's {@code sample_softmax} and gives llm.c's tokens for
 * the same seed. Any other temperature or a top-k changes the distribution (and we then subtract the max logit
 * before exponentiating), so those samples have no llm.c counterpart.
 */
public final class Sampler {
    private final XorShift rng;
    private final float temperature;
    private final int topK;

    /**
     * @param temperature > 0; 1 leaves the logits as they are
     * @param topK 0 for none, else only the k largest logits can be drawn
     */
    public Sampler(XorShift rng, float temperature, int topK) {
        if (!(temperature > 0)) throw new IllegalArgumentException("temperature must be > 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        this.rng = rng;
        this.temperature = temperature;
        this.topK = topK;
    }

    /** llm.c's sampler: seed 1337, temperature 1, no top-k. */
    public static Sampler llmc() {
        return new Sampler(new XorShift(1337), 1.0f, 0);
    }

    /** Draws from softmax(logits[offset..offset+n) / temperature), restricted to the top k when set. */
    public int sample(float[] logits, int offset, int n) {
        float coin = rng.nextFloat();
        if (temperature == 1.0f && (topK == 0 || topK >= n)) return sampleSoftmax(logits, offset, n, coin);
        return sampleTempered(logits, offset, n, coin);
    }

    /** Draws from a probability row, as llm.c's CPU trainer does ({@code sample_mult}). */
    public int sampleProbabilities(float[] probabilities, int offset, int n) {
        return sampleMult(probabilities, offset, n, rng.nextFloat());
    }

    /**
     * llm.c's {@code sample_mult}: the first index whose running float sum of probabilities exceeds {@code coin};
     * n-1 if rounding leaves the total below the coin.
     */
    public static int sampleMult(float[] probabilities, int offset, int n, float coin) {
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += probabilities[offset + i];
            if (coin < cdf) return i;
        }
        return n - 1;
    }

    /**
     * llm.c's {@code sample_softmax}: instead of normalising the probabilities, scale the coin by the normaliser.
     * The normaliser sums expf(logit) in double, without subtracting the max (GPT-2's logits are small enough);
     * the running CDF is float.
     */
    public static int sampleSoftmax(float[] logits, int offset, int n, float coin) {
        double norm = 0;
        for (int i = 0; i < n; i++) norm += expf(logits[offset + i]);
        coin = (float) (coin * norm);
        float cdf = 0.0f;
        for (int i = 0; i < n; i++) {
            cdf += expf(logits[offset + i]);
            if (coin < cdf) return i;
        }
        return n - 1;
    }

    // temperature and top-k: softmax over the kept logits (max subtracted), then the running-CDF rule
    private int sampleTempered(float[] logits, int offset, int n, float coin) {
        float threshold = Float.NEGATIVE_INFINITY; // logits below it are dropped
        if (topK > 0 && topK < n) {
            float[] sorted = Arrays.copyOfRange(logits, offset, offset + n);
            Arrays.sort(sorted);
            threshold = sorted[n - topK]; // ties at the threshold are kept
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int i = 0; i < n; i++) max = Math.max(max, logits[offset + i]);
        float[] probabilities = new float[n];
        double norm = 0;
        for (int i = 0; i < n; i++) {
            float logit = logits[offset + i];
            float p = logit >= threshold ? expf((logit - max) / temperature) : 0.0f;
            probabilities[i] = p;
            norm += p;
        }
        coin = (float) (coin * norm);
        float cdf = 0.0f;
        int last = 0;
        for (int i = 0; i < n; i++) {
            if (probabilities[i] == 0.0f) continue;
            cdf += probabilities[i];
            last = i;
            if (coin < cdf) return i;
        }
        return last; // rounding: the last token that could be drawn
    }

    /** C's expf: exp in double rounded to float (correctly rounded but for rare double-rounding ties). */
    static float expf(float x) {
        return (float) Math.exp(x);
    }
}
