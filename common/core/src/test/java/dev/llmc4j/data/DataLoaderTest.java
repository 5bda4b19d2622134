package dev.llmc4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Three small shards whose token at position p of shard s is s*1000 + p, so a batch's first input names the shard
 * and the offset it came from. Expected orders were computed independently with torch.Generator (CPU, whose
 * randint(0, n) is randint32 % n) driving llm.c's reset / advance / permutation rules.
 */
class DataLoaderTest {
    private static final int B = 2;
    private static final int T = 4;

    @TempDir
    Path folder;

    // shard_000: 41 tokens = 5 samples of B*T=8 (+1); shard_001: 28 tokens = 3 samples; shard_002: 38 tokens = 4
    private String writeShards() {
        int[] sizes = {41, 28, 38};
        for (int s = 0; s < sizes.length; s++) {
            int[] tokens = new int[sizes[s]];
            for (int p = 0; p < tokens.length; p++) tokens[p] = s * 1000 + p;
            TokenShard.write(folder.resolve("shard_%03d.bin".formatted(s)), TokenShard.Kind.GPT2, tokens);
        }
        return folder.resolve("shard_*.bin").toString();
    }

    private static List<Integer> firstInputs(DataLoader loader, int batches) {
        var firsts = new ArrayList<Integer>();
        for (int i = 0; i < batches; i++) {
            loader.nextBatch();
            firsts.add(loader.inputs()[0]);
        }
        return firsts;
    }

    @Test
    void unshuffledReadsShardsInOrderAndWrapsToTheFirstShard() {
        try (var loader = new DataLoader(writeShards(), B, T, 0, 1, false, 50257)) {
            assertEquals(3, loader.numShards());
            assertEquals(41 + 28 + 38, loader.numTokens());
            assertEquals(
                    List.of(0, 8, 16, 24, 32, 1000, 1008, 1016, 2000, 2008, 2016, 2024, 0, 8), firstInputs(loader, 14));
        }
    }

    @Test
    void inputsAndTargetsAreTheSameWindowShiftedByOne() {
        try (var loader = new DataLoader(writeShards(), B, T, 0, 1, false, 50257)) {
            loader.nextBatch();
            loader.nextBatch();
            assertArrayEquals(new int[] {8, 9, 10, 11, 12, 13, 14, 15}, loader.inputs());
            assertArrayEquals(new int[] {9, 10, 11, 12, 13, 14, 15, 16}, loader.targets());
        }
    }

    @Test
    void shuffledOrderMatchesLlmc() {
        try (var loader = new DataLoader(writeShards(), B, T, 0, 1, true, 50257)) {
            // epoch 1: shard order 2,1,0; epoch 2: 0,2,1 (then 1 again from epoch 3)
            assertEquals(
                    List.of(
                            2016, 2024, 2008, 2000, 1008, 1000, 1016, 8, 0, 24, 16, 32, 0, 16, 8, 24, 32, 2008, 2016,
                            2000, 2024, 1016, 1000, 1008, 0, 24, 16, 8, 32, 1000),
                    firstInputs(loader, 30));
        }
    }

    @Test
    void rankOneOfTwoUsesSeed43AndItsOwnSlice() {
        // P*B*T = 16 tokens per sample index: shards hold 2, 1 and 2 samples; rank 1 reads at +8
        try (var loader = new DataLoader(writeShards(), B, T, 1, 2, true, 50257)) {
            assertEquals(List.of(2008, 2024, 8, 24, 1008, 1008, 2024, 2008, 8, 24, 1008, 8), firstInputs(loader, 12));
        }
    }

    @Test
    void resetStartsANewShuffledEpoch() {
        try (var loader = new DataLoader(writeShards(), B, T, 0, 1, true, 50257)) {
            firstInputs(loader, 3);
            loader.reset();
            // the shard order is permuted again in place (2,1,0 -> 1,2,0), then shard 1 gets a fresh sample order
            assertEquals(List.of(1008, 1000, 1016), firstInputs(loader, 3));
        }
    }

    @Test
    void savedStateContinuesExactly() {
        String pattern = writeShards();
        for (int consumed : new int[] {0, 3, 5, 11, 12, 20}) {
            DataLoader.State state;
            List<Integer> expected;
            try (var loader = new DataLoader(pattern, B, T, 0, 1, true, 50257)) {
                firstInputs(loader, consumed);
                state = loader.state();
                expected = firstInputs(loader, 25);
            }
            try (var fresh = new DataLoader(pattern, B, T, 0, 1, true, 50257)) {
                firstInputs(fresh, 7); // move it somewhere else first
                fresh.restore(state, Path.of("state.bin"));
                assertEquals(expected, firstInputs(fresh, 25), "after " + consumed + " batches");
            }
        }
    }

    @Test
    void unshuffledResumeAtShardAndSample() {
        try (var loader = new DataLoader(writeShards(), B, T, 0, 1, false, 50257)) {
            loader.resume(1, 2, Path.of("state.bin"));
            assertEquals(List.of(1016, 2000), firstInputs(loader, 2));
        }
    }

    @Test
    void shardTooShortForOneBatchNamesTheShardAndTheCounts() throws IOException {
        TokenShard.write(folder.resolve("a.bin"), TokenShard.Kind.GPT2, new int[41]);
        TokenShard.write(folder.resolve("b.bin"), TokenShard.Kind.GPT2, new int[8]); // needs B*T+1 = 9
        var error = assertThrows(
                LlmcException.class,
                () -> new DataLoader(folder.resolve("*.bin").toString(), B, T, 0, 1, false, 50257));
        assertTrue(error.getMessage().contains("b.bin"), error.getMessage());
        assertTrue(error.getMessage().contains("needs at least 9"), error.getMessage());
        assertTrue(error.getMessage().contains("found 8"), error.getMessage());
    }

    @Test
    void corruptShardFailsAtInit() throws IOException {
        TokenShard.write(folder.resolve("a.bin"), TokenShard.Kind.GPT2, new int[41]);
        byte[] bytes = Files.readAllBytes(folder.resolve("a.bin"));
        Files.write(folder.resolve("b.bin"), java.util.Arrays.copyOf(bytes, bytes.length - 1));
        var error = assertThrows(
                LlmcException.class,
                () -> new DataLoader(folder.resolve("*.bin").toString(), B, T, 0, 1, false, 50257));
        assertTrue(
                error.getMessage().contains("b.bin") && error.getMessage().contains("file size"), error.getMessage());
    }

    @Test
    void tokenOutsideTheVocabularyIsRefusedWhenTheShardOpens() {
        int[] tokens = new int[4000];
        tokens[3990] = 60000; // far past what a one-batch run reads
        TokenShard.write(folder.resolve("a.bin"), TokenShard.Kind.GPT2, tokens);
        var error = assertThrows(
                LlmcException.class,
                () -> new DataLoader(folder.resolve("a.bin").toString(), B, T, 0, 1, false, 50257));
        assertTrue(
                error.getMessage().contains("60000")
                        && error.getMessage().contains("position 3990")
                        && error.getMessage().contains("a.bin"),
                error.getMessage());
    }

    @Test
    void missingFilesAreClearErrors() {
        assertThrows(
                LlmcException.class,
                () -> new DataLoader(folder.resolve("none_*.bin").toString(), B, T, 0, 1, false, 50257));
        assertThrows(
                LlmcException.class,
                () -> new DataLoader(folder.resolve("none.bin").toString(), B, T, 0, 1, false, 50257));
    }

    @Test
    void llama3ShardsWork() {
        int[] tokens = new int[17];
        for (int i = 0; i < tokens.length; i++) tokens[i] = 128000 + i;
        TokenShard.write(folder.resolve("l.bin"), TokenShard.Kind.LLAMA3, tokens);
        try (var loader = new DataLoader(folder.resolve("l.bin").toString(), B, T, 0, 1, false, 128256)) {
            loader.nextBatch();
            assertEquals(128000, loader.inputs()[0]);
            assertEquals(128008, loader.targets()[7]);
        }
    }
}
