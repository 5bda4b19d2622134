package dev.llmc4j.tutorials.step15;

/**
 * Step 15: the three number formats a GPU trains in, as bit patterns.
 *
 * <pre>
 *   fp32  s eeeeeeee mmmmmmmmmmmmmmmmmmmmmmm   1 + 8 + 23 bits   max 3.4e38   ~7 significant digits
 *   bf16  s eeeeeeee mmmmmmm                   1 + 8 +  7 bits   max 3.4e38   ~3 significant digits
 *   fp16  s eeeee mmmmmmmmmm                   1 + 5 + 10 bits   max 65504    ~3-4 significant digits
 * </pre>
 * bf16 is fp32 with the low 16 mantissa bits cut off: same exponent, same range, so converting is a rounding of the
 * mantissa and nothing else. fp16 has more mantissa but only 5 exponent bits: values above 65504 overflow to
 * infinity, and values below 2^-14 (6.1e-5) lose precision as subnormals until, below 2^-25, they become 0.
 */
public final class Formats {
    private Formats() {}

    /** The largest finite fp16, (2 - 2^-10) * 2^15. */
    public static final float FP16_MAX = 65504f;
    /** The smallest normal fp16, 2^-14: below it the mantissa loses bits. */
    public static final float FP16_MIN_NORMAL = 0x1p-14f;
    /** The smallest fp16 above 0 (a subnormal), 2^-24: half of it and less round to 0. */
    public static final float FP16_MIN_SUBNORMAL = 0x1p-24f;

    // tag::bf16[]
    /**
     * fp32 -> bf16, round to nearest, ties to even (what torch's {@code .to(torch.bfloat16)} does). Keep the upper
     * 16 bits; look at the 16 we drop: more than half (0x8000) rounds up, less rounds down, exactly half rounds to
     * the even neighbour (the one whose lowest kept bit is 0). Rounding up is "add 1 to the kept bits": since the
     * sign is a separate bit, that moves the magnitude away from zero for negative numbers too, and a carry out of
     * the mantissa bumps the exponent, which is right (the largest finite values round up to infinity).
     */
    public static short toBf16(float value) {
        if (Float.isNaN(value)) return (short) 0xFFFF; // cutting a NaN's low payload bits could leave infinity
        int bits = Float.floatToRawIntBits(value);
        int kept = bits >>> 16; // sign, 8 exponent bits, 7 mantissa bits
        int dropped = bits & 0xFFFF; // the 16 mantissa bits bf16 has no room for
        boolean roundUp = dropped > 0x8000 || (dropped == 0x8000 && (kept & 1) == 1);
        return (short) (roundUp ? kept + 1 : kept);
    }

    /** bf16 -> fp32 is exact: the 16 bits become the upper half of the float, the lower half is zero. */
    public static float fromBf16(short bf16) {
        return Float.intBitsToFloat((bf16 & 0xFFFF) << 16);
    }

    /** The float a bf16 tensor would hold for this value: round, then widen. */
    public static float roundToBf16(float value) {
        return fromBf16(toBf16(value));
    }
    // end::bf16[]

    // tag::fp16[]
    /**
     * fp32 -> fp16, round to nearest, ties to even. The exponent is re-biased (127 -> 15); the 24-bit significand
     * (with its implicit leading 1) is shifted right by 13 for a normal fp16, and by more for a subnormal one,
     * and the dropped bits decide the rounding as for bf16.
     */
    public static short toFp16(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int exponent = (bits >>> 23) & 0xFF; // biased by 127
        int mantissa = bits & 0x7F_FFFF;
        if (exponent == 0xFF) return (short) (sign | (mantissa == 0 ? 0x7C00 : 0x7E00)); // inf, NaN
        int e16 = exponent - 127 + 15; // the exponent with fp16's bias
        if (e16 >= 31) return (short) (sign | 0x7C00); // >= 2^16: overflow to infinity
        int significand = exponent == 0 ? mantissa : mantissa | 0x80_0000; // 24 bits, leading 1 made explicit
        int kept, shift;
        if (e16 >= 1) { // normal fp16: 10 mantissa bits, drop 13
            shift = 13;
            kept = (e16 << 10) | ((significand >>> shift) & 0x3FF);
        } else { // subnormal fp16: counts units of 2^-24, no exponent
            shift = 14 - e16; // value = significand * 2^(e16 - 15 - 23) = kept * 2^-24
            if (shift > 24) return (short) sign; // below 2^-25: rounds to zero
            kept = significand >>> shift;
        }
        int dropped = significand & ((1 << shift) - 1), half = 1 << (shift - 1);
        boolean roundUp = dropped > half || (dropped == half && (kept & 1) == 1);
        return (short) (sign | (roundUp ? kept + 1 : kept)); // a carry into 0x7C00 is infinity, correctly
    }

    /** fp16 -> fp32 is exact: every fp16 (subnormals too) is a normal fp32. */
    public static float fromFp16(short fp16) {
        int h = fp16 & 0xFFFF;
        float sign = (h & 0x8000) != 0 ? -1f : 1f;
        int exponent = (h >>> 10) & 0x1F, mantissa = h & 0x3FF;
        if (exponent == 0x1F) return mantissa == 0 ? sign * Float.POSITIVE_INFINITY : Float.NaN;
        if (exponent == 0) return sign * mantissa * 0x1p-24f; // subnormal: mantissa units of 2^-24
        return sign * Float.intBitsToFloat((exponent - 15 + 127) << 23 | mantissa << 13);
    }

    /** The float an fp16 tensor would hold for this value. */
    public static float roundToFp16(float value) {
        return fromFp16(toFp16(value));
    }
    // end::fp16[]

    /** The distance from |x| to the next larger bf16: 2^(exponent - 7), 128 times fp32's ulp. */
    public static float bf16Ulp(float x) {
        return Math.ulp(x) * 65536f;
    }
}
