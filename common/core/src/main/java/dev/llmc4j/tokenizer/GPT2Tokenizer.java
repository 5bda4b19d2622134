package dev.llmc4j.tokenizer;

import com.knuddels.jtokkit.Encodings;
import com.knuddels.jtokkit.api.Encoding;
import com.knuddels.jtokkit.api.EncodingType;
import com.knuddels.jtokkit.api.IntArrayList;
import dev.llmc4j.format.TokenizerFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * GPT-2's byte-level BPE (tiktoken's {@code gpt2} encoding = {@code r50k_base}: 50,000 merges, 256 byte tokens and
 * {@code <|endoftext|>} = 50256), through jtokkit. Encoding is plumbing here, not the lesson, so we use the library.
 */
public final class GPT2Tokenizer {
    public static final int VOCAB_SIZE = 50257;
    public static final int EOT = 50256;
    public static final String EOT_TEXT = "<|endoftext|>";

    private static final GPT2Tokenizer INSTANCE = new GPT2Tokenizer();

    private final Encoding encoding = Encodings.newDefaultEncodingRegistry().getEncoding(EncodingType.R50K_BASE);

    private GPT2Tokenizer() {}

    public static GPT2Tokenizer get() {
        return INSTANCE;
    }

    /** Encodes text as plain text: {@code <|endoftext|>} in the text is split into ordinary tokens, never 50256. */
    public int[] encodeOrdinary(String text) {
        return encoding.encodeOrdinary(text).toArray();
    }

    /** Encodes text, turning each literal {@code <|endoftext|>} into the EOT token (tiktoken's allowed_special="all"). */
    public int[] encodeWithSpecialTokens(String text) {
        var out = new IntArrayList();
        int start = 0;
        while (true) {
            int at = text.indexOf(EOT_TEXT, start);
            String piece = at < 0 ? text.substring(start) : text.substring(start, at);
            if (!piece.isEmpty()) {
                IntArrayList tokens = encoding.encodeOrdinary(piece);
                for (int i = 0; i < tokens.size(); i++) out.add(tokens.get(i));
            }
            if (at < 0) break;
            out.add(EOT);
            start = at + EOT_TEXT.length();
        }
        return out.toArray();
    }

    /** Decodes to text; bytes that are not valid UTF-8 become U+FFFD. */
    public String decode(int[] tokens) {
        return new String(decodeBytes(tokens), StandardCharsets.UTF_8);
    }

    /** The concatenated bytes of the tokens. */
    public byte[] decodeBytes(int[] tokens) {
        var list = new IntArrayList(tokens.length);
        for (int token : tokens) {
            checkId(token);
            list.add(token);
        }
        return encoding.decodeBytes(list);
    }

    /** The exact bytes of one token (possibly part of a UTF-8 character); EOT gives {@code <|endoftext|>}. */
    public byte[] tokenBytes(int id) {
        checkId(id);
        var single = new IntArrayList(1);
        single.add(id);
        return encoding.decodeBytes(single);
    }

    /** Every token's bytes, indexed by id: the content of {@code gpt2_tokenizer.bin}. */
    public byte[][] allTokenBytes() {
        byte[][] table = new byte[VOCAB_SIZE][];
        for (int id = 0; id < VOCAB_SIZE; id++) table[id] = tokenBytes(id);
        return table;
    }

    /** Writes llm.c's {@code gpt2_tokenizer.bin} (version 2, EOT 50256). */
    public void writeTokenizerFile(Path file) {
        TokenizerFile.write(file, allTokenBytes(), EOT);
    }

    private static void checkId(int id) {
        if (id < 0 || id >= VOCAB_SIZE) {
            throw new dev.llmc4j.util.LlmcException(
                    "token id " + id + " outside GPT-2's vocabulary 0.." + (VOCAB_SIZE - 1));
        }
    }
}
