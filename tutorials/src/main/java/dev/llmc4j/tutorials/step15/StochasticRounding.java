package dev.llmc4j.tutorials.step15;

/**
 * Step 15: stochastic rounding fp32 -> bf16, and the random bits it needs.
 *
 * <p>Round to nearest always picks the closer bf16, so an update smaller than half a bf16 step is lost every time.
 * Stochastic rounding picks the upper neighbour with probability equal to how far the value lies towards it:
 * for x = lo + f * (hi - lo), hi with probability f and lo with 1 - f. The expected result is
 * lo + f * (hi - lo) = x: no bias, so a thousand tiny updates add up on average even though each one alone is
 * far below the bf16 step.
 *
 * <p>The same arithmetic as {@code stochastic_round_bf16} and {@code random_bits} in gpt2-cuda's
 * {@code src/main/cuda/common.cuh}, written for one value at a time.
 */
public final class StochasticRounding {
    private StochasticRounding() {}

    // tag::random[]
    /** A 32-bit integer hash: xor-shifts and multiplies that spread every input bit over every output bit. */
    public static int hash(int x) {
        x ^= x >>> 16;
        x *= 0x7FEB352D;
        x ^= x >>> 15;
        x *= 0x846CA68B;
        x ^= x >>> 16;
        return x;
    }

    /**
     * 32 random bits for element {@code index} under {@code seed}: a pure function, so every element of a tensor
     * gets its own bits without a generator to share between GPU threads, and the same (seed, index) always gives
     * the same bits.
     */
    public static int randomBits(int seed, long index) {
        return hash(seed ^ hash((int) index ^ hash((int) (index >>> 32) + 0x9E3779B9)));
    }
    // end::random[]

    // tag::sr[]
    /**
     * fp32 -> bf16, stochastically. The 16 bits bf16 drops, read as an integer d in [0, 65536), say how far x lies
     * from the bf16 below it (in magnitude) towards the one above: a fraction d / 65536. Adding 16 random bits r and
     * then dropping the low 16 carries into the kept part exactly when d + r >= 65536: for exactly d of the 65536
     * values r can take. So the magnitude rounds up with probability d / 65536, down otherwise.
     */
    public static short toBf16(float value, int random) {
        if (!Float.isFinite(value)) return Formats.toBf16(value); // inf and NaN: nothing to round
        int bits = Float.floatToRawIntBits(value);
        int rounded = (bits + (random & 0xFFFF)) >>> 16;
        if ((rounded & 0x7F80) == 0x7F80) return Formats.toBf16(value); // carried into infinity: round to nearest
        return (short) rounded;
    }

    /** Round stochastically, then widen: the float a bf16 tensor holds after a stochastically rounded store. */
    public static float roundToBf16(float value, int random) {
        return Formats.fromBf16(toBf16(value, random));
    }
    // end::sr[]
}
