package dev.llmc4j.random;

/**
 * llm.c's sampling generator: a 64-bit xorshift* ({@code random_u32}, {@code random_f32}). With the same seed
 * it reproduces llm.c's samples.
 */
public final class XorShift {
    private long state;

    public XorShift(long seed) {
        this.state = seed;
    }

    /** The whole state: with {@link #setState} it saves and restores the generator (llm.c's rng_state in a state file). */
    public long state() {
        return state;
    }

    /** Continues from a state {@link #state()} returned; 0 is refused, since xorshift stays at 0 forever from there. */
    public void setState(long state) {
        if (state == 0) throw new IllegalArgumentException("an xorshift state of 0 never changes again");
        this.state = state;
    }

    /** 32 random bits, unsigned, in a long. */
    public long nextInt32() {
        state ^= state >>> 12;
        state ^= state << 25;
        state ^= state >>> 27;
        return (state * 0x2545F4914F6CDD1DL) >>> 32;
    }

    /** Uniform in [0, 1) from the top 24 of 32 bits. */
    public float nextFloat() {
        return (nextInt32() >>> 8) / 16777216.0f;
    }
}
