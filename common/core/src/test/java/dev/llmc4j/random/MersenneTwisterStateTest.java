package dev.llmc4j.random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class MersenneTwisterStateTest {

    @Test
    void restoredStateContinuesTheSameStream() {
        var rng = new MersenneTwister(42);
        for (int i = 0; i < 1000; i++) rng.randInt32(); // cross a twist
        float[] one = new float[3];
        rng.normal(one, 0, 1); // leaves a cached normal behind
        var saved = rng.saveState();

        long[] expected = new long[700];
        for (int i = 0; i < expected.length; i++) expected[i] = rng.randInt32();
        float[] expectedNormals = new float[5];
        rng.normal(expectedNormals, 0, 1);

        var other = new MersenneTwister(7);
        other.restoreState(saved);
        long[] actual = new long[700];
        for (int i = 0; i < actual.length; i++) actual[i] = other.randInt32();
        float[] actualNormals = new float[5];
        other.normal(actualNormals, 0, 1);
        assertArrayEquals(expected, actual);
        assertArrayEquals(expectedNormals, actualNormals);
    }

    @Test
    void savedStateIsACopy() {
        var rng = new MersenneTwister(1);
        var saved = rng.saveState();
        long first = rng.randInt32();
        rng.restoreState(saved);
        assertEquals(first, rng.randInt32());
        saved.words()[0] = 0; // the accessor hands out a copy
        rng.restoreState(saved);
        assertEquals(first, rng.randInt32());
    }
}
