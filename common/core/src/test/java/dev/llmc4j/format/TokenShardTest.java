package dev.llmc4j.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenShardTest {
    @TempDir
    Path folder;

    @Test
    void gpt2ShardLayoutIsLlmcs() throws IOException {
        Path file = folder.resolve("s.bin");
        TokenShard.write(file, TokenShard.Kind.GPT2, new int[] {50256, 0, 65535, 262});
        var bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(1024 + 2 * 4, bytes.capacity());
        assertEquals(20240520, bytes.getInt(0));
        assertEquals(1, bytes.getInt(4));
        assertEquals(4, bytes.getInt(8));
        for (int slot = 3; slot < 256; slot++) assertEquals(0, bytes.getInt(4 * slot));
        assertEquals((short) 50256, bytes.getShort(1024));
        assertEquals((short) 65535, bytes.getShort(1028));

        try (var arena = Arena.ofConfined()) {
            var shard = TokenShard.open(file, arena);
            assertEquals(TokenShard.Kind.GPT2, shard.kind());
            assertEquals(4, shard.numTokens());
            assertEquals(65535, shard.token(2));
            assertArrayEquals(new int[] {50256, 0, 65535, 262}, shard.toArray());
        }
    }

    @Test
    void llama3ShardRoundTrips() throws IOException {
        Path file = folder.resolve("l.bin");
        int[] tokens = {128000, 1, 128255, 70000};
        TokenShard.write(file, TokenShard.Kind.LLAMA3, tokens);
        var bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(20240801, bytes.getInt(0));
        assertEquals(7, bytes.getInt(4));
        assertEquals(1024 + 16, bytes.capacity());
        var shard = TokenShard.open(file);
        assertEquals(TokenShard.Kind.LLAMA3, shard.kind());
        assertArrayEquals(tokens, shard.toArray());
        int[] middle = new int[2];
        shard.read(1, middle, 0, 2);
        assertArrayEquals(new int[] {1, 128255}, middle);
    }

    @Test
    void tokensThatDoNotFitAreRefused() {
        var error = assertThrows(
                LlmcException.class,
                () -> TokenShard.write(folder.resolve("x.bin"), TokenShard.Kind.GPT2, new int[] {1, 65536}));
        assertTrue(
                error.getMessage().contains("65536") && error.getMessage().contains("position 1"), error.getMessage());
        assertThrows(
                LlmcException.class,
                () -> TokenShard.write(folder.resolve("x.bin"), TokenShard.Kind.LLAMA3, new int[] {-1}));
        assertThrows(
                LlmcException.class, () -> TokenShard.write(folder.resolve("x.bin"), TokenShard.Kind.GPT2, new int[0]));
        assertTrue(Files.notExists(folder.resolve("x.bin")));
    }

    private Path validShard() {
        Path file = folder.resolve("v.bin");
        TokenShard.write(file, TokenShard.Kind.GPT2, new int[] {1, 2, 3});
        return file;
    }

    private Path patched(int slot, int value) throws IOException {
        byte[] bytes = Files.readAllBytes(validShard());
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(4 * slot, value);
        Path file = folder.resolve("bad.bin");
        Files.write(file, bytes);
        return file;
    }

    private static String failure(Path file) {
        return assertThrows(FileFormatException.class, () -> TokenShard.open(file))
                .getMessage();
    }

    @Test
    void badFilesNameFileFieldExpectedAndFound() throws IOException {
        String magic = failure(patched(0, 12345));
        assertTrue(
                magic.contains("bad.bin")
                        && magic.contains("magic")
                        && magic.contains("20240520")
                        && magic.contains("12345"),
                magic);

        String version = failure(patched(1, 3));
        assertTrue(
                version.contains("version") && version.contains("expected 1") && version.contains("found 3"), version);

        String count = failure(patched(2, 0));
        assertTrue(count.contains("token count") && count.contains("found 0"), count);

        String size = failure(patched(2, 4));
        assertTrue(size.contains("file size") && size.contains("1032 bytes") && size.contains("1030 bytes"), size);

        byte[] bytes = Files.readAllBytes(validShard());
        Path truncated = folder.resolve("t.bin");
        Files.write(truncated, Arrays.copyOf(bytes, 100));
        String header = failure(truncated);
        assertTrue(header.contains("header") && header.contains("1024 bytes") && header.contains("100 bytes"), header);

        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 1));
        assertTrue(failure(truncated).contains("truncated"));
    }

    @Test
    void missingShardIsAClearError() {
        var error = assertThrows(LlmcException.class, () -> TokenShard.open(folder.resolve("nope.bin")));
        assertTrue(error.getMessage().contains("nope.bin"));
    }

    /** Every id of the shard, not only those a run reads: the check finds the first bad one at any position. */
    @Test
    void wholeShardCheckFindsTheFirstIdOutsideTheVocabulary() throws IOException {
        for (var kind : TokenShard.Kind.values()) {
            for (int length : new int[] {1, 7, 64, 1000, 4099}) {
                int[] tokens = new int[length];
                Arrays.setAll(tokens, i -> i % 50);
                Path file = folder.resolve(kind + "_" + length + ".bin");
                TokenShard.write(file, kind, tokens);
                var shard = TokenShard.open(file);
                shard.checkTokensBelow(50); // all below
                for (int bad : new int[] {0, length / 2, length - 1}) {
                    int[] damaged = tokens.clone();
                    damaged[bad] = kind == TokenShard.Kind.GPT2 ? 65535 : 50;
                    if (bad + 1 < length) damaged[length - 1] = 60; // a later bad id must not be the one reported
                    TokenShard.write(file, kind, damaged);
                    var error = assertThrows(
                            FileFormatException.class,
                            () -> TokenShard.open(file).checkTokensBelow(50));
                    assertTrue(error.getMessage().contains("token at position " + bad + ":"), error.getMessage());
                    assertTrue(error.getMessage().contains(file.toString()), error.getMessage());
                }
            }
        }
    }
}
