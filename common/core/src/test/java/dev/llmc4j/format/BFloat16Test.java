package dev.llmc4j.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

/** Expected bit patterns were produced by torch 1.13: {@code torch.tensor(values).to(torch.bfloat16).view(torch.int16)}. */
class BFloat16Test {

    private static void assertRounds(int floatBits, int expectedBf16) {
        short got = BFloat16.fromFloat(Float.intBitsToFloat(floatBits));
        assertEquals(
                expectedBf16,
                got & 0xFFFF,
                () -> "0x%08X -> expected 0x%04X, got 0x%04X".formatted(floatBits, expectedBf16, got & 0xFFFF));
    }

    @Test
    void exactValuesKeepTheirBits() {
        assertRounds(0x3F800000, 0x3F80); // 1.0
        assertRounds(0x00000000, 0x0000); // +0
        assertRounds(0x80000000, 0x8000); // -0 keeps its sign
        assertRounds(0x7F800000, 0x7F80); // +inf
        assertRounds(0xFF800000, 0xFF80); // -inf
    }

    @Test
    void tiesGoToEven() {
        assertRounds(0x3F808000, 0x3F80); // halfway, kept part even: down
        assertRounds(0x3F818000, 0x3F82); // halfway, kept part odd: up
        assertRounds(0xBF808000, 0xBF80); // same for negatives
        assertRounds(0xBF818000, 0xBF82);
        assertRounds(0x00008000, 0x0000); // subnormal tie, even
        assertRounds(0x00018000, 0x0002); // subnormal tie, odd
    }

    @Test
    void offTiesGoToNearest() {
        assertRounds(0x3F808001, 0x3F81); // just above half: up
        assertRounds(0x3F807FFF, 0x3F80); // just below half: down
        assertRounds(0x00000001, 0x0000); // smallest subnormal: to zero
    }

    @Test
    void carriesIntoTheExponent() {
        assertRounds(0x3FFF8000, 0x4000); // 1.99609375 -> 2.0
        assertRounds(0x007FFFFF, 0x0080); // largest subnormal -> smallest normal
    }

    @Test
    void largestFloatsRoundToInfinityLikeTorch() {
        assertRounds(0x7F7FFFFF, 0x7F80); // Float.MAX_VALUE -> +inf
        assertRounds(0xFF7FFFFF, 0xFF80); // -Float.MAX_VALUE -> -inf
        assertRounds(0x7F7F8000, 0x7F80); // tie above the largest bf16, odd: up to inf
        assertRounds(0x7F7F7FFF, 0x7F7F); // just below the tie: largest finite bf16
        assertEquals(3.3895314e38f, BFloat16.toFloat((short) 0x7F7F));
    }

    @Test
    void nanStaysNan() {
        for (int bits : new int[] {0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FFFFFFF, 0xFF800001}) {
            assertRounds(bits, 0xFFFF); // torch's CPU conversion writes 0xFFFF for every NaN
            assertTrue(Float.isNaN(BFloat16.toFloat(BFloat16.fromFloat(Float.intBitsToFloat(bits)))));
        }
    }

    @Test
    void wideningIsExactAndRoundTrips() {
        assertEquals(1.0f, BFloat16.toFloat((short) 0x3F80));
        assertEquals(-2.0f, BFloat16.toFloat((short) 0xC000));
        assertEquals(Float.intBitsToFloat(0x80000000), BFloat16.toFloat((short) 0x8000)); // -0.0
        for (int b = 0; b < 0x10000; b++) {
            float f = BFloat16.toFloat((short) b);
            if (!Float.isNaN(f)) assertEquals(b, BFloat16.fromFloat(f) & 0xFFFF, "bf16 0x" + Integer.toHexString(b));
        }
    }
}
