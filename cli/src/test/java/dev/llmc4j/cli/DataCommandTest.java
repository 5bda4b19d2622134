package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.llama3.Llama3Tokenizer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs {@code llmc data ...} in-process; never downloads (tinyshakespeare comes from --input). */
class DataCommandTest {
    @TempDir
    Path folder;

    private static Path sharedText() {
        String env = System.getenv("LLMC_TINYSHAKESPEARE");
        if (env != null && !env.isBlank()) return Path.of(env);
        return Path.of(System.getProperty("llmc.root", "."), "..", "shared", "data", "tinyshakespeare.txt")
                .normalize();
    }

    @Test
    void tinyShakespeareFromInput() throws IOException {
        Path text = sharedText();
        assumeTrue(
                Files.isRegularFile(text),
                "SKIPPED: tinyshakespeare text not found at " + text + " (set LLMC_TINYSHAKESPEARE)");
        Path out = folder.resolve("ts");
        var result = LlmcRun.of("data", "tinyshakespeare", "--input", text.toString(), "-o", out.toString());
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(result.out().contains("wrote 32,768 tokens"), result.out());
        assertTrue(result.out().contains("wrote 305,260 tokens"), result.out());
        assertEquals(66_560, Files.size(out.resolve("tiny_shakespeare_val.bin")));
        assertEquals(611_544, Files.size(out.resolve("tiny_shakespeare_train.bin")));
        assertTrue(Files.isRegularFile(out.resolve("gpt2_tokenizer.bin")));
    }

    @Test
    void wrongInputIsOneLineError() throws IOException {
        Path wrong = folder.resolve("wrong.txt");
        Files.writeString(wrong, "not shakespeare");
        var result = LlmcRun.of(
                "data",
                "tinyshakespeare",
                "--input",
                wrong.toString(),
                "-o",
                folder.resolve("o").toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.err().startsWith("error: ") && result.err().contains("SHA-256"), result.err());
        assertEquals(1, result.err().strip().lines().count(), result.err());
    }

    @Test
    void textWithValFraction() throws IOException {
        Path text = folder.resolve("poem.txt");
        Files.writeString(text, "Hello world\n\n".repeat(50));
        var result = LlmcRun.of(
                "data",
                "text",
                text.toString(),
                "--val-fraction",
                "0.2",
                "-o",
                folder.resolve("p").toString());
        assertEquals(0, result.exitCode(), result.err());
        // 50 sections of 4 tokens + the empty last section's EOT = 201; floor(201 * 0.2) = 40
        assertEquals(1024 + 2 * 40, Files.size(folder.resolve("p/poem_val.bin")));
        assertEquals(1024 + 2 * 161, Files.size(folder.resolve("p/poem_train.bin")));
    }

    @Test
    void helpMentionsTheDefaults() {
        var result = LlmcRun.of("data", "tinyshakespeare", "--help");
        assertEquals(0, result.exitCode());
        assertTrue(result.out().contains("data/tinyshakespeare") && result.out().contains("--input"), result.out());
    }

    // ---- --model llama3 -------------------------------------------------------------------------------------------

    /**
     * A toy Llama 3 tokenizer.model (no real one may be downloaded): the 256 single bytes, a few merges, then filler
     * tokens up to rank 127,999 so that the special tokens get their real ids (<|begin_of_text|> = 128000). The
     * fillers are made of bytes 0xF8..0xFF, which never occur in UTF-8, so they never take part in an encoding.
     */
    static Path writeToyLlama3Tokenizer(Path file) throws IOException {
        var lines = new StringBuilder(128_000 * 20);
        var base64 = Base64.getEncoder();
        int rank = 0;
        for (int b = 0; b < 256; b++)
            lines.append(base64.encodeToString(new byte[] {(byte) b}))
                    .append(' ')
                    .append(rank++)
                    .append('\n');
        for (String merge : List.of("he", "ll", "hell", "hello", " w", " wo", "Sp", "ea", "eak", "Speak", "\n\n")) {
            lines.append(base64.encodeToString(merge.getBytes(StandardCharsets.UTF_8)))
                    .append(' ')
                    .append(rank++)
                    .append('\n');
        }
        for (int filler = 0; rank < 128_000; filler++) {
            byte[] bytes = new byte[7];
            for (int digit = 0, f = filler; digit < 7; digit++, f >>= 3) bytes[digit] = (byte) (0xF8 + (f & 7));
            lines.append(base64.encodeToString(bytes))
                    .append(' ')
                    .append(rank++)
                    .append('\n');
        }
        Files.writeString(file, lines, StandardCharsets.US_ASCII);
        return file;
    }

    /** Checks a Llama 3 shard's header as llm.c writes it (magic 20240801, version 7, ntok; uint32 tokens) and returns the tokens. */
    private static int[] readLlama3Shard(Path file) throws IOException {
        var header = ByteBuffer.wrap(Files.readAllBytes(file), 0, 12).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(20240801, header.getInt(), "magic");
        assertEquals(7, header.getInt(), "version");
        int count = header.getInt();
        assertEquals(1024 + 4L * count, Files.size(file), "file size of " + count + " uint32 tokens");
        int[] tokens = TokenShard.open(file).toArray();
        assertEquals(count, tokens.length);
        return tokens;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    /** Every section starts with <|begin_of_text|>; decoding without them gives the text back. */
    private static void assertSectionsRoundTrip(String text, int[] tokens, Llama3Tokenizer tokenizer) {
        int sections = text.split("\n\n", -1).length;
        assertEquals(128_000, tokens[0], "the first token");
        assertEquals(
                sections, Arrays.stream(tokens).filter(t -> t == 128_000).count(), "one <|begin_of_text|> per section");
        byte last = 0, beforeLast = 0; // the last two bytes decoded so far
        for (int i = 1; i < tokens.length; i++) {
            if (tokens[i] == 128_000) { // a section starts after its predecessor's "\n\n"
                assertTrue(beforeLast == '\n' && last == '\n', "section start at token " + i);
                continue;
            }
            for (byte b : tokenizer.decodeBytes(tokens[i])) {
                beforeLast = last;
                last = b;
            }
        }
        assertEquals(text, tokenizer.decode(tokens).replace(Llama3Tokenizer.BEGIN_OF_TEXT, ""));
    }

    @Test
    void textAsLlama3Shards() throws IOException {
        Path model = writeToyLlama3Tokenizer(folder.resolve("tokenizer.model"));
        var tokenizer = Llama3Tokenizer.load(model);
        String text =
                "hello world\n\nSpeak, speak.\n\n\n\nÉté 日本 <|end_of_text|> stays text 😀\n\n".repeat(20) + "the end";
        Path input = Files.writeString(folder.resolve("poem.txt"), text);
        Path out = folder.resolve("p");
        var result = LlmcRun.of(
                "data",
                "text",
                input.toString(),
                "--model",
                "llama3",
                "--tokenizer",
                model.toString(),
                "--val-fraction",
                "0.25",
                "-o",
                out.toString());
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(
                !result.out().contains("gpt2_tokenizer.bin") && !Files.exists(out.resolve("gpt2_tokenizer.bin")),
                result.out());
        int[] val = readLlama3Shard(out.resolve("poem_val.bin"));
        int[] train = readLlama3Shard(out.resolve("poem_train.bin"));
        int[] all = concat(val, train);
        assertEquals(all.length / 4, val.length, "floor(0.25 * tokens) val tokens");
        assertTrue(result.out().contains("wrote %,d tokens".formatted(val.length)), result.out());
        assertSectionsRoundTrip(text, all, tokenizer);
        assertTrue(Arrays.stream(all).anyMatch(t -> t > 255), "the merges were used");
    }

    @Test
    void tinyShakespeareAsLlama3Shards() throws IOException {
        Path text = sharedText();
        assumeTrue(
                Files.isRegularFile(text),
                "SKIPPED: tinyshakespeare text not found at " + text + " (set LLMC_TINYSHAKESPEARE)");
        Path model = writeToyLlama3Tokenizer(folder.resolve("tokenizer.model"));
        Path out = folder.resolve("ts");
        var result = LlmcRun.of(
                "data",
                "tinyshakespeare",
                "--input",
                text.toString(),
                "--model",
                "llama3",
                "--tokenizer",
                model.toString(),
                "-o",
                out.toString());
        assertEquals(0, result.exitCode(), result.err());
        int[] val = readLlama3Shard(out.resolve("tiny_shakespeare_val.bin"));
        int[] train = readLlama3Shard(out.resolve("tiny_shakespeare_train.bin"));
        assertEquals(32_768, val.length, "llm.c's val split");
        assertTrue(result.out().contains("wrote 32,768 tokens"), result.out());
        assertSectionsRoundTrip(Files.readString(text), concat(val, train), Llama3Tokenizer.load(model));
    }

    @Test
    void llama3NeedsAReadableTokenizer() throws IOException {
        Path input = Files.writeString(folder.resolve("poem.txt"), "hello world\n\n".repeat(10));
        var missing = LlmcRun.of(
                "data",
                "text",
                input.toString(),
                "--model",
                "llama3",
                "-o",
                folder.resolve("a").toString());
        assertEquals(1, missing.exitCode());
        assertTrue(missing.err().startsWith("error: ") && missing.err().contains("--tokenizer"), missing.err());
        assertEquals(1, missing.err().strip().lines().count(), missing.err());

        Path absent = folder.resolve("none.model");
        var notThere = LlmcRun.of(
                "data",
                "tinyshakespeare",
                "--model",
                "llama3",
                "--tokenizer",
                absent.toString(),
                "--input",
                input.toString(),
                "-o",
                folder.resolve("b").toString());
        assertEquals(1, notThere.exitCode());
        assertTrue(notThere.err().contains("--tokenizer " + absent), notThere.err());
        assertEquals(1, notThere.err().strip().lines().count(), notThere.err());

        Path garbage = Files.writeString(folder.resolve("bad.model"), "not a tokenizer\n");
        var bad = LlmcRun.of(
                "data",
                "text",
                input.toString(),
                "--model",
                "llama3",
                "--tokenizer",
                garbage.toString(),
                "-o",
                folder.resolve("c").toString());
        assertEquals(1, bad.exitCode());
        assertTrue(bad.err().contains("--tokenizer " + garbage) && bad.err().contains("line 1"), bad.err());

        var unknown = LlmcRun.of(
                "data",
                "text",
                input.toString(),
                "--model",
                "llama2",
                "-o",
                folder.resolve("d").toString());
        assertEquals(1, unknown.exitCode());
        assertTrue(unknown.err().contains("--model: expected gpt2 or llama3, found llama2"), unknown.err());
        assertTrue(!Files.exists(folder.resolve("a")) && !Files.exists(folder.resolve("b")), "nothing written");
    }

    @Test
    void textStreamsGlobsIntoLlmcNamedShards() throws IOException {
        for (int i = 0; i < 3; i++)
            Files.writeString(folder.resolve("part" + i + ".txt"), "Hello world\n\n".repeat(40));
        Path out = folder.resolve("s");
        var result = LlmcRun.of(
                "data",
                "text",
                folder.resolve("part*.txt").toString(),
                "--shard-size",
                "100",
                "--name",
                "parts",
                "-o",
                out.toString());
        assertEquals(0, result.exitCode(), result.err());
        // per file 40 sections of 4 tokens + the empty last section's EOT = 161; 3 files = 483 tokens = 5 shards
        assertEquals(1024 + 2 * 100, Files.size(out.resolve("parts_val_000000.bin")));
        assertEquals(1024 + 2 * 100, Files.size(out.resolve("parts_train_000001.bin")));
        assertEquals(1024 + 2 * 83, Files.size(out.resolve("parts_train_000004.bin")));
        assertTrue(
                result.out().contains("wrote 483 tokens in 5 shards")
                        && result.out().contains("tokens/s"),
                result.out());
        var again = LlmcRun.of(
                "data",
                "text",
                folder.resolve("part*.txt").toString(),
                "--shard-size",
                "100",
                "--name",
                "parts",
                "-o",
                out.toString());
        assertTrue(again.out().contains("kept 5 shards an earlier run finished"), again.out());
        var none = LlmcRun.of("data", "text", folder.resolve("nothing*.txt").toString());
        assertEquals(1, none.exitCode());
        assertTrue(none.err().contains("no files match"), none.err());
    }
}
