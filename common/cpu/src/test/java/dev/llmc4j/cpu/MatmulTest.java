package dev.llmc4j.cpu;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** The Vector API matmul must equal the baseline to fp32 rounding, on ragged shapes too. */
public class MatmulTest {

    public static MemorySegment random(Arena arena, long n, Random random) {
        var segment = arena.allocate(n * Float.BYTES, 64);
        for (long i = 0; i < n; i++) segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) random.nextGaussian());
        return segment;
    }

    public static double relativeError(MemorySegment a, MemorySegment b, long n) {
        double diff = 0, norm = 0;
        for (long i = 0; i < n; i++) {
            double x = a.getAtIndex(ValueLayout.JAVA_FLOAT, i), y = b.getAtIndex(ValueLayout.JAVA_FLOAT, i);
            diff += (x - y) * (x - y);
            norm += y * y;
        }
        return Math.sqrt(diff / norm);
    }

    @ParameterizedTest(name = "BT={0} C={1} OC={2}")
    @CsvSource({
        "1,1,1",
        "3,5,7",
        "4,8,4",
        "8,16,12",
        "13,33,17",
        "64,64,96",
        "37,130,75",
        "256,768,20",
        "263,257,67",
        "7,1031,130",
        "300,70,521" // several k blocks (256), a leftover row of the 2-row tile
    })
    void vectorEqualsBaseline(int BT, int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(BT * 1000 + C * 10 + OC);
            var inp = random(arena, (long) BT * C, random);
            var weight = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            var dout = random(arena, (long) BT * OC, random);
            MemorySegment[] outs = new MemorySegment[2],
                    dinps = new MemorySegment[2],
                    dweights = new MemorySegment[2],
                    dbiases = new MemorySegment[2];
            var kernels = new Matmul[] {Matmul.BASELINE, Matmul.VECTOR};
            for (int k = 0; k < 2; k++) {
                outs[k] = arena.allocate((long) BT * OC * Float.BYTES, 64);
                dinps[k] = random(arena, (long) BT * C, new Random(7)); // same nonzero start: backward accumulates
                dweights[k] = random(arena, (long) OC * C, new Random(8));
                dbiases[k] = random(arena, OC, new Random(9));
                kernels[k].forward(outs[k], inp, weight, bias, BT, C, OC);
                kernels[k].backward(dinps[k], dweights[k], dbiases[k], dout, inp, weight, BT, C, OC);
            }
            assertTrue(relativeError(outs[1], outs[0], (long) BT * OC) < 1e-6, "forward");
            assertTrue(relativeError(dinps[1], dinps[0], (long) BT * C) < 1e-6, "dinp");
            assertTrue(relativeError(dweights[1], dweights[0], (long) OC * C) < 1e-6, "dweight");
            assertTrue(relativeError(dbiases[1], dbiases[0], OC) < 1e-6, "dbias");
        }
    }

    /** The fast forward's epilogue covers every output exactly once, after the output is written (here: doubles it). */
    @ParameterizedTest(name = "BT={0} C={1} OC={2}")
    @CsvSource({"1,1,1", "5,3,7", "300,20,200", "257,9,97"})
    void epilogueSeesEveryOutputOnce(int BT, int C, int OC) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(BT + C + OC);
            var inp = random(arena, (long) BT * C, random);
            var weight = random(arena, (long) OC * C, random);
            var bias = random(arena, OC, random);
            var expected = arena.allocate((long) BT * OC * Float.BYTES, 64);
            var doubled = arena.allocate((long) BT * OC * Float.BYTES, 64);
            Matmul.BASELINE.forward(expected, inp, weight, bias, BT, C, OC);
            for (long i = 0; i < (long) BT * OC; i++)
                expected.setAtIndex(ValueLayout.JAVA_FLOAT, i, 2 * expected.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            Matmul.VECTOR.forward(doubled, inp, weight, bias, BT, C, OC, (btStart, btEnd, oStart, oEnd) -> {
                for (long bt = btStart; bt < btEnd; bt++)
                    for (long o = oStart; o < oEnd; o++) {
                        long i = bt * OC + o;
                        doubled.setAtIndex(
                                ValueLayout.JAVA_FLOAT, i, 2 * doubled.getAtIndex(ValueLayout.JAVA_FLOAT, i));
                    }
            });
            assertTrue(relativeError(doubled, expected, (long) BT * OC) < 1e-6, "epilogue");
        }
    }
}
