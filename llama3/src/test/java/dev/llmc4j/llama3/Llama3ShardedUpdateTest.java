package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.ShardedUpdateCheck;
import java.lang.foreign.ValueLayout;
import org.junit.jupiter.api.Test;

/**
 * ZeRO-1's model side for Llama 3: AdamW on one rank's pieces of every parameter slice (llm.c's 16-slot layout cut
 * per layer), with moments for those pieces only; the zero bias slots stay zero.
 */
class Llama3ShardedUpdateTest {
    private static final Llama3Config TINY = Llama3TrainingTest.TINY;

    @Test
    void slicesAreTheLayersOfTheSixteenSlots() {
        try (var model = new Llama3(TINY)) {
            var slices = model.parameterSlices();
            assertEquals(12 * TINY.numLayers() + 4, slices.size());
            assertEquals(ParameterSlice.perLayer(TINY.parameterSizes(), TINY.numLayers()), slices);
            assertEquals(
                    TINY.numParameters(),
                    slices.stream().mapToLong(ParameterSlice::count).sum());
        }
    }

    @Test
    void shardUpdateEqualsTheFullUpdateOnThePiecesAndLeavesTheRestAlone() {
        int T = 8;
        int[] x = RandomTokens.of(2 * T, 96, 1), y = RandomTokens.of(2 * T, 96, 2);
        try (var full = Llama3.randomInit(TINY, 42);
                var sharded = Llama3.randomInit(TINY, 42)) {
            ShardedUpdateCheck.assertShardUpdateEqualsTheFullUpdate(full, sharded, x, y, 2, T);
            // the bias slots were skipped: parameters and moments still zero
            long[] offsets = TINY.parameterOffsets(), sizes = TINY.parameterSizes();
            for (int slot = 0; slot < sizes.length; slot++) {
                if (!Llama3Config.isBiasSlot(slot)) continue;
                for (long i = offsets[slot]; i < offsets[slot] + sizes[slot]; i++) {
                    assertEquals(0f, sharded.parameters().getAtIndex(ValueLayout.JAVA_FLOAT, i), "bias slot " + slot);
                    assertEquals(
                            0f,
                            full.adamFirstMoments().getAtIndex(ValueLayout.JAVA_FLOAT, i),
                            "m of bias slot " + slot);
                }
            }
        }
    }
}
