package dev.llmc4j.llama3;

/** bf16 = the upper 16 bits of an fp32 value, rounded to nearest even (what PyTorch's cast does). */
final class BFloat16 {
    private BFloat16() {}

    static float toFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    static short fromFloat(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) return (short) ((bits >>> 16) | 0x0040); // keep it a (quiet) NaN
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }
}
