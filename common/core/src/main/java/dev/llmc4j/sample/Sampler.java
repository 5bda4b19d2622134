package dev.llmc4j.sample;

import dev.llmc4j.random.XorShift;
import java.util.Arrays;

/**
 * Picking the next token. The static methods are llm.c's two samplers, bit for bit; an instance adds the
 * xorshift rng (llm.c's {@code random_f32}) and, for our own {@code sample} commands, temperature, top-k and
 * top-p (nucleus sampling).
 *
 * <p>With temperature 1, no top-k and no top-p, {@link #sample} is llm.c's {@code sample_softmax} and gives llm.c's
 * tokens for the same seed. Any other temperature, a top-k or a top-p changes the distribution (and we then subtract
 * the max logit before exponentiating), so those samples have no llm.c counterpart. Temperature 0 is greedy: the
 * largest logit (the first of equal ones), still drawing one coin so the rng stream does not depend on it.
 */
public final class Sampler {
    private final XorShift rng;
    private final float temperature;
    private final int topK;
    private final float topP;

    /** No top-p: {@code Sampler(rng, temperature, topK, 1.0f)}. */
    public Sampler(XorShift rng, float temperature, int topK) {
        this(rng, temperature, topK, 1.0f);
    }

    /**
     * @param temperature >= 0; 1 leaves the logits as they are, 0 always picks the most likely token
     * @param topK 0 for none, else only the k largest logits can be drawn
     * @param topP in (0, 1]; below 1 only the most likely tokens whose probabilities together first reach topP
     *             can be drawn (after temperature and top-k); 1 for none
     */
    public Sampler(XorShift rng, float temperature, int topK, float topP) {
        if (!(temperature >= 0) || Float.isInfinite(temperature))
            throw new IllegalArgumentException("temperature must be >= 0, got " + temperature);
        if (topK < 0) throw new IllegalArgumentException("top-k must be >= 0, got " + topK);
        if (!(topP > 0 && topP <= 1)) throw new IllegalArgumentException("top-p must be in (0, 1], got " + topP);
        this.rng = rng;
        this.temperature = temperature;
        this.topK = topK;
        this.topP = topP;
    }

    /** llm.c's sampler: seed 1337, temperature 1, no top-k. */
    public static Sampler llmc() {
        return new Sampler(new XorShift(1337), 1.0f, 0);
    }

    /**
     * Draws from softmax(logits[offset..offset+n) / temperature), restricted to the top k and then to the top-p
     * nucleus when set.
     */
    public int sample(float[] logits, int offset, int n) {
        float coin = rng.nextFloat();
        if (temperature == 0.0f) return argmax(logits, offset, n);
        if (temperature == 1.0f && (topK == 0 || topK >= n) && topP == 1.0f)
            return sampleSoftmax(logits, offset, n, coin);
        return sampleTempered(logits, offset, n, coin);
    }

    /** The index (relative to offset) of the largest logit, the first one among equals. */
    public static int argmax(float[] logits, int offset, int n) {
        int best = 0;
        for (int i = 1; i < n; i++) if (logits[offset + i] > logits[offset + best]) best = i;
        return best;
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

    // temperature, top-k and top-p: softmax over the kept logits (max subtracted), then the running-CDF rule
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
        if (topP < 1.0f) norm = keepNucleus(probabilities, norm, topP);
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

    /**
     * Top-p: zeroes every probability outside the nucleus, the smallest set of most likely tokens whose
     * (unnormalised) mass reaches topP * norm; ties with the least likely kept token stay. Returns the kept mass.
     */
    static double keepNucleus(float[] probabilities, double norm, float topP) {
        float[] sorted = probabilities.clone();
        Arrays.sort(sorted); // ascending: walk it from the end
        double target = topP * norm, mass = 0;
        float cutoff = 0;
        for (int i = sorted.length - 1; i >= 0 && mass < target; i--) {
            cutoff = sorted[i];
            mass += cutoff;
        }
        double kept = 0;
        for (int i = 0; i < probabilities.length; i++) {
            if (probabilities[i] < cutoff) probabilities[i] = 0.0f;
            kept += probabilities[i];
        }
        return kept;
    }

    /** C's expf: exp in double rounded to float (correctly rounded but for rare double-rounding ties). */
    static float expf(float x) {
        return (float) Math.exp(x);
    }
}
