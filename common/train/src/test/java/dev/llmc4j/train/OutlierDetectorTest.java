package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class OutlierDetectorTest {

    @Test
    void nanUntilTheWindowIsFullThenZScoreOverTheLast128() {
        var detector = new OutlierDetector();
        for (int i = 0; i < 128; i++) assertTrue(Double.isNaN(detector.update(i % 2 == 0 ? 1.0 : 3.0)));
        // window now 64 x 1 and 64 x 3; the next 3 replaces the oldest value (a 1): 63 x 1, 65 x 3
        double z = detector.update(3.0);
        double mean = (63 * 1.0 + 65 * 3.0) / 128;
        double variance = (63 * 1.0 + 65 * 9.0) / 128 - mean * mean;
        assertEquals((3.0 - mean) / Math.sqrt(variance), z, 1e-12);
    }

    @Test
    void spikeStandsOutAndFlatWindowGivesZero() {
        var detector = new OutlierDetector();
        for (int i = 0; i < 200; i++) detector.update(2.0);
        assertEquals(0.0, detector.update(2.0));
        double z = detector.update(50.0);
        assertTrue(z > 10, "z = " + z);
        assertTrue(OutlierDetector.shouldSkip(z, 5.0f));
        assertFalse(OutlierDetector.shouldSkip(z, 0.0f)); // 0 = disabled
        assertFalse(OutlierDetector.shouldSkip(Double.NaN, 5.0f)); // still filling
    }

    @Test
    void ringReplacesTheOldestValue() {
        var detector = new OutlierDetector();
        for (int i = 0; i < 128; i++) detector.update(i);
        // after k more values the window is [k, 128 + k): check against a direct computation
        double z = 0;
        for (int k = 0; k < 300; k++) z = detector.update(128 + k);
        double sum = 0, sumSq = 0;
        for (int v = 300; v < 428; v++) {
            sum += v;
            sumSq += (double) v * v;
        }
        double mean = sum / 128;
        assertEquals((427 - mean) / Math.sqrt(sumSq / 128 - mean * mean), z, 1e-6);
    }
}
