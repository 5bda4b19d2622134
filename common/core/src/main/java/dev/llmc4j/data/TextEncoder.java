package dev.llmc4j.data;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import java.nio.file.Path;
import java.util.function.Function;
import java.util.function.UnaryOperator;

/**
 * How one model family turns text into shard tokens, llm.c's {@code dev/data} scripts' {@code --model} choice:
 * <pre>
 *   gpt2   : GPT-2 BPE,   sections start with &lt;|endoftext|&gt;   (50256),  uint16 shards, gpt2_tokenizer.bin beside them
 *   llama3 : Llama 3 BPE, sections start with &lt;|begin_of_text|&gt; (128000), uint32 shards, no tokenizer file
 * </pre>
 * The Llama 3 one lives with its tokenizer (the {@code llama3} module), so {@code common} knows only the interface.
 *
 * @param shardKind       the shard format the tokens go into
 * @param sectionStart    the token written before every section
 * @param encoder         the ordinary encoding: no special tokens added, special-token text encoded as plain text
 * @param tokenizerWriter writes the tokenizer file the trainer reads into an output folder and returns its path,
 *                        or returns null when there is none to write
 */
public record TextEncoder(
        TokenShard.Kind shardKind,
        int sectionStart,
        Function<String, int[]> encoder,
        UnaryOperator<Path> tokenizerWriter) {

    /** GPT-2 as llm.c: EOT before each section, tiktoken's encode_ordinary, and {@code gpt2_tokenizer.bin}. */
    public static TextEncoder gpt2(GPT2Tokenizer tokenizer) {
        return new TextEncoder(TokenShard.Kind.GPT2, GPT2Tokenizer.EOT, tokenizer::encodeOrdinary, folder -> {
            Path file = folder.resolve("gpt2_tokenizer.bin");
            tokenizer.writeTokenizerFile(file);
            return file;
        });
    }

    /** {@link #gpt2(GPT2Tokenizer)} with the built-in GPT-2 tokenizer. */
    public static TextEncoder gpt2() {
        return gpt2(GPT2Tokenizer.get());
    }

    /** An encoder whose tokenizer file the user already has (Llama 3's {@code tokenizer.model}): nothing is written. */
    public static TextEncoder withoutTokenizerFile(
            TokenShard.Kind shardKind, int sectionStart, Function<String, int[]> encoder) {
        return new TextEncoder(shardKind, sectionStart, encoder, folder -> null);
    }

    public int[] encode(String text) {
        return encoder.apply(text);
    }

    /** Writes the tokenizer file into {@code folder}; its path, or null when this encoder has none. */
    public Path writeTokenizer(Path folder) {
        return tokenizerWriter.apply(folder);
    }
}
