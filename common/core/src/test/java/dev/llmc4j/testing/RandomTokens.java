package dev.llmc4j.testing;

import java.util.Random;

/** Synthetic token ids for the tests of every module: uniform in [0, vocab), the same for the same seed. */
public final class RandomTokens {
    private RandomTokens() {}

    public static int[] of(int n, int vocab, long seed) {
        var random = new Random(seed);
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = random.nextInt(vocab);
        return tokens;
    }
}
