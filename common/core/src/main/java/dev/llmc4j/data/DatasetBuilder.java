package dev.llmc4j.data;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

/**
 * Turns text into token shards the way llm.c's {@code dev/data/tinyshakespeare.py} does, for GPT-2 (the default) or
 * Llama 3 ({@code --model llama-3} there; see {@link TextEncoder}).
 *
 * <p>The text is cut at every blank line ({@code "\n\n"}) into sections (Python's {@code str.split}, so empty
 * sections are kept). Each section becomes: the section-start token (GPT-2's EOT 50256, Llama 3's
 * {@code <|begin_of_text|>} 128000), then the ordinary encoding of the section followed by
 * {@code "\n\n"} (all sections except the last, which is encoded as it is). llm.c meant to drop the blank lines but
 * kept them, and kept that for compatibility; we do the same so our shards are byte-identical to llm.c's. The first
 * tokens go to the validation shard, the rest to the training shard.
 */
public final class DatasetBuilder {
    private DatasetBuilder() {}

    /** What a build wrote; {@code tokenizerFile} is null when the encoder writes none (Llama 3). */
    public record Written(Path valFile, int valTokens, Path trainFile, int trainTokens, Path tokenizerFile) {}

    /** The GPT-2 token stream of one text: EOT before every section, "\n\n" restored after all but the last. */
    public static int[] tokenizeSections(GPT2Tokenizer tokenizer, String text) {
        return tokenizeSections(TextEncoder.gpt2(tokenizer), text);
    }

    /** The token stream of one text: the section start before every section, "\n\n" restored after all but the last. */
    public static int[] tokenizeSections(TextEncoder encoder, String text) {
        String[] sections = text.split("\n\n", -1); // -1: keep trailing empty sections, like Python
        var tokens = new IntList(text.length() / 3);
        for (int i = 0; i < sections.length; i++) {
            tokens.add(encoder.sectionStart());
            String padded = i != sections.length - 1 ? sections[i] + "\n\n" : sections[i];
            tokens.addAll(encoder.encode(padded));
        }
        return tokens.toArray();
    }

    /** {@link #buildTinyShakespeare(String, Path, TextEncoder)} with GPT-2's tokens. */
    public static Written buildTinyShakespeare(String text, Path outputDir) {
        return buildTinyShakespeare(text, outputDir, TextEncoder.gpt2());
    }

    /**
     * tinyshakespeare exactly as llm.c: the first 32,768 tokens are {@code tiny_shakespeare_val.bin}, the remaining
     * ones {@code tiny_shakespeare_train.bin} (305,260 GPT-2 tokens for the char-rnn text, 276,224 Llama 3 tokens);
     * plus the encoder's tokenizer file ({@code gpt2_tokenizer.bin}), if it has one.
     */
    public static Written buildTinyShakespeare(String text, Path outputDir, TextEncoder encoder) {
        int[] tokens = tokenizeSections(encoder, text);
        return writeSplit(tokens, TinyShakespeare.VAL_TOKENS, outputDir, "tiny_shakespeare", encoder);
    }

    /**
     * Arbitrary UTF-8 text files, sectioned the same way (each file on its own, streams concatenated in order);
     * the first {@code valFraction} of the tokens (rounded down) is the validation shard. Line endings are
     * normalised to "\n" as Python's text mode does.
     */
    public static Written buildText(List<Path> files, double valFraction, Path outputDir, String name) {
        return buildText(files, valFraction, outputDir, name, TextEncoder.gpt2());
    }

    /** {@link #buildText(List, double, Path, String)} with the tokens of {@code encoder}. */
    public static Written buildText(
            List<Path> files, double valFraction, Path outputDir, String name, TextEncoder encoder) {
        if (files.isEmpty()) throw new LlmcException("no text files given");
        if (!(valFraction > 0 && valFraction < 1)) {
            throw new LlmcException("--val-fraction must be between 0 and 1 (exclusive), got " + valFraction);
        }
        var all = new IntList(1 << 16);
        for (Path file : files)
            all.addAll(tokenizeSections(
                    encoder, readUtf8(file).replace("\r\n", "\n").replace('\r', '\n')));
        int[] tokens = all.toArray();
        int valTokens = (int) Math.floor(tokens.length * valFraction);
        if (valTokens < 1 || valTokens >= tokens.length) {
            throw new LlmcException(
                    "%d tokens with --val-fraction %s leave %d validation and %d training tokens; both need at least one"
                            .formatted(tokens.length, valFraction, valTokens, tokens.length - valTokens));
        }
        return writeSplit(tokens, valTokens, outputDir, name, encoder);
    }

    /**
     * Writes {@code <name>_val.bin} (the first valTokens), {@code <name>_train.bin} (the rest), as the encoder's shard
     * kind, and the encoder's tokenizer file.
     */
    public static Written writeSplit(int[] tokens, int valTokens, Path outputDir, String name, TextEncoder encoder) {
        if (valTokens <= 0 || valTokens >= tokens.length) {
            throw new LlmcException("the text has " + tokens.length + " tokens, too few for a " + valTokens
                    + "-token validation split plus training tokens");
        }
        Path valFile = outputDir.resolve(name + "_val.bin");
        Path trainFile = outputDir.resolve(name + "_train.bin");
        TokenShard.write(valFile, encoder.shardKind(), Arrays.copyOfRange(tokens, 0, valTokens));
        TokenShard.write(trainFile, encoder.shardKind(), Arrays.copyOfRange(tokens, valTokens, tokens.length));
        Path tokenizerFile = encoder.writeTokenizer(outputDir);
        return new Written(valFile, valTokens, trainFile, tokens.length - valTokens, tokenizerFile);
    }

    /** Reads a file as strict UTF-8: a malformed byte is an error naming the file and the offset. */
    public static String readUtf8(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new LlmcException("text file not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        var decoder = StandardCharsets.UTF_8
                .newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        var in = ByteBuffer.wrap(bytes);
        var out = CharBuffer.allocate(bytes.length); // UTF-8 never needs more chars than bytes
        CoderResult result = decoder.decode(in, out, true);
        if (!result.isError()) result = decoder.flush(out);
        if (result.isError()) {
            throw new LlmcException(
                    "%s: not valid UTF-8 text: malformed bytes at offset %d".formatted(file, in.position()));
        }
        return out.flip().toString();
    }

    /** A growable int array, to avoid boxing a third of a million tokens. */
    private static final class IntList {
        private int[] items;
        private int size;

        IntList(int capacity) {
            items = new int[Math.max(16, capacity)];
        }

        void add(int value) {
            if (size == items.length) items = Arrays.copyOf(items, items.length * 2);
            items[size++] = value;
        }

        void addAll(int[] values) {
            if (size + values.length > items.length)
                items = Arrays.copyOf(items, Math.max(items.length * 2, size + values.length));
            System.arraycopy(values, 0, items, size, values.length);
            size += values.length;
        }

        int[] toArray() {
            return Arrays.copyOf(items, size);
        }
    }
}
