package dev.llmc4j.format;

/**
 * bfloat16: the upper 16 bits of an IEEE float (sign, 8 exponent bits, 7 mantissa bits). Same range as fp32,
 * about 3 significant decimal digits. v5 checkpoints store every parameter this way.
 */
public final class BFloat16 {
    private BFloat16() {}

    /**
     * The bit pattern torch's {@code tensor.to(torch.bfloat16)} produces on the CPU: round to nearest, ties to even.
     *
     * <p>Adding 0x7FFF plus the lowest kept bit, then dropping the low 16 bits, rounds up exactly when the dropped
     * half is above 0x8000, or equal to it and the kept part is odd. A carry out of the mantissa bumps the exponent,
     * which is the right answer (1.9999 rounds to 2.0, the largest floats round to infinity). Infinities are exact.
     * Every NaN becomes 0xFFFF, the pattern torch's vectorized CPU conversion writes: adding the bias could
     * otherwise carry a NaN into an infinity.
     */
    public static short fromFloat(float value) {
        if (Float.isNaN(value)) return (short) 0xFFFF;
        int bits = Float.floatToRawIntBits(value);
        int lowestKeptBit = (bits >>> 16) & 1;
        return (short) ((bits + 0x7FFF + lowestKeptBit) >>> 16);
    }

    /** Widening is exact: the bf16 bits become the upper half of the float, the lower half is zero. */
    public static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }
}
