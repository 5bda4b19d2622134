package dev.llmc4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Grouped-query attention equals multi-head attention with every key/value head repeated for its query heads. */
class CausalSelfAttentionTest {
    static final int B = 2, T = 5, NH = 4, NKV = 2, HS = 3, GROUP = NH / NKV;
    static final int C = NH * HS, GQA_ROW = (NH + 2 * NKV) * HS, MHA_ROW = 3 * C;

    @Test
    void gqaEqualsRepeatedHeads() {
        // the index arithmetic of grouped-query attention is what is checked here, so both calls run the plain
        // loops (the vectorized multi-head kernel has its own test against them: VectorizedCpuKernelsTest)
        try (var arena = Arena.ofShared()) {
            var random = new Random(3);
            MemorySegment gqa = arena.allocate(4L * B * T * GQA_ROW), mha = arena.allocate(4L * B * T * MHA_ROW);
            for (int r = 0; r < B * T; r++) {
                for (int i = 0; i < GQA_ROW; i++)
                    Floats.set(gqa, (long) r * GQA_ROW + i, (float) random.nextGaussian());
                for (int h = 0; h < NH; h++) {
                    for (int i = 0; i < HS; i++) {
                        int kv = h / GROUP;
                        Floats.set(
                                mha, (long) r * MHA_ROW + h * HS + i, Floats.get(gqa, (long) r * GQA_ROW + h * HS + i));
                        Floats.set(
                                mha,
                                (long) r * MHA_ROW + C + h * HS + i,
                                Floats.get(gqa, (long) r * GQA_ROW + C + kv * HS + i));
                        Floats.set(
                                mha,
                                (long) r * MHA_ROW + 2 * C + h * HS + i,
                                Floats.get(gqa, (long) r * GQA_ROW + C + NKV * HS + kv * HS + i));
                    }
                }
            }
            long att = (long) B * NH * T * T;
            MemorySegment outG = arena.allocate(4L * B * T * C), outM = arena.allocate(4L * B * T * C);
            MemorySegment attG = arena.allocate(4 * att), attM = arena.allocate(4 * att);
            CausalSelfAttention.forward(outG, arena.allocate(4 * att), attG, gqa, B, T, NH, NKV, HS);
            CausalSelfAttention.forward(outM, arena.allocate(4 * att), attM, mha, B, T, C, NH);
            for (long i = 0; i < (long) B * T * C; i++) assertEquals(Floats.get(outM, i), Floats.get(outG, i));

            MemorySegment dout = arena.allocate(4L * B * T * C);
            for (long i = 0; i < (long) B * T * C; i++) Floats.set(dout, i, (float) random.nextGaussian());
            MemorySegment dG = arena.allocate(4L * B * T * GQA_ROW), dM = arena.allocate(4L * B * T * MHA_ROW);
            CausalSelfAttention.backward(
                    dG, arena.allocate(4 * att), arena.allocate(4 * att), dout, gqa, attG, B, T, NH, NKV, HS);
            CausalSelfAttention.backward(
                    dM, arena.allocate(4 * att), arena.allocate(4 * att), dout, mha, attM, B, T, C, NH);
            for (int r = 0; r < B * T; r++) {
                for (int h = 0; h < NH; h++) {
                    for (int i = 0; i < HS; i++) {
                        assertEquals(
                                Floats.get(dM, (long) r * MHA_ROW + h * HS + i),
                                Floats.get(dG, (long) r * GQA_ROW + h * HS + i),
                                1e-6);
                    }
                }
                for (int kv = 0; kv < NKV; kv++) {
                    for (int i = 0; i < HS; i++) { // a shared key/value head collects the gradients of its query heads
                        double dk = 0, dv = 0;
                        for (int h = kv * GROUP; h < (kv + 1) * GROUP; h++) {
                            dk += Floats.get(dM, (long) r * MHA_ROW + C + h * HS + i);
                            dv += Floats.get(dM, (long) r * MHA_ROW + 2 * C + h * HS + i);
                        }
                        assertEquals(dk, Floats.get(dG, (long) r * GQA_ROW + C + kv * HS + i), 1e-5);
                        assertEquals(dv, Floats.get(dG, (long) r * GQA_ROW + C + NKV * HS + kv * HS + i), 1e-5);
                    }
                }
            }
        }
    }
}
