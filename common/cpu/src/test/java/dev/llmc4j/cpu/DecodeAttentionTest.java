package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.MatmulTest.random;
import static dev.llmc4j.cpu.MatmulTest.relativeError;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.foreign.Arena;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** One token's attention over the KV cache: the vector version must equal the plain loops, GQA and ragged heads too. */
class DecodeAttentionTest {

    @ParameterizedTest(name = "NH={0} group={1} hs={2} last={3}")
    @CsvSource({"1,1,1,0", "2,1,5,3", "4,2,16,7", "12,1,64,33", "8,4,24,100", "3,3,70,12"})
    void vectorEqualsBaseline(int NH, int group, int hs, int last) {
        int kvStride = NH / group * hs + 3; // cache rows with room to spare, as a layer's slice of (maxT, kvC) has not
        try (var arena = Arena.ofShared()) {
            var random = new Random(NH * 1000L + hs * 10 + last);
            var q = random(arena, 7 + (long) NH * hs, random); // the query 7 floats in, as in a qkv row
            var keys = random(arena, (long) (last + 1) * kvStride, random);
            var values = random(arena, (long) (last + 1) * kvStride, random);
            var plain = arena.allocate((long) NH * hs * Float.BYTES, 64);
            var fast = arena.allocate((long) NH * hs * Float.BYTES, 64);
            DecodeAttention.forwardBaseline(plain, q, 7, keys, values, kvStride, NH, group, hs, last);
            DecodeAttention.forward(fast, q, 7, keys, values, kvStride, NH, group, hs, last);
            assertTrue(
                    relativeError(fast, plain, (long) NH * hs) < 1e-5,
                    "relative error " + relativeError(fast, plain, (long) NH * hs));
        }
    }
}
