package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * No Llama 3 tokenizer.model can be downloaded here, so the loader and the BPE are checked on the tiktoken file
 * jtokkit ships (cl100k_base: same base64+rank format, and cl100k's split regex is Llama 3's) against jtokkit's
 * own encoder.
 */
class Llama3TokenizerTest {
    /** tiktoken's cl100k pattern, as jtokkit implements it (possessive quantifiers, same splits). */
    static final String CL100K_PATTERN = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}+|\\p{N}{1,3}"
            + "| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*|\\s*[\\r\\n]|\\s+(?!\\S)|\\s+";

    static Llama3Tokenizer cl100k;
    static Encoding jtokkit;

    @TempDir
    Path tmp;

    @BeforeAll
    static void load() throws IOException {
        try (InputStream in = Encoding.class.getResourceAsStream("/com/knuddels/jtokkit/cl100k_base.tiktoken")) {
            assertTrue(in != null, "jtokkit's cl100k_base.tiktoken resource");
            var ranks = Llama3Tokenizer.readRanks(in, "cl100k_base.tiktoken");
            cl100k = new Llama3Tokenizer(
                    ranks, Map.of("<|endoftext|>", 100257, "<|fim_prefix|>", 100258), CL100K_PATTERN);
        }
        jtokkit = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.CL100K_BASE);
    }

    static List<String> samples() {
        var samples = new ArrayList<>(List.of(
                "",
                " ",
                "Hello, world!",
                "hello world",
                "  leading and trailing  ",
                "a\nb\r\nc\n\n\nd",
                "It's, we're, they've, I'm, you'll, he'd, IT'S, We'Re",
                "don't stop",
                "'s 's",
                "Ο Δίας είναι",
                "Größenmaßstäbe für Übungen",
                "日本語のテキストです。",
                "中文测试，标点符号！",
                "emoji 😀🎉👍🏽 mixed",
                "numbers 1 12 123 1234 12345 3.14159 1,000,000",
                "x = f(y) + g[z]; // comment\n\tif (a != b) {}",
                "def main():\n    print('hi')\n\n\n    return 0\n",
                "tabs\t\tand\u00a0nbsp\u3000ideographic space",
                "   \n   \n",
                "!!!???...---",
                "e\u0301 combining",
                "ﬁ ligature",
                "Ⅻ ½ ٣٤٥",
                "<|endoftext|> is plain text here",
                "MiXeD CaSe WoRdS",
                "url https://example.org/path?q=1&r=2#frag",
                "a".repeat(300),
                " ".repeat(50) + "x",
                "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n"));
        var random = new Random(42);
        String pool =
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789     \n\n\r\t.,;:!?'\"-_()[]{}<>/\\@#$%^&*+="
                        + "éüßøåçñÉÜ日本語中文한국어ДЖЯжяعربيΩλ\u00a0\u3000\u2003\u0301½Ⅻ٣";
        String[] emoji = {"😀", "🎉", "👍🏽", "🇩🇪", "𝔘"};
        for (int s = 0; s < 2000; s++) {
            var text = new StringBuilder();
            int length = random.nextInt(60);
            for (int i = 0; i < length; i++) {
                if (random.nextInt(25) == 0) text.append(emoji[random.nextInt(emoji.length)]);
                else text.append(pool.charAt(random.nextInt(pool.length())));
            }
            samples.add(text.toString());
        }
        return samples;
    }

    @Test
    void encodesLikeJtokkit() {
        int checked = 0;
        for (String text : samples()) {
            int[] expected = jtokkit.encodeOrdinary(text).toArray();
            assertArrayEquals(expected, cl100k.encode(text), () -> "text: " + text);
            assertEquals(text, cl100k.decode(expected), () -> "decode of: " + text);
            checked++;
        }
        assertEquals(2000 + 29, checked);
    }

    @Test
    void specialTokensOnlyWhenAsked() {
        int[] plain = cl100k.encode("a<|endoftext|>b");
        int[] special = cl100k.encodeWithSpecialTokens("a<|endoftext|>b");
        assertTrue(plain.length > 3);
        assertArrayEquals(new int[] {cl100k.encode("a")[0], 100257, cl100k.encode("b")[0]}, special);
        assertEquals("a<|endoftext|>b", cl100k.decode(special));
        assertTrue(cl100k.isSpecial(100257));
    }

    /** A toy tokenizer.model: 256 single bytes plus a few merges, with Llama 3's specials after them. */
    @Test
    void loadsALlamaStyleFileWithSpecialTokens() throws IOException {
        var lines = new StringBuilder();
        int rank = 0;
        for (int b = 0; b < 256; b++)
            lines.append(b64(new byte[] {(byte) b})).append(' ').append(rank++).append('\n');
        for (String merge : List.of("he", "ll", "hell", "hello", " w", " wo")) {
            lines.append(b64(merge.getBytes(StandardCharsets.UTF_8)))
                    .append(' ')
                    .append(rank++)
                    .append('\n');
        }
        Path model = tmp.resolve("tokenizer.model");
        Files.writeString(model, lines);
        var tokenizer = Llama3Tokenizer.load(model);
        assertEquals(262 + 256, tokenizer.vocabSize());
        assertEquals(262, tokenizer.beginOfText());
        assertEquals(263, tokenizer.endOfText());
        assertEquals(268, tokenizer.specialToken(Llama3Tokenizer.START_HEADER));
        assertEquals(269, tokenizer.specialToken(Llama3Tokenizer.END_HEADER));
        assertEquals(271, tokenizer.endOfTurn());
        assertEquals(262 + 255, tokenizer.specialToken("<|reserved_special_token_247|>"));
        int[] ids = tokenizer.encodeWithSpecialTokens("<|begin_of_text|>hello world<|eot_id|>");
        // "hello" merges fully (he, ll, hell, hello); " world" -> " wo" r l d
        assertArrayEquals(new int[] {262, 259, 261, 'r', 'l', 'd', 271}, ids);
        assertEquals("<|begin_of_text|>hello world<|eot_id|>", tokenizer.decode(ids));
        var e = assertThrows(LlmcException.class, () -> tokenizer.decode(new int[] {9999}));
        assertTrue(e.getMessage().contains("9999"));
    }

    @Test
    void reportsBadFiles() throws IOException {
        Path bad = tmp.resolve("bad.model");
        Files.writeString(bad, "IQ== 0\nnot-base64! 1\n");
        var e = assertThrows(LlmcException.class, () -> Llama3Tokenizer.load(bad));
        assertTrue(e.getMessage().contains("bad.model") && e.getMessage().contains("line 2"), e.getMessage());
        var missing = assertThrows(LlmcException.class, () -> Llama3Tokenizer.load(tmp.resolve("none.model")));
        assertTrue(missing.getMessage().contains("none.model"));
    }

    private static String b64(byte[] bytes) {
        return Base64.getEncoder().encodeToString(bytes);
    }
}
