package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.util.LlmcException;
import org.junit.jupiter.api.Test;

class LearningRateScheduleTest {
    private static final float LR = 6e-4f;

    @Test
    void cosineWarmsUpThenDecaysToTheFinalFraction() {
        var schedule = LearningRateSchedule.of("cosine", LR, 10, 110, 0.1f);
        assertInstanceOf(LearningRateSchedule.Cosine.class, schedule);
        assertEquals(LR * 1f / 10, schedule.learningRate(0)); // (step+1)/W
        assertEquals(LR * 10f / 10, schedule.learningRate(9));
        assertEquals(LR, schedule.learningRate(10)); // r = 0: the full rate
        float min = LR * 0.1f;
        assertEquals(min + 0.5f * (min - min) + 0.5f * (LR - min), schedule.learningRate(60), 1e-9f); // r = 0.5
        assertEquals(min, schedule.learningRate(110), 1e-10f); // r = 1: the floor
        assertThrows(IllegalArgumentException.class, () -> schedule.learningRate(111));
    }

    @Test
    void cosineUsesLlmcsFloatOperations() {
        var schedule = LearningRateSchedule.of("cosine", LR, 0, 100, 0.0f);
        float ratio = 37f / 100;
        float coefficient = 0.5f * (1.0f + (float) Math.cos((float) (Math.PI * ratio)));
        assertEquals(0f + coefficient * LR, schedule.learningRate(37));
        // warmup multiplies before dividing: lr * (step+1) / W, in float
        var warm = LearningRateSchedule.of("cosine", 3e-4f, 7, 100, 0.0f);
        assertEquals(3e-4f * 3f / 7, warm.learningRate(2));
    }

    @Test
    void linearDecaysStraight() {
        var schedule = LearningRateSchedule.of("linear", LR, 0, 100, 0.0f);
        assertEquals(LR, schedule.learningRate(0));
        assertEquals(LR - 0.25f * LR, schedule.learningRate(25));
        assertEquals(0f, schedule.learningRate(100));
        var warm = LearningRateSchedule.of("linear", LR, 4, 100, 0.5f);
        assertEquals(LR * 2f / 4, warm.learningRate(1));
        assertEquals(LR - 0.5f * (LR - LR * 0.5f), warm.learningRate(52));
    }

    @Test
    void constantIgnoresWarmup() {
        var schedule = LearningRateSchedule.of("constant", LR, 100, 1000, 0.0f);
        assertEquals(LR, schedule.learningRate(0));
        assertEquals(LR, schedule.learningRate(5000));
    }

    @Test
    void wsdHoldsThenDecaysAsOneMinusSqrt() {
        var schedule = LearningRateSchedule.of("wsd", LR, 10, 100, 0.0f);
        assertEquals(LR * (1f / 10), schedule.learningRate(0)); // divides first, then multiplies
        assertEquals(LR, schedule.learningRate(10));
        assertEquals(LR, schedule.learningRate(79)); // D = (int)(0.8 * 100) = 80
        assertEquals(LR, schedule.learningRate(80)); // r = 0
        assertEquals((1f - (float) Math.sqrt(5f / 20)) * LR, schedule.learningRate(85));
        assertEquals(0f, schedule.learningRate(100));
        // D truncates: N = 13 -> D = 10
        var odd = LearningRateSchedule.of("wsd", LR, 0, 13, 0.1f);
        assertEquals(LR, odd.learningRate(9));
        assertEquals(LR, odd.learningRate(10));
        assertEquals(LR * 0.1f + (1f - (float) Math.sqrt(1f / 3)) * (LR - LR * 0.1f), odd.learningRate(11));
    }

    @Test
    void unknownNameIsAUserError() {
        var error = assertThrows(LlmcException.class, () -> LearningRateSchedule.of("step", LR, 0, 10, 0f));
        assertEquals("unknown learning rate schedule 'step': use cosine, linear, constant or wsd", error.getMessage());
        assertEquals("wsd", LearningRateSchedule.of("wsd", LR, 0, 10, 0f).name());
    }
}
