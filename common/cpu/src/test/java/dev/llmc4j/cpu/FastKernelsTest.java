package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.MatmulTest.random;
import static dev.llmc4j.cpu.MatmulTest.relativeError;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * The fast softmax/cross-entropy, AdamW and attention equal their plain versions to fp32 rounding, on shapes that
 * are not multiples of the vector width. Each case runs the plain kernel and the fast one on copies of the same
 * inputs (outputs start nonzero where the kernels accumulate) and compares every buffer they write.
 */
public class FastKernelsTest {

    @AfterEach
    void restore() {
        Kernels.useFast(true);
    }

    /** Runs body on copies of the buffers, plain then fast, and compares all of them. */
    public static void assertSame(MemorySegment[] buffers, Consumer<MemorySegment[]> body, double tolerance, String what) {
        try (var arena = Arena.ofShared()) { // shared: the kernels run on our pool's threads
            MemorySegment[][] copies = new MemorySegment[2][buffers.length];
            for (int version = 0; version < 2; version++) {
                for (int k = 0; k < buffers.length; k++) {
                    copies[version][k] = arena.allocate(buffers[k].byteSize(), 64).copyFrom(buffers[k]);
                }
                Kernels.useFast(version == 1);
                body.accept(copies[version]);
            }
            Kernels.useFast(true);
            for (int k = 0; k < buffers.length; k++) {
                long n = buffers[k].byteSize() / Float.BYTES;
                double error = relativeError(copies[1][k], copies[0][k], n);
                assertTrue(error < tolerance, what + " buffer " + k + ": relative error " + error);
            }
        }
    }

    @ParameterizedTest(name = "BT={0} V={1} Vp={2}")
    @CsvSource({"1,1,1", "3,5,8", "4,37,40", "5,100,128", "2,1000,1003"})
    void softmaxAndCrossEntropy(int BT, int V, int Vp) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(V);
            var logits = random(arena, (long) BT * Vp, random);
            var probs = random(arena, (long) BT * Vp, random);
            var dlogits = random(arena, (long) BT * Vp, random);
            var dlosses = random(arena, BT, random);
            int[] targets = random.ints(BT, 0, V).toArray();
            assertSame(new MemorySegment[] {probs, logits}, b -> SoftmaxCrossEntropy.softmaxForward(b[0], b[1], BT, V, Vp), 1e-6, "softmax");
            SoftmaxCrossEntropy.softmaxForward(probs, logits, BT, V, Vp);
            assertSame(new MemorySegment[] {dlogits, dlosses, probs},
                    b -> SoftmaxCrossEntropy.crossentropySoftmaxBackward(b[0], b[1], b[2], targets, BT, V, Vp), 1e-6, "crossentropy backward");
        }
    }

    @ParameterizedTest(name = "offset={0} count={1}")
    @CsvSource({"0,1", "3,17", "5,100", "0,1000", "16,33"})
    void adamw(int offset, int count) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(count);
            long n = offset + count + 5;
            var params = random(arena, n, random);
            var grads = random(arena, n, random);
            var m = random(arena, n, random);
            var v = random(arena, n, random);
            for (long i = 0; i < n; i++) v.setAtIndex(ValueLayout.JAVA_FLOAT, i, Math.abs(v.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
            var step = new AdamW.Step(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, 3);
            assertSame(new MemorySegment[] {params, grads, m, v}, b -> AdamW.update(b[0], b[1], b[2], b[3], offset, count, step), 1e-6, "adamw");
        }
    }

    @ParameterizedTest(name = "B={0} T={1} C={2} NH={3}")
    @CsvSource({"1,1,4,1", "2,5,12,3", "1,17,40,2", "2,9,64,4", "1,33,96,2"})
    void attention(int B, int T, int C, int NH) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(T * 100 + C);
            long btc = (long) B * T * C, att = (long) B * NH * T * T;
            var inp = random(arena, 3 * btc, random);
            var out = random(arena, btc, random);
            var preatt = random(arena, att, random);
            var attention = random(arena, att, random);
            assertSame(new MemorySegment[] {out, preatt, attention, inp},
                    b -> Attention.forward(b[0], b[1], b[2], b[3], B, T, C, NH), 1e-6, "attention forward");
            Attention.forward(out, preatt, attention, inp, B, T, C, NH);
            var dinp = random(arena, 3 * btc, random);
            var dpreatt = random(arena, att, random);
            var datt = random(arena, att, random);
            var dout = random(arena, btc, random);
            assertSame(new MemorySegment[] {dinp, dpreatt, datt, dout, inp, attention},
                    b -> Attention.backward(b[0], b[1], b[2], b[3], b[4], b[5], B, T, C, NH), 1e-5, "attention backward");
        }
    }
}
