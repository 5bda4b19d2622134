package dev.llmc4j.random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

/** Saving and restoring the xorshift's state, as a state file does for stochastic rounding. */
class XorShiftTest {

    @Test
    void aRestoredStateDrawsTheSameNumbers() {
        var rng = new XorShift(13371337);
        rng.nextInt32();
        long saved = rng.state();
        long a = rng.nextInt32(), b = rng.nextInt32();
        var other = new XorShift(1);
        other.setState(saved);
        assertEquals(a, other.nextInt32());
        assertEquals(b, other.nextInt32());
        assertEquals(rng.state(), other.state());
    }

    @Test
    void zeroIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new XorShift(5).setState(0));
    }
}
