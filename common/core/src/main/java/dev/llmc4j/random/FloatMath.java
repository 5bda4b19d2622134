package dev.llmc4j.random;

/**
 * The single-precision log, sin and cos that PyTorch's x86 CPU {@code normal_} uses (the AVX2 Box-Muller kernel
 * built on the Cephes-derived avx_mathfun routines, compiled with fused multiply-adds), restated operation by
 * operation so that our normals are bit-identical to torch's. Correctly rounded functions differ from these in
 * the last bit for about a third of the values.
 */
final class FloatMath {
    private FloatMath() {}

    private static final float SQRT_HALF = 0.707106781186547524f;
    private static final float MIN_NORMAL = Float.intBitsToFloat(0x00800000);

    /** Natural log: split x = m * 2^e with m in [sqrt(1/2), sqrt(2)), then a degree-9 polynomial in m - 1. */
    static float log(float x) {
        if (x <= 0) return Float.NaN;
        x = Math.max(x, MIN_NORMAL);
        int bits = Float.floatToRawIntBits(x);
        float exponent = (float) ((bits >>> 23) - 0x7f) + 1f;
        x = Float.intBitsToFloat((bits & ~0x7f800000) | Float.floatToRawIntBits(0.5f)); // mantissa in [0.5, 1)
        boolean small = x < SQRT_HALF;
        float extra = small ? x : 0f;
        x = x - 1f;
        exponent = exponent - (small ? 1f : 0f);
        x = x + extra; // 2m - 1 when m < sqrt(1/2), else m - 1
        float z = x * x;
        float y = 7.0376836292E-2f;
        y = Math.fma(y, x, -1.1514610310E-1f);
        y = Math.fma(y, x, 1.1676998740E-1f);
        y = Math.fma(y, x, -1.2420140846E-1f);
        y = Math.fma(y, x, 1.4249322787E-1f);
        y = Math.fma(y, x, -1.6668057665E-1f);
        y = Math.fma(y, x, 2.0000714765E-1f);
        y = Math.fma(y, x, -2.4999993993E-1f);
        y = Math.fma(y, x, 3.3333331174E-1f);
        y = y * x;
        y = Math.fma(y, z, exponent * -2.12194440e-4f);
        y = y - z * 0.5f;
        x = x + y;
        return Math.fma(exponent, 0.693359375f, x);
    }

    static float sin(float x) {
        return sinCos(x, true);
    }

    static float cos(float x) {
        return sinCos(x, false);
    }

    // Reduce |x| by multiples of pi/4 (pi/4 split in three parts for extra precision), then pick the sine or the
    // cosine polynomial and the sign from the octant.
    private static float sinCos(float x, boolean wantSin) {
        int signSin = Float.floatToRawIntBits(x) & 0x80000000;
        x = Math.abs(x);
        int octant = ((int) (x * 1.27323954473516f) + 1) & ~1; // 4/pi
        float y = (float) octant;
        x = Math.fma(y, -0.78515625f, x);
        x = Math.fma(y, -2.4187564849853515625e-4f, x);
        x = Math.fma(y, -3.77489497744594108e-8f, x);
        signSin ^= (octant & 4) << 29;
        int signCos = (~(octant - 2) & 4) << 29;
        boolean sinFromSinePolynomial = (octant & 2) == 0;

        float z = x * x;
        float cosine = 2.443315711809948E-005f;
        cosine = Math.fma(cosine, z, -1.388731625493765E-003f);
        cosine = Math.fma(cosine, z, 4.166664568298827E-002f);
        cosine = cosine * z;
        cosine = Math.fma(cosine, z, -(z * 0.5f));
        cosine = cosine + 1f;
        float sine = -1.9515295891E-4f;
        sine = Math.fma(sine, z, 8.3321608736E-3f);
        sine = Math.fma(sine, z, -1.6666654611E-1f);
        sine = sine * z;
        sine = Math.fma(sine, x, x);

        float value = wantSin == sinFromSinePolynomial ? sine : cosine;
        int sign = wantSin ? signSin : signCos;
        return Float.intBitsToFloat(Float.floatToRawIntBits(value) ^ sign);
    }
}
