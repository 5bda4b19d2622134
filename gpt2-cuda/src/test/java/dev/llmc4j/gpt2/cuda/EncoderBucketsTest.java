package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.util.Random;
import org.junit.jupiter.api.Test;

class EncoderBucketsTest {

    @Test
    void groupsPositionsByTokenInAscendingOrder() {
        var b = EncoderBuckets.of(new int[] {5, 3, 5, 7}, 4);
        assertArrayEquals(new int[] {3, 5, 7}, b.tokens());
        assertArrayEquals(new int[] {0, 1, 3, 4}, b.starts());
        assertArrayEquals(new int[] {1, 0, 2, 3}, b.positions());
        assertEquals(3, b.numBuckets());
    }

    @Test
    void onlyTheFirstCountPositionsCount() {
        var b = EncoderBuckets.of(new int[] {2, 2, 9, 9}, 2);
        assertArrayEquals(new int[] {2}, b.tokens());
        assertArrayEquals(new int[] {0, 2}, b.starts());
        assertArrayEquals(new int[] {0, 1}, b.positions());
    }

    @Test
    void emptyAndLargeTokens() {
        var empty = EncoderBuckets.of(new int[0], 0);
        assertEquals(0, empty.numBuckets());
        assertArrayEquals(new int[] {0}, empty.starts());
        var big = EncoderBuckets.of(new int[] {50303, 0, 50303}, 3);
        assertArrayEquals(new int[] {0, 50303}, big.tokens());
        assertArrayEquals(new int[] {1, 0, 2}, big.positions());
    }

    @Test
    void summingByBucketEqualsSummingByPosition() {
        // the CPU model of the kernel: dwte[token] += sum of its rows, vs. the plain scatter-add loop
        var rng = new Random(7);
        int count = 4 * 64, vocab = 50, channels = 3;
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = rng.nextInt(vocab);
        float[] dout = new float[count * channels];
        for (int i = 0; i < dout.length; i++) dout[i] = rng.nextFloat() - 0.5f;

        double[] expected = new double[vocab * channels];
        for (int p = 0; p < count; p++)
            for (int c = 0; c < channels; c++) expected[tokens[p] * channels + c] += dout[p * channels + c];

        var b = EncoderBuckets.of(tokens, count);
        double[] actual = new double[vocab * channels];
        int seen = 0;
        for (int i = 0; i < b.numBuckets(); i++) {
            int prev = -1;
            for (int j = b.starts()[i]; j < b.starts()[i + 1]; j++) {
                int p = b.positions()[j];
                assertEquals(b.tokens()[i], tokens[p]);
                assertTrue(p > prev, "ascending positions");
                prev = p;
                for (int c = 0; c < channels; c++) actual[b.tokens()[i] * channels + c] += dout[p * channels + c];
                seen++;
            }
        }
        assertEquals(count, seen);
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], actual[i], 1e-9);
    }
}
