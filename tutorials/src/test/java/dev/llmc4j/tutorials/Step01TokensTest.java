package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.data.TinyShakespeare;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.tutorials.step01.ShardFile;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Step 1: text becomes tokens, tokens become a shard, a shard becomes (inputs, targets) batches. */
class Step01TokensTest {

    @TempDir
    Path dir;

    @Test
    void lessonShardIsByteForByteTheModulesShard() throws IOException {
        int[] tokens = RandomTokens.of(1000, GPT2Tokenizer.VOCAB_SIZE, 1);
        Path file = dir.resolve("module.bin");
        TokenShard.write(file, TokenShard.Kind.GPT2, tokens);
        byte[] lesson = ShardFile.encode(tokens);
        assertArrayEquals(
                Files.readAllBytes(file), lesson, "our hand-written shard bytes differ from TokenShard.write's");
        assertEquals(1024 + 2 * 1000, lesson.length);

        Path ours = dir.resolve("lesson.bin");
        Files.write(ours, lesson);
        assertArrayEquals(tokens, TokenShard.open(ours).toArray(), "TokenShard reads our file back");
        assertArrayEquals(tokens, ShardFile.decode(lesson));
    }

    @Test
    void decodeRejectsBadFiles() {
        byte[] good = ShardFile.encode(new int[] {1, 2, 3});
        byte[] truncated = Arrays.copyOf(good, good.length - 1);
        assertThrows(IllegalArgumentException.class, () -> ShardFile.decode(truncated));
        byte[] wrongMagic = good.clone();
        wrongMagic[0] ^= 1;
        assertThrows(IllegalArgumentException.class, () -> ShardFile.decode(wrongMagic));
    }

    @Test
    void lessonBatchesAreTheDataLoadersBatches() throws IOException {
        int B = 2, T = 8;
        int[] tokens = RandomTokens.of(101, GPT2Tokenizer.VOCAB_SIZE, 2);
        Path file = dir.resolve("shard.bin");
        Files.write(file, ShardFile.encode(tokens));
        int batches = ShardFile.numBatches(tokens.length, B, T);
        assertEquals(6, batches); // (101 - 1) / 16
        try (var loader = new DataLoader(file.toString(), B, T, 0, 1, false, GPT2Tokenizer.VOCAB_SIZE)) {
            for (int i = 0; i < batches; i++) {
                loader.nextBatch();
                var batch = ShardFile.batch(tokens, i, B, T);
                assertArrayEquals(loader.inputs(), batch.inputs(), "inputs of batch " + i);
                assertArrayEquals(loader.targets(), batch.targets(), "targets of batch " + i);
            }
        }
    }

    @Test
    void tinyShakespeareTokens() {
        Path text = Path.of(System.getProperty("llmc.root", "."), "..", "shared", "data", "tinyshakespeare.txt")
                .normalize();
        Assumptions.assumeTrue(
                Files.isRegularFile(text),
                "skipped: tinyshakespeare not found at " + text
                        + " (the tests never download it; ./llmc data tinyshakespeare does)");
        var tokenizer = GPT2Tokenizer.get();
        String content = DatasetBuilder.readUtf8(text);

        int[] tokens = DatasetBuilder.tokenizeSections(tokenizer, content);
        System.out.printf(
                "tinyshakespeare: %,d characters -> %,d tokens (%.2f characters per token)%n",
                content.length(), tokens.length, (double) content.length() / tokens.length);
        System.out.println("first 8 tokens: " + Arrays.toString(Arrays.copyOf(tokens, 8)));
        for (int i = 1; i < 8; i++)
            System.out.printf(
                    "  %5d -> \"%s\"%n",
                    tokens[i], tokenizer.decode(new int[] {tokens[i]}).replace("\n", "\\n"));

        assertEquals(GPT2Tokenizer.EOT, tokens[0], "every section starts with <|endoftext|>");
        assertEquals(TinyShakespeare.VAL_TOKENS + 305_260, tokens.length, "llm.c's 32,768 val + 305,260 train tokens");
        String firstSection = content.substring(0, content.indexOf("\n\n") + 2);
        int[] firstTokens = tokenizer.encodeOrdinary(firstSection);
        assertArrayEquals(firstTokens, Arrays.copyOfRange(tokens, 1, 1 + firstTokens.length));
        assertEquals(firstSection, tokenizer.decode(firstTokens), "decoding gives the text back");
    }
}
