package dev.llmc4j.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TokenizerFileTest {
    @TempDir
    Path folder;

    private static byte[] ascii(String s) {
        return s.getBytes(StandardCharsets.US_ASCII);
    }

    @Test
    void version2RoundTripsWithItsLayout() throws IOException {
        byte[][] tokens = {ascii("a"), ascii(" the"), new byte[] {(byte) 0xE2, (byte) 0x80}, ascii("<|endoftext|>")};
        Path file = folder.resolve("tok.bin");
        TokenizerFile.write(file, tokens, 3);
        var bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(20240328, bytes.getInt(0));
        assertEquals(2, bytes.getInt(4));
        assertEquals(4, bytes.getInt(8));
        assertEquals(3, bytes.getInt(12));
        assertEquals(1, bytes.get(1024));
        assertEquals('a', bytes.get(1025));
        assertEquals(4, bytes.get(1026));
        assertEquals(1024 + 2 + 5 + 3 + 14, bytes.capacity());

        var read = TokenizerFile.read(file);
        assertEquals(4, read.vocabSize());
        assertEquals(3, read.eotToken());
        for (int i = 0; i < tokens.length; i++) assertArrayEquals(tokens[i], read.decode(i));
        assertThrows(LlmcException.class, () -> read.decode(4));
    }

    @Test
    void version1ImpliesGpt2VocabularyAndEot() throws IOException {
        var out = new ByteArrayOutputStream();
        var header = ByteBuffer.allocate(1024)
                .order(ByteOrder.LITTLE_ENDIAN)
                .putInt(20240328)
                .putInt(1)
                .putInt(50257);
        out.write(header.array());
        for (int i = 0; i < 50257; i++) {
            out.write(1);
            out.write(i % 251 + 1);
        }
        Path file = folder.resolve("v1.bin");
        Files.write(file, out.toByteArray());
        var tokenizer = TokenizerFile.read(file);
        assertEquals(50256, tokenizer.eotToken());
        assertEquals(50257, tokenizer.vocabSize());

        // a version 1 file with another vocabulary size is refused
        ByteBuffer.wrap(out.toByteArray()).order(ByteOrder.LITTLE_ENDIAN);
        byte[] bad = out.toByteArray();
        ByteBuffer.wrap(bad).order(ByteOrder.LITTLE_ENDIAN).putInt(8, 100);
        Files.write(file, bad);
        var error = assertThrows(FileFormatException.class, () -> TokenizerFile.read(file));
        assertTrue(error.getMessage().contains("50257") && error.getMessage().contains("100"), error.getMessage());
    }

    @Test
    void brokenFilesAreClearErrors() throws IOException {
        Path file = folder.resolve("tok.bin");
        TokenizerFile.write(file, new byte[][] {ascii("ab"), ascii("c")}, 1);
        byte[] good = Files.readAllBytes(file);

        Files.write(file, Arrays.copyOf(good, good.length - 1));
        var truncated = assertThrows(FileFormatException.class, () -> TokenizerFile.read(file));
        assertTrue(truncated.getMessage().contains("token 1"), truncated.getMessage());

        byte[] zeroLength = good.clone();
        zeroLength[1024] = 0;
        Files.write(file, zeroLength);
        assertTrue(assertThrows(FileFormatException.class, () -> TokenizerFile.read(file))
                .getMessage()
                .contains("length of token 0"));

        byte[] badMagic = good.clone();
        badMagic[0] = 1;
        Files.write(file, badMagic);
        assertTrue(assertThrows(FileFormatException.class, () -> TokenizerFile.read(file))
                .getMessage()
                .contains("magic"));

        Files.write(file, Arrays.copyOf(good, 10));
        assertTrue(assertThrows(FileFormatException.class, () -> TokenizerFile.read(file))
                .getMessage()
                .contains("header"));

        assertThrows(LlmcException.class, () -> TokenizerFile.write(file, new byte[][] {new byte[0]}, 0));
        assertThrows(LlmcException.class, () -> TokenizerFile.write(file, new byte[][] {new byte[256]}, 0));
    }

    @Test
    void missingFileIsOptional() {
        assertTrue(TokenizerFile.readIfPresent(folder.resolve("absent.bin")).isEmpty());
        assertThrows(LlmcException.class, () -> TokenizerFile.read(folder.resolve("absent.bin")));
    }

    @Test
    void safePrintFollowsLlmc() {
        assertFalse(TokenizerFile.isSafeToPrint(new byte[0]));
        assertTrue(TokenizerFile.isSafeToPrint(ascii("a")));
        assertTrue(TokenizerFile.isSafeToPrint(ascii(" ")));
        assertTrue(TokenizerFile.isSafeToPrint(ascii("\n")));
        assertTrue(TokenizerFile.isSafeToPrint(ascii("\t")));
        assertFalse(TokenizerFile.isSafeToPrint(new byte[] {0x07})); // bell: a control byte
        assertFalse(TokenizerFile.isSafeToPrint(new byte[] {0x7F})); // DEL
        assertFalse(TokenizerFile.isSafeToPrint(new byte[] {(byte) 0xE2})); // half a UTF-8 character
        assertTrue(TokenizerFile.isSafeToPrint(new byte[] {(byte) 0xE2, (byte) 0x80})); // multi-byte: printed as-is

        var tokenizer = new TokenizerFile(new byte[][] {ascii("x"), new byte[] {0x01}}, 0);
        assertArrayEquals(ascii("x"), tokenizer.printable(0));
        assertEquals(0, tokenizer.printable(1).length);
        assertEquals(0, tokenizer.printable(99).length);
    }
}
