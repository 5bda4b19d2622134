package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class DynamicLossScalerTest {

    @Test
    void pytorchDefaults() {
        var s = new DynamicLossScaler();
        assertEquals(65536.0f, s.scale());
        assertEquals(1.0f / 65536.0f, s.inverseScale());
        assertEquals(0, s.goodSteps());
        assertEquals(0, s.skippedSteps());
    }

    @Test
    void overflowSkipsTheStepHalvesTheScaleAndResetsTheCount() {
        var s = new DynamicLossScaler(1024f, 2f, 0.5f, 3);
        assertTrue(s.update(false));
        assertTrue(s.update(false));
        assertEquals(2, s.goodSteps());
        assertFalse(s.update(true));
        assertEquals(512f, s.scale());
        assertEquals(0, s.goodSteps());
        assertEquals(1, s.skippedSteps());
        assertFalse(s.update(true));
        assertEquals(256f, s.scale());
        assertEquals(2, s.skippedSteps());
    }

    @Test
    void restoredScalerContinuesAsTheSavedOne() {
        var saved = new DynamicLossScaler(1024f, 2f, 0.5f, 3);
        saved.update(false);
        saved.update(true);
        saved.update(false); // scale 512, one good step
        var resumed = new DynamicLossScaler(1024f, 2f, 0.5f, 3);
        resumed.restore(saved.scale(), saved.goodSteps());
        for (boolean overflow : new boolean[] {false, false, true, false, false, false}) {
            assertEquals(saved.update(overflow), resumed.update(overflow));
            assertEquals(saved.scale(), resumed.scale());
            assertEquals(saved.goodSteps(), resumed.goodSteps());
        }
        assertThrows(IllegalArgumentException.class, () -> resumed.restore(0f, 0));
        assertThrows(IllegalArgumentException.class, () -> resumed.restore(8f, 3), "good steps below the interval");
    }

    @Test
    void growsAfterIntervalGoodStepsInARow() {
        var s = new DynamicLossScaler(8f, 2f, 0.5f, 3);
        assertTrue(s.update(false));
        assertTrue(s.update(false));
        assertEquals(8f, s.scale());
        assertTrue(s.update(false)); // third good step: grow
        assertEquals(16f, s.scale());
        assertEquals(0, s.goodSteps());
        // an overflow in between restarts the count
        s.update(false);
        s.update(false);
        s.update(true); // 8
        s.update(false);
        s.update(false);
        assertEquals(8f, s.scale());
        s.update(false); // 3 good in a row again: 16
        assertEquals(16f, s.scale());
    }

    @Test
    void intervalOneGrowsEveryStepButNeverToInfinity() {
        var s = new DynamicLossScaler(Float.MAX_VALUE / 2, 2f, 0.5f, 1);
        s.update(false);
        assertEquals(Float.MAX_VALUE / 2 * 2, s.scale()); // still finite
        float before = s.scale();
        s.update(false); // would overflow: stays
        assertEquals(before, s.scale());
        assertTrue(Float.isFinite(s.scale()));
    }

    @Test
    void aLongRunSettlesBelowTheOverflowThreshold() {
        // simulate gradients that overflow whenever scale > 2^20: the scale must oscillate just below it
        var s = new DynamicLossScaler(65536f, 2f, 0.5f, 10);
        int skipped = 0;
        for (int step = 0; step < 1000; step++) {
            boolean overflow = s.scale() > (1 << 20);
            if (!s.update(overflow)) skipped++;
            assertTrue(s.scale() <= (1 << 21));
        }
        assertTrue(skipped > 0 && skipped < 100, "skipped " + skipped);
        assertEquals(skipped, s.skippedSteps());
    }

    @Test
    void rejectsBadSettings() {
        assertThrows(IllegalArgumentException.class, () -> new DynamicLossScaler(0f, 2f, 0.5f, 10));
        assertThrows(
                IllegalArgumentException.class, () -> new DynamicLossScaler(Float.POSITIVE_INFINITY, 2f, 0.5f, 10));
        assertThrows(IllegalArgumentException.class, () -> new DynamicLossScaler(1f, 1f, 0.5f, 10));
        assertThrows(IllegalArgumentException.class, () -> new DynamicLossScaler(1f, 2f, 1f, 10));
        assertThrows(IllegalArgumentException.class, () -> new DynamicLossScaler(1f, 2f, 0.5f, 0));
    }
}
