package dev.llmc4j.tokenizer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.format.TokenizerFile;
import dev.llmc4j.util.LlmcException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Known GPT-2 (tiktoken "gpt2") token ids. */
class GPT2TokenizerTest {
    private final GPT2Tokenizer tokenizer = GPT2Tokenizer.get();

    @Test
    void knownIds() {
        assertArrayEquals(new int[] {15496, 995}, tokenizer.encodeOrdinary("Hello world"));
        assertArrayEquals(new int[] {262}, tokenizer.encodeOrdinary(" the"));
        assertArrayEquals(new int[] {628}, tokenizer.encodeOrdinary("\n\n")); // a blank line is one token
        assertArrayEquals(new int[] {198}, tokenizer.encodeOrdinary("\n"));
        assertArrayEquals(new int[] {5962, 22307, 25}, tokenizer.encodeOrdinary("First Citizen:"));
    }

    @Test
    void endOfTextIsPlainTextUnlessSpecialTokensAreAllowed() {
        // encode_ordinary: the literal text is split like any other text
        assertArrayEquals(new int[] {27, 91, 437, 1659, 5239, 91, 29}, tokenizer.encodeOrdinary("<|endoftext|>"));
        assertArrayEquals(new int[] {15496, 50256, 995}, tokenizer.encodeWithSpecialTokens("Hello<|endoftext|> world"));
        assertArrayEquals(new int[] {50256}, tokenizer.encodeWithSpecialTokens("<|endoftext|>"));
    }

    @Test
    void decodeRoundTripsAndTokenBytesAreExact() {
        String text = "Héllo, wörld! 你好 🙂\n\n  spaces";
        assertEquals(text, tokenizer.decode(tokenizer.encodeOrdinary(text)));
        assertArrayEquals("<|endoftext|>".getBytes(StandardCharsets.US_ASCII), tokenizer.tokenBytes(50256));
        assertArrayEquals(" the".getBytes(StandardCharsets.US_ASCII), tokenizer.tokenBytes(262));
        assertArrayEquals(new byte[] {'!'}, tokenizer.tokenBytes(0));
        // byte-level tokens: every single byte value has a token with exactly that byte
        int single = 0;
        for (int id = 0; id < 256; id++) if (tokenizer.tokenBytes(id).length == 1) single++;
        assertEquals(256, single);
        assertThrows(LlmcException.class, () -> tokenizer.tokenBytes(50257));
        assertThrows(LlmcException.class, () -> tokenizer.decode(new int[] {-1}));
    }

    @Test
    void tokenizerFileHoldsEveryTokensBytes(@TempDir Path folder) throws Exception {
        Path file = folder.resolve("gpt2_tokenizer.bin");
        tokenizer.writeTokenizerFile(file);
        var read = TokenizerFile.read(file);
        assertEquals(50257, read.vocabSize());
        assertEquals(50256, read.eotToken());
        for (int id : new int[] {0, 198, 262, 995, 15496, 50255, 50256})
            assertArrayEquals(tokenizer.tokenBytes(id), read.decode(id));
        long size = Files.size(file);
        // llm.c's gpt2_tokenizer.bin is 1024 header bytes + 50257 length bytes + the token bytes
        long tokenBytes = 0;
        for (int id = 0; id < 50257; id++) tokenBytes += tokenizer.tokenBytes(id).length;
        assertEquals(1024 + 50257 + tokenBytes, size);
    }
}
