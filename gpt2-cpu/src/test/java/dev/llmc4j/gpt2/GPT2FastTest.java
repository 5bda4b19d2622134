package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.FastKernelsTest.assertSame;
import static dev.llmc4j.cpu.MatmulTest.random;

import dev.llmc4j.cpu.Kernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** GPT2.java's layers: the fast versions (GPT2Fast) equal the plain ones on ragged shapes. */
class GPT2FastTest {

    @AfterEach
    void restore() {
        Kernels.useFast(true);
    }

    @ParameterizedTest(name = "B={0} T={1} C={2}")
    @CsvSource({"1,1,1", "2,3,5", "1,7,17", "2,5,48", "3,4,100"})
    void layers(int B, int T, int C) {
        try (var arena = Arena.ofShared()) {
            var random = new Random(B * 1000 + T * 10 + C);
            long btc = (long) B * T * C, bt = (long) B * T;
            var inp = random(arena, btc, random);
            var out = random(arena, btc, random);
            var other = random(arena, btc, random);
            var weight = random(arena, C, random);
            var bias = random(arena, C, random);
            var mean = random(arena, bt, random);
            var rstd = random(arena, bt, random);
            int V = 11;
            var wte = random(arena, (long) V * C, random);
            var wpe = random(arena, (long) T * C, random);
            int[] tokens = random.ints(B * T, 0, V).toArray();
            tokens[0] = tokens[B * T - 1]; // a repeated token

            assertSame(new MemorySegment[] {out, mean, rstd, inp, weight, bias},
                    b -> GPT2.layernormForward(b[0], b[1], b[2], b[3], b[4], b[5], B, T, C), 1e-6, "layernorm forward");
            GPT2.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
            var dweight = random(arena, C, random);
            var dbias = random(arena, C, random);
            assertSame(new MemorySegment[] {other, dweight, dbias, out, inp, weight, mean, rstd},
                    b -> GPT2.layernormBackward(b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], B, T, C), 1e-6, "layernorm backward");

            for (long i = 0; i < btc; i++) inp.setAtIndex(ValueLayout.JAVA_FLOAT, i, 3 * inp.getAtIndex(ValueLayout.JAVA_FLOAT, i));
            assertSame(new MemorySegment[] {out, inp}, b -> GPT2.geluForward(b[0], b[1], btc), 1e-6, "gelu forward");
            assertSame(new MemorySegment[] {other, inp, out}, b -> GPT2.geluBackward(b[0], b[1], b[2], btc), 1e-6, "gelu backward");
            assertSame(new MemorySegment[] {out, inp, other}, b -> dev.llmc4j.cpu.Residual.forward(b[0], b[1], b[2], btc), 1e-7, "residual forward");
            assertSame(new MemorySegment[] {out, inp, other}, b -> dev.llmc4j.cpu.Residual.backward(b[0], b[1], b[2], btc), 1e-7, "residual backward");
            assertSame(new MemorySegment[] {out, wte, wpe}, b -> GPT2.encoderForward(b[0], tokens, b[1], b[2], B, T, C), 1e-7, "encoder forward");
            assertSame(new MemorySegment[] {wte, wpe, out}, b -> GPT2.encoderBackward(b[0], b[1], b[2], tokens, B, T, C), 1e-6, "encoder backward");
        }
    }
}
