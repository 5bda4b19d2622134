package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.train.OptimizerShard;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * ZeRO-1's model side for Llama 3: AdamW on one rank's pieces of every parameter slice (llm.c's 16-slot layout cut
 * per layer), with moments for those pieces only; the zero bias slots stay zero.
 */
class Llama3ShardedUpdateTest {
    private static final Llama3Config TINY = Llama3TrainingTest.TINY;

    private static float at(MemorySegment floats, long i) {
        return floats.getAtIndex(ValueLayout.JAVA_FLOAT, i);
    }

    @Test
    void slicesAreTheLayersOfTheSixteenSlots() {
        try (var model = new Llama3(TINY)) {
            var slices = model.parameterSlices();
            assertEquals(12 * TINY.numLayers() + 4, slices.size());
            assertEquals(ParameterSlice.perLayer(TINY.parameterSizes(), TINY.numLayers()), slices);
            long total = slices.stream().mapToLong(ParameterSlice::count).sum();
            assertEquals(TINY.numParameters(), total);
        }
    }

    @Test
    void shardUpdateEqualsTheFullUpdateOnThePiecesAndLeavesTheRestAlone() {
        int T = 8;
        int[] x = Llama3TrainingTest.randomTokens(2 * T, 96, 1), y = Llama3TrainingTest.randomTokens(2 * T, 96, 2);
        try (var full = Llama3.randomInit(TINY, 42); var sharded = Llama3.randomInit(TINY, 42)) {
            long N = full.numParameters();
            var shard = OptimizerShard.of(full.parameterSlices(), 1, 2); // rank 1 of 2: the second half of every slice
            boolean[] owned = new boolean[(int) N];
            for (var piece : shard.pieces())
                for (long i = piece.parameterOffset(); i < piece.parameterOffset() + piece.count(); i++) owned[(int) i] = true;
            sharded.shardOptimizerState(shard);
            float[] before = sharded.parameters().toArray(ValueLayout.JAVA_FLOAT);
            for (int step = 1; step <= 2; step++) {
                for (var model : new Llama3[] {full, sharded}) {
                    model.zeroGrad();
                    model.forward(x, y, 2, T);
                    model.backward(1);
                }
                full.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
                sharded.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
                // put back what only "other ranks" would update, as the all-gather does
                for (long i = 0; i < N; i++) {
                    if (!owned[(int) i]) {
                        assertEquals(before[(int) i], at(sharded.parameters(), i), "parameter " + i + " outside the shard moved");
                        sharded.parameters().setAtIndex(ValueLayout.JAVA_FLOAT, i, at(full.parameters(), i));
                    }
                }
                before = sharded.parameters().toArray(ValueLayout.JAVA_FLOAT);
            }
            assertEquals(N / 2 * Float.BYTES, sharded.adamFirstMoments().byteSize());
            assertEquals(N / 2 * Float.BYTES, sharded.adamSecondMoments().byteSize());
            for (var piece : shard.pieces()) {
                for (long j = 0; j < piece.count(); j++) {
                    long i = piece.parameterOffset() + j, s = piece.stateOffset() + j;
                    assertEquals(at(full.parameters(), i), at(sharded.parameters(), i), "parameter " + i);
                    assertEquals(at(full.adamFirstMoments(), i), at(sharded.adamFirstMoments(), s), "m " + i);
                    assertEquals(at(full.adamSecondMoments(), i), at(sharded.adamSecondMoments(), s), "v " + i);
                }
            }
            // the bias slots were skipped: still zero, parameters and moments
            long[] offsets = TINY.parameterOffsets(), sizes = TINY.parameterSizes();
            for (int slot = 0; slot < sizes.length; slot++) {
                if (!Llama3Config.isBiasSlot(slot)) continue;
                for (long i = offsets[slot]; i < offsets[slot] + sizes[slot]; i++) {
                    assertEquals(0f, at(sharded.parameters(), i), "bias slot " + slot);
                    assertEquals(0f, at(full.adamFirstMoments(), i), "m of bias slot " + slot);
                }
            }
            double norm = full.gradientNorm();
            double split = full.gradientSquareSum(OptimizerShard.of(full.parameterSlices(), 0, 2))
                    + full.gradientSquareSum(shard);
            assertEquals(norm * norm, split, 1e-6 * norm * norm);
            assertThrows(IllegalStateException.class, () -> sharded.shardOptimizerState(OptimizerShard.whole(N)),
                    "only before the first update");
        }
    }
}
