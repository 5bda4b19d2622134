package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/** ZeRO-1's model side: AdamW on a shard of the flat parameter vector, with moments for the shard only. */
class ShardedUpdateTest {

    private static float at(MemorySegment floats, long i) {
        return floats.getAtIndex(ValueLayout.JAVA_FLOAT, i);
    }

    @Test
    void shardUpdateEqualsTheFullUpdateOnTheShardAndLeavesTheRestAlone() {
        int T = 8;
        int[] x = GPT2TrainingTest.randomTokens(2 * T, 96, 1), y = GPT2TrainingTest.randomTokens(2 * T, 96, 2);
        try (var full = GPT2.randomInit(GPT2TrainingTest.TINY); var sharded = GPT2.randomInit(GPT2TrainingTest.TINY)) {
            long N = full.numParameters();
            // a shard that starts inside wte and ends inside the layers: every tensor boundary case
            long offset = 1000, count = N / 2;
            sharded.shardOptimizerState(offset, count);
            float[] before = sharded.parameters().toArray(ValueLayout.JAVA_FLOAT);
            for (int step = 1; step <= 2; step++) {
                for (var model : new GPT2[] {full, sharded}) {
                    model.zeroGrad();
                    model.forward(x, y, 2, T);
                    model.backward(1);
                }
                full.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
                sharded.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
                // put back what only "other ranks" would update, as the all-gather does
                for (long i = 0; i < N; i++) {
                    if (i < offset || i >= offset + count) {
                        assertEquals(before[(int) i], at(sharded.parameters(), i), "parameter " + i + " outside the shard moved");
                        sharded.parameters().setAtIndex(ValueLayout.JAVA_FLOAT, i, at(full.parameters(), i));
                    }
                }
                before = sharded.parameters().toArray(ValueLayout.JAVA_FLOAT);
            }
            assertEquals(count * Float.BYTES, sharded.adamFirstMoments().byteSize());
            for (long i = offset; i < offset + count; i++) {
                assertEquals(at(full.parameters(), i), at(sharded.parameters(), i), "parameter " + i);
                assertEquals(at(full.adamFirstMoments(), i), at(sharded.adamFirstMoments(), i - offset), "m " + i);
                assertEquals(at(full.adamSecondMoments(), i), at(sharded.adamSecondMoments(), i - offset), "v " + i);
            }
            double norm = full.gradientNorm();
            double split = full.gradientSquareSum(0, offset) + full.gradientSquareSum(offset, N - offset);
            assertEquals(norm * norm, split, 1e-6 * norm * norm);
            assertThrows(IllegalStateException.class, () -> sharded.shardOptimizerState(0, N), "only before the first update");
        }
    }
}
