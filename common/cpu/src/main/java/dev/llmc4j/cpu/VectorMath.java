package dev.llmc4j.cpu;

import java.lang.foreign.MemorySegment;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * exp and tanh on float vectors from plain lane arithmetic (multiply, add, convert, shift), so that a result does
 * not depend on whether the JIT has compiled the calling method yet. The Vector API's own {@code EXP} and
 * {@code TANH} call a vector math library once compiled but a Java fallback before, and the two can differ in the
 * last bit: a training run would then depend on JIT timing, and a resumed run could drift from an uninterrupted one.
 * The same goes for {@code reduceLanes(ADD)}, whose order of additions is unspecified (sequential in the fallback,
 * a tree once compiled): {@link #sum} adds the lanes in one fixed tree order.
 * Accuracy: exp within 2 ulp over [-87, 88]; tanh within 2.5e-7 absolute (a few ulp of values near 1). Also here:
 * {@link #transpose}, a square block of floats transposed in registers.
 */
public final class VectorMath {
    private VectorMath() {}

    /**
     * The vector shape every vectorized kernel uses: -Dllmc.vectorBits=128|256|512, default the machine's preferred
     * species (read once, when the class loads: a JVM-wide constant, never switched while running).
     */
    public static final VectorSpecies<Float> SPECIES = switch (System.getProperty("llmc.vectorBits", "")) {
        case "128" -> FloatVector.SPECIES_128;
        case "256" -> FloatVector.SPECIES_256;
        case "512" -> FloatVector.SPECIES_512;
        default -> FloatVector.SPECIES_PREFERRED;
    };

    /** Floats per vector of {@link #SPECIES}. */
    public static final int LANES = SPECIES.length();

    /** The lanes of a vector starting at index i of a row of n floats that are inside the row. */
    public static VectorMask<Float> inRow(int i, int n) {
        return SPECIES.indexInRange(i, n);
    }

    private static final ByteOrder ORDER = ByteOrder.nativeOrder();

    // for transpose: the lanes of two rows r and r + s that make the new rows, for each bit s of a lane number
    private static final float[] SWAP_LOW = swapLanes(false), SWAP_HIGH = swapLanes(true);

    private static float[] swapLanes(boolean high) {
        var lanes = new float[LANES * LANES];
        for (int s = 1; s < LANES; s <<= 1)
            for (int i = 0; i < LANES; i++) // lanes 0..LANES-1 pick row r's lane, LANES.. row r + s's
            lanes[s * LANES + i] = (i & s) == 0 ? (high ? i + s : i) : (high ? LANES + i : LANES + i - s);
        return lanes;
    }

    /**
     * block[i * LANES + r] = src[from + r * stride + i] for r, i < LANES (float indices): LANES rows of LANES floats
     * read as vectors, then {@link #transpose}d. Row j of the block is then column j of the rows, ready to be stored
     * as one vector. Every transposing copy of the kernels goes through it (the forward's inp and tile, attention's
     * keys and values), the ragged edges one float at a time.
     */
    static void loadTransposed(float[] block, MemorySegment src, long from, long stride) {
        for (int r = 0; r < LANES; r++)
            FloatVector.fromMemorySegment(SPECIES, src, 4 * (from + r * stride), ORDER)
                    .intoArray(block, r * LANES);
        transpose(block);
    }

    /**
     * Transposes a square block of LANES x LANES floats in place, block[r * LANES + i] <-> block[i * LANES + r]:
     * round by round, each round swaps one bit of the row number with the same bit of the lane number, for every
     * pair of rows r, r + s that differ in that bit, with two two-row lane selections (`selectFrom`; at 512 bits 4
     * rounds of 16 selections for 256 floats, each round's rows loaded from and stored back to the block, in L1),
     * where one float at a time takes 256 loads and stores at strides.
     */
    static void transpose(float[] block) {
        for (int s = LANES / 2; s >= 1; s >>= 1) {
            var low = FloatVector.fromArray(SPECIES, SWAP_LOW, s * LANES);
            var high = FloatVector.fromArray(SPECIES, SWAP_HIGH, s * LANES);
            for (int r = 0; r < LANES; r++) {
                if ((r & s) != 0) continue;
                var upper = FloatVector.fromArray(SPECIES, block, r * LANES);
                var lower = FloatVector.fromArray(SPECIES, block, (r + s) * LANES);
                low.selectFrom(upper, lower).intoArray(block, r * LANES);
                high.selectFrom(upper, lower).intoArray(block, (r + s) * LANES);
            }
        }
    }

    private static final float LOG2E = 1.44269504088896341f;
    private static final float LN2_HIGH = 0.693359375f; // ln 2 split in two so n*ln2 is exact in the high part
    private static final float LN2_LOW = -2.12194440e-4f;

    // 1.5 * 2^23: a float this size has no fraction bits, so adding it rounds to a whole number (to nearest), and the
    // whole number sits in the low bits of the sum's bit pattern
    private static final float ROUNDING = 12582912.0f;

    /**
     * e^x lane by lane: x = n ln2 + r with n = round(x log2 e) and |r| <= ln2/2, e^r by a degree-6 polynomial, times
     * 2^n from the exponent bits. n comes from one FMA that adds {@link #ROUNDING} (whose sum also holds n in its low
     * bits, for 2^n) and one subtraction: 17 vector operations in all where truncating, converting back and stepping
     * down below 0 took 21 (the same n but at exact halves). One thread over a 32k row in L2: 0.32 ns a float against
     * 0.46 to 0.61.
     */
    public static FloatVector exp(FloatVector x) {
        x = x.max(-87.3f).min(88.3f);
        var shifted = x.fma(LOG2E, ROUNDING); // ROUNDING + n
        var n = shifted.sub(ROUNDING);
        var r = n.fma(FloatVector.broadcast(SPECIES, -LN2_HIGH), x);
        r = n.fma(FloatVector.broadcast(SPECIES, -LN2_LOW), r);
        var p = r.fma(1.9875691500E-4f, 1.3981999507E-3f);
        p = p.fma(r, FloatVector.broadcast(SPECIES, 8.3334519073E-3f));
        p = p.fma(r, FloatVector.broadcast(SPECIES, 4.1665795894E-2f));
        p = p.fma(r, FloatVector.broadcast(SPECIES, 1.6666665459E-1f));
        p = p.fma(r, FloatVector.broadcast(SPECIES, 5.0000001201E-1f));
        var expR = p.fma(r.mul(r), r).add(1f);
        // ROUNDING's bits + n + 127, shifted left by 23: all but the low 9 bits fall off, which leaves n + 127 in the
        // exponent field (n from -126 to 127 after the clamp above), the float 2^n
        var bits = (IntVector) shifted.reinterpretAsInts();
        return expR.mul(
                (FloatVector) bits.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats());
    }

    /** tanh u = 1 - 2 / (e^(2u) + 1): saturates to ±1 where e^(2u) overflows or vanishes. */
    public static FloatVector tanh(FloatVector u) {
        var e = exp(u.mul(2f));
        return FloatVector.broadcast(SPECIES, 1f)
                .sub(FloatVector.broadcast(SPECIES, 2f).div(e.add(1f)));
    }

    // lane i swapped with lane i ^ d, for d = LANES/2, LANES/4, ..., 1: the butterfly of a fixed-order tree sum
    private static final VectorShuffle<Float>[] BUTTERFLY = butterfly();

    @SuppressWarnings("unchecked")
    private static VectorShuffle<Float>[] butterfly() {
        int steps = Integer.numberOfTrailingZeros(SPECIES.length());
        var shuffles = (VectorShuffle<Float>[]) new VectorShuffle<?>[steps];
        for (int k = 0; k < steps; k++) {
            int distance = SPECIES.length() >> (k + 1);
            shuffles[k] = VectorShuffle.fromOp(SPECIES, i -> i ^ distance);
        }
        return shuffles;
    }

    /** The sum of the lanes, always added in the same tree order (so the same bits, compiled or not). */
    public static float sum(FloatVector v) {
        for (var shuffle : BUTTERFLY) v = v.add(v.rearrange(shuffle));
        return v.lane(0);
    }
}
