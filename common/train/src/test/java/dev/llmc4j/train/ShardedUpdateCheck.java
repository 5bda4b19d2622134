package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.model.OptimizerShard;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * ZeRO-1's model side, for any CPU model (GPT-2, Llama 3): two optimizer steps of a model that keeps the AdamW
 * state of rank 1 of 2 against the same model keeping all of it. The sharded one must update exactly its pieces,
 * exactly as the full one does, leave every other parameter alone, keep moments for its pieces only, and split the
 * gradient norm's square between the two ranks' shards.
 */
public final class ShardedUpdateCheck {
    private ShardedUpdateCheck() {}

    private static float at(MemorySegment floats, long i) {
        return floats.getAtIndex(ValueLayout.JAVA_FLOAT, i);
    }

    /**
     * {@code full} and {@code sharded} must start identical; both are trained on (x, y) with batch B x T.
     *
     * @return the shard checked (rank 1 of 2), for model-specific checks after it
     */
    public static <M extends TrainableModel & ShardedOptimizer & HostGradients>
            OptimizerShard assertShardUpdateEqualsTheFullUpdate(M full, M sharded, int[] x, int[] y, int B, int T) {
        long N = full.numParameters();
        var shard = OptimizerShard.of(full.parameterSlices(), 1, 2); // rank 1 of 2: the second half of every slice
        boolean[] owned = new boolean[(int) N];
        for (var piece : shard.pieces())
            for (long i = piece.parameterOffset(); i < piece.parameterOffset() + piece.count(); i++)
                owned[(int) i] = true;
        sharded.shardOptimizerState(shard);
        float[] before = sharded.parameters().toArray(ValueLayout.JAVA_FLOAT);
        for (int step = 1; step <= 2; step++) {
            for (var model : new TrainableModel[] {full, sharded}) {
                model.zeroGrad();
                model.forward(x, y, B, T);
                model.backward(1);
            }
            full.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
            sharded.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.5f, step);
            // put back what only "other ranks" would update, as the all-gather does
            for (long i = 0; i < N; i++) {
                if (!owned[(int) i]) {
                    assertEquals(
                            before[(int) i],
                            at(sharded.parameters(), i),
                            "parameter " + i + " outside the shard moved");
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
        double norm = full.gradientNorm();
        double split =
                full.gradientSquareSum(OptimizerShard.of(full.parameterSlices(), 0, 2)) + full.gradientSquareSum(shard);
        assertEquals(norm * norm, split, 1e-6 * norm * norm);
        assertThrows(
                IllegalStateException.class,
                () -> sharded.shardOptimizerState(OptimizerShard.whole(N)),
                "only before the first update");
        return shard;
    }
}
