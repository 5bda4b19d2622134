package dev.llmc4j.gpt2.cuda;

import java.util.Arrays;

/**
 * Groups the B*T input positions by token, so that the encoder backward kernel can sum each token's gradient rows
 * in a fixed order without atomics (see encoder.cu).
 *
 * <p>For tokens {@code [5, 3, 5, 7]}: tokens {@code [3, 5, 7]}, starts {@code [0, 1, 3, 4]},
 * positions {@code [1, 0, 2, 3]} (token 3 at position 1; token 5 at 0 and 2; token 7 at 3). Buckets are in
 * ascending token order, positions ascending within a bucket: a pure function of the input, so the gradient
 * sums happen in the same order on every run.
 *
 * @param tokens    the distinct tokens, ascending
 * @param starts    bucket i is positions[starts[i] .. starts[i+1]-1]; length tokens.length + 1
 * @param positions all B*T positions, grouped by token
 */
public record EncoderBuckets(int[] tokens, int[] starts, int[] positions) {

    public static EncoderBuckets of(int[] inputs, int count) {
        if (count == 0) return new EncoderBuckets(new int[0], new int[] {0}, new int[0]);
        // sort (token, position) pairs packed in a long: token in the high bits, position in the low bits
        long[] keys = new long[count];
        for (int p = 0; p < count; p++) keys[p] = ((long) inputs[p] << 32) | p;
        Arrays.sort(keys);
        int[] positions = new int[count];
        int[] tokens = new int[count];
        int[] starts = new int[count + 1];
        int buckets = 0;
        for (int i = 0; i < count; i++) {
            int token = (int) (keys[i] >>> 32);
            positions[i] = (int) keys[i];
            if (buckets == 0 || tokens[buckets - 1] != token) {
                tokens[buckets] = token;
                starts[buckets] = i;
                buckets++;
            }
        }
        starts[buckets] = count;
        return new EncoderBuckets(Arrays.copyOf(tokens, buckets), Arrays.copyOf(starts, buckets + 1), positions);
    }

    public int numBuckets() {
        return tokens.length;
    }
}
