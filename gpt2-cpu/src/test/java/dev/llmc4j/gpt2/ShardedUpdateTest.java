package dev.llmc4j.gpt2;

import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.ShardedUpdateCheck;
import org.junit.jupiter.api.Test;

/** ZeRO-1's model side: AdamW on one rank's pieces of every parameter slice, with moments for those pieces only. */
class ShardedUpdateTest {

    @Test
    void shardUpdateEqualsTheFullUpdateOnThePiecesAndLeavesTheRestAlone() {
        int T = 8;
        int[] x = RandomTokens.of(2 * T, 96, 1), y = RandomTokens.of(2 * T, 96, 2);
        try (var full = GPT2.randomInit(GPT2TrainingTest.TINY);
                var sharded = GPT2.randomInit(GPT2TrainingTest.TINY)) {
            ShardedUpdateCheck.assertShardUpdateEqualsTheFullUpdate(full, sharded, x, y, 2, T);
        }
    }
}
