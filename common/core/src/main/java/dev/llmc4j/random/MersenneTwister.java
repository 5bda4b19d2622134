package dev.llmc4j.random;

/**
 * The 32-bit Mersenne Twister exactly as PyTorch's CPU generator runs it (and llm.c's rand.h), so that a seed
 * gives the same random integers, uniforms and normals as {@code torch.Generator().manual_seed(seed)}.
 *
 * <p>Uniform floats take the low 24 bits of one draw; uniform doubles the low 53 bits of two draws (first draw
 * high). Normals follow torch's {@code normal_}: Box-Muller over chunks of 16 uniforms for n >= 16 (in float, with
 * torch's x86 math functions, see {@link FloatMath}), the pairwise double-precision path with a cached second
 * value for n < 16.
 */
public final class MersenneTwister {
    /** Words of state: a saved position {@code next} indexes them, {@code left} counts the draws before a twist. */
    public static final int STATE_WORDS = 624;

    private static final int N = STATE_WORDS;
    private static final int M = 397;
    private static final int MATRIX_A = 0x9908b0df;
    private static final int UPPER_MASK = 0x80000000;
    private static final int LOWER_MASK = 0x7fffffff;

    private final int[] state = new int[N];
    private int left;
    private int next;

    public MersenneTwister(long seed) {
        manualSeed(seed);
    }

    public void manualSeed(long seed) {
        state[0] = (int) seed;
        for (int j = 1; j < N; j++) {
            int previous = state[j - 1];
            state[j] = 1812433253 * (previous ^ (previous >>> 30)) + j;
        }
        left = 1;
        next = 0;
    }

    private void twist() {
        for (int j = 0; j < N - M; j++) {
            int y = (state[j] & UPPER_MASK) | (state[j + 1] & LOWER_MASK);
            state[j] = state[j + M] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
        }
        for (int j = N - M; j < N - 1; j++) {
            int y = (state[j] & UPPER_MASK) | (state[j + 1] & LOWER_MASK);
            state[j] = state[j + (M - N)] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
        }
        int y = (state[N - 1] & UPPER_MASK) | (state[0] & LOWER_MASK);
        state[N - 1] = state[M - 1] ^ (y >>> 1) ^ ((y & 1) != 0 ? MATRIX_A : 0);
        left = N;
        next = 0;
    }

    /** The next 32 random bits, as an unsigned value in a long. */
    public long randInt32() {
        if (--left <= 0) twist();
        int y = state[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        y ^= y >>> 18;
        return y & 0xFFFF_FFFFL;
    }

    /** Two draws, the first one the high word (torch's order). */
    public long randInt64() {
        long high = randInt32();
        long low = randInt32();
        return (high << 32) | low;
    }

    /** Uniform in [0, 1) from the low 24 bits of one draw. */
    public float randFloat32() {
        return (randInt32() & 0xFFFFFF) * (1.0f / (1 << 24));
    }

    /** Uniform in [0, 1) from the low 53 bits of two draws. */
    public double randFloat64() {
        return (randInt64() & ((1L << 53) - 1)) * (1.0 / (1L << 53));
    }

    /** torch's {@code Tensor.uniform_(from, to)} on float: from + (to - from) * u. */
    public void uniform(float[] out, float from, float to) {
        for (int i = 0; i < out.length; i++) out[i] = randFloat32() * (to - from) + from;
    }

    /** Fills {@code out[offset, offset+n)} with N(mean, std) exactly as torch's {@code normal_} does. */
    public void normal(float[] out, int offset, int n, float mean, float std) {
        if (n >= 16) {
            normalFill(out, offset, n, mean, std);
        } else {
            normalSmall(out, offset, n, mean, std);
        }
    }

    public void normal(float[] out, float mean, float std) {
        normal(out, 0, out.length, mean, std);
    }

    // n >= 16: all uniforms first, then Box-Muller over each chunk of 16 (first 8 = radius source, last 8 = angle).
    private void normalFill(float[] data, int offset, int n, float mean, float std) {
        for (int i = 0; i < n; i++) data[offset + i] = randFloat32();
        for (int i = 0; i + 16 <= n; i += 16) boxMuller16(data, offset + i, mean, std);
        if (n % 16 != 0) {
            // the tail: 16 fresh uniforms into the last 16 slots, transformed the same way (overwrites the overlap)
            int last = offset + n - 16;
            for (int i = 0; i < 16; i++) data[last + i] = randFloat32();
            boxMuller16(data, last, mean, std);
        }
    }

    private static void boxMuller16(float[] data, int base, float mean, float std) {
        for (int t = 0; t < 8; t++) {
            float u1 = 1 - data[base + t];
            float u2 = data[base + t + 8];
            float radius = (float) Math.sqrt(-2f * FloatMath.log(u1));
            float theta = TWO_PI * u2;
            data[base + t] = Math.fma(radius * FloatMath.cos(theta), std, mean);
            data[base + t + 8] = Math.fma(radius * FloatMath.sin(theta), std, mean);
        }
    }

    private static final float TWO_PI = (float) (2 * Math.PI);

    private double cachedNormal;
    private boolean hasCachedNormal;

    // n < 16: torch's scalar path, normal_distribution<double>: Box-Muller in double precision on two 53-bit
    // uniforms, the cosine value returned, the sine value cached for the next call; each result cast to float.
    private void normalSmall(float[] data, int offset, int n, float mean, float std) {
        for (int i = 0; i < n; i++) {
            double value;
            if (hasCachedNormal) {
                hasCachedNormal = false;
                value = cachedNormal;
            } else {
                double u1 = randFloat64();
                double u2 = randFloat64();
                double radius = Math.sqrt(-2.0 * Math.log(1.0 - u2));
                double theta = 2.0 * Math.PI * u1;
                cachedNormal = radius * Math.sin(theta);
                hasCachedNormal = true;
                value = radius * Math.cos(theta);
            }
            data[offset + i] = (float) (value * std + mean);
        }
    }

    /**
     * Everything the generator's future output depends on: the 624 state words, the twist counters and the cached
     * second normal of the scalar path. Restoring it continues the stream exactly where {@link #saveState()} left it.
     */
    public record State(int[] words, int left, int next, boolean hasCachedNormal, double cachedNormal) {
        public State {
            if (words.length != N)
                throw new IllegalArgumentException("Mersenne Twister state needs " + N + " words, got " + words.length);
            words = words.clone();
        }

        @Override
        public int[] words() {
            return words.clone();
        }
    }

    public State saveState() {
        return new State(state, left, next, hasCachedNormal, cachedNormal);
    }

    public void restoreState(State saved) {
        System.arraycopy(saved.words, 0, state, 0, N);
        left = saved.left;
        next = saved.next;
        hasCachedNormal = saved.hasCachedNormal;
        cachedNormal = saved.cachedNormal;
    }
}
