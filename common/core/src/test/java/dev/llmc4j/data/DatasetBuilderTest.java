package dev.llmc4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.format.TokenizerFile;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DatasetBuilderTest {
    @TempDir
    Path folder;

    /** The shared copy of tinyshakespeare: $LLMC_TINYSHAKESPEARE, else ${llmc.root}/../shared/data/tinyshakespeare.txt. */
    static Path tinyShakespeareText() {
        String env = System.getenv("LLMC_TINYSHAKESPEARE");
        if (env != null && !env.isBlank()) return Path.of(env);
        return Path.of(System.getProperty("llmc.root", "."), "..", "shared", "data", "tinyshakespeare.txt")
                .normalize();
    }

    static Path requireTinyShakespeare() {
        Path text = tinyShakespeareText();
        assumeTrue(
                Files.isRegularFile(text),
                "SKIPPED: tinyshakespeare text not found at " + text
                        + " (set LLMC_TINYSHAKESPEARE to a copy of char-rnn's input.txt)");
        return text;
    }

    @Test
    void sectionsArePrefixedByEotAndKeepTheirBlankLines() {
        var tokenizer = GPT2Tokenizer.get();
        int[] tokens = DatasetBuilder.tokenizeSections(tokenizer, "Hello world\n\nHello world");
        // EOT, "Hello world\n\n" ("\n\n" is token 628), EOT, "Hello world" (the last section gets no "\n\n")
        assertArrayEquals(new int[] {50256, 15496, 995, 628, 50256, 15496, 995}, tokens);
        // trailing blank line: Python's split keeps the empty last section, which still gets its EOT
        assertArrayEquals(
                new int[] {50256, 15496, 995, 628, 50256},
                DatasetBuilder.tokenizeSections(tokenizer, "Hello world\n\n"));
    }

    @Test
    void tinyShakespeareMatchesLlmc() throws IOException {
        Path text = requireTinyShakespeare();
        TinyShakespeare.verify(text);
        var written = DatasetBuilder.buildTinyShakespeare(DatasetBuilder.readUtf8(text), folder);
        assertEquals(32_768, written.valTokens());
        assertEquals(305_260, written.trainTokens());
        assertEquals(66_560, Files.size(written.valFile()));
        assertEquals(611_544, Files.size(written.trainFile()));
        assertEquals(folder.resolve("tiny_shakespeare_val.bin"), written.valFile());
        assertEquals(folder.resolve("tiny_shakespeare_train.bin"), written.trainFile());

        var val = TokenShard.open(written.valFile());
        // the well-known start of llm.c's val shard: <|endoftext|>First Citizen:\nBefore we proceed any further, hear
        // me speak.
        int[] start = new int[12];
        val.read(0, start, 0, start.length);
        assertArrayEquals(new int[] {50256, 5962, 22307, 25, 198, 8421, 356, 5120, 597, 2252, 11, 3285}, start);
        assertEquals(50256, TokenizerFile.read(written.tokenizerFile()).eotToken());

        // llm.c's train_gpt2.c (B=4, T=64) prints "train dataset num_batches: 1192" and "val ...: 128"
        try (var train = new DataLoader(written.trainFile().toString(), 4, 64, 0, 1, true, GPT2Tokenizer.VOCAB_SIZE);
                var valLoader =
                        new DataLoader(written.valFile().toString(), 4, 64, 0, 1, false, GPT2Tokenizer.VOCAB_SIZE)) {
            assertEquals(1192, train.numTokens() / (4 * 64));
            assertEquals(128, valLoader.numTokens() / (4 * 64));
            assertEquals(1192, train.shardNumSamples());
            valLoader.nextBatch();
            assertArrayEquals(start, java.util.Arrays.copyOf(valLoader.inputs(), 12));
            for (int i = 0; i < 2 * 1192; i++) train.nextBatch(); // two full epochs, every token id checked
        }
    }

    @Test
    void textCommandSplitsByFraction() throws IOException {
        Path a = folder.resolve("a.txt");
        Path b = folder.resolve("b.txt");
        Files.writeString(a, "Hello world\r\n\r\nHello world");
        Files.writeString(b, " the the the the");
        var written = DatasetBuilder.buildText(List.of(a, b), 0.25, folder.resolve("out"), "mine");
        // a: 7 tokens (CRLF normalised), b: EOT + 4 tokens = 12; floor(12 * 0.25) = 3
        assertEquals(3, written.valTokens());
        assertEquals(9, written.trainTokens());
        assertArrayEquals(
                new int[] {50256, 15496, 995},
                TokenShard.open(folder.resolve("out/mine_val.bin")).toArray());
        int[] train = TokenShard.open(folder.resolve("out/mine_train.bin")).toArray();
        assertArrayEquals(new int[] {628, 50256, 15496, 995, 50256, 262, 262, 262, 262}, train);
    }

    @Test
    void badTextInputIsAClearError() throws IOException {
        Path bad = folder.resolve("bad.txt");
        Files.write(bad, new byte[] {'o', 'k', (byte) 0xFF, 'x'});
        var error = assertThrows(LlmcException.class, () -> DatasetBuilder.readUtf8(bad));
        assertTrue(
                error.getMessage().contains("bad.txt") && error.getMessage().contains("offset 2"), error.getMessage());
        Path good = folder.resolve("g.txt");
        Files.writeString(good, "Hello");
        assertThrows(LlmcException.class, () -> DatasetBuilder.buildText(List.of(good), 0, folder, "g"));
        assertThrows(
                LlmcException.class,
                () -> DatasetBuilder.buildText(List.of(good), 0.1, folder, "g")); // 2 tokens: no val
        assertThrows(
                LlmcException.class,
                () -> DatasetBuilder.buildText(List.of(folder.resolve("none.txt")), 0.1, folder, "g"));
    }
}
