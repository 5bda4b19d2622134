package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.MatmulTest.random;
import static dev.llmc4j.cpu.MatmulTest.relativeError;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.cpu.MatVec.Weights;
import dev.llmc4j.format.BFloat16;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The streaming matrix-vector kernel must equal its plain loop, and the plain loop the baseline matmul at one row. */
class MatVecTest {

    @ParameterizedTest(name = "C={0} OC={1}")
    @CsvSource({"1,1", "2,3", "5,7", "16,4", "33,17", "64,96", "130,75", "768,20", "1023,9"})
    void vectorEqualsBaselineInBothPrecisions(int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(C * 100L + OC);
            var x = random(arena, C, random);
            var floats = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            for (var precision : Precision.values()) {
                var weight = Weights.of(precision, arena, floats, OC, C);
                var plain = arena.allocate((long) OC * Float.BYTES, 64);
                var fast = arena.allocate((long) OC * Float.BYTES, 64);
                MatVec.forwardBaseline(plain, x, weight, bias);
                MatVec.forward(fast, x, weight, bias);
                assertTrue(relativeError(fast, plain, OC) < 1e-6, precision + ": " + relativeError(fast, plain, OC));
            }
        }
    }

    @Test
    void fp32BaselineIsTheMatmulAtOneRow() {
        int C = 37, OC = 29;
        try (var arena = Arena.ofShared()) {
            var random = new Random(3);
            var x = random(arena, C, random);
            var weight = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            var viaMatmul = arena.allocate((long) OC * Float.BYTES, 64);
            var viaMatVec = arena.allocate((long) OC * Float.BYTES, 64);
            Matmul.BASELINE.forward(viaMatmul, x, weight, bias, 1, C, OC);
            MatVec.forwardBaseline(viaMatVec, x, Weights.fp32(weight, OC, C), bias);
            assertTrue(relativeError(viaMatVec, viaMatmul, OC) < 1e-6);
        }
    }

    @Test
    void bf16WeightsAreTheFloatsRoundedToNearest() {
        int C = 11, OC = 5;
        try (var arena = Arena.ofShared()) {
            var floats = random(arena, (long) OC * C, new Random(4));
            floats.setAtIndex(
                    ValueLayout.JAVA_FLOAT, 0, Float.intBitsToFloat(0x3F80_8000)); // a tie: stays at 1.0 (even)
            var bf16 = Weights.bf16(arena, floats, OC, C);
            assertEquals((long) OC * C * 2, bf16.bytes());
            assertEquals(1.0f, bf16.get(0, 0));
            for (int o = 0; o < OC; o++) {
                for (int i = 0; i < C; i++) {
                    float value = floats.getAtIndex(ValueLayout.JAVA_FLOAT, (long) o * C + i);
                    assertEquals(BFloat16.toFloat(BFloat16.fromFloat(value)), bf16.get(o, i));
                }
            }
            // and the product is close to fp32's: bf16 keeps 8 significant bits
            var x = random(arena, C, new Random(5));
            MemorySegment exact = arena.allocate(OC * 4L), rounded = arena.allocate(OC * 4L);
            MatVec.forward(exact, x, Weights.fp32(floats, OC, C), null);
            MatVec.forward(rounded, x, bf16, null);
            assertTrue(relativeError(rounded, exact, OC) < 1e-2);
        }
    }
}
