package dev.llmc4j.llama3;

import static dev.llmc4j.testing.FormatFuzzer.assertNoFailures;

import dev.llmc4j.testing.FormatFuzzer;
import dev.llmc4j.testing.FormatFuzzer.Field;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The Llama 3 formats, damaged by {@link FormatFuzzer} (seeded) and run through their public readers: a checkpoint
 * (llama3-branch header, fp32 and bf16) loaded into a model, and a {@code tokenizer.model} loaded and used. Each
 * case ends accepted or in one line of the project's error naming the file.
 */
class Llama3FormatFuzzTest {
    private static final long SEED = 20241205;
    private static final int RANDOM_CASES = 150;

    @TempDir
    Path dir;

    @Test
    void checkpointFp32() throws Exception {
        fuzzCheckpoint(Llama3Checkpoint.VERSION_FP32);
    }

    @Test
    void checkpointBf16() throws Exception {
        fuzzCheckpoint(Llama3Checkpoint.VERSION_BF16);
    }

    private void fuzzCheckpoint(int version) throws Exception {
        Path valid = dir.resolve("valid.bin");
        try (var model = Llama3.randomInit(Llama3CheckpointTest.TINY, 1)) {
            model.save(valid, version);
        }
        var fields = new ArrayList<>(Field.slots(0, 0, 12));
        fields.add(Field.float32("ffn_dim_multiplier (float header[0])", 1024));
        fields.add(Field.float32("norm_eps (float header[1])", 1028));
        fields.add(Field.float32("rope_theta (float header[2])", 1032));
        assertNoFailures(new FormatFuzzer(dir, SEED + version, RANDOM_CASES)
                .fuzzBinary(
                        "Llama 3 checkpoint v" + version,
                        "model.bin",
                        Files.readAllBytes(valid),
                        fields,
                        file -> Llama3.fromCheckpoint(file).close()));
    }

    @Test
    void tokenizerModel() throws Exception {
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
        assertNoFailures(new FormatFuzzer(dir, SEED + 7, RANDOM_CASES)
                .fuzzText("Llama 3 tokenizer.model", "tokenizer.model", lines.toString(), FormatFuzzer::utf8, file -> {
                    var tokenizer = Llama3Tokenizer.load(file);
                    int[] ids = tokenizer.encodeWithSpecialTokens("<|begin_of_text|>hello world<|eot_id|>");
                    tokenizer.decode(ids);
                    for (int id = 0; id < tokenizer.vocabSize(); id++) tokenizer.decodeBytes(id);
                }));
    }

    private static String b64(byte[] bytes) {
        return Base64.getEncoder().encodeToString(bytes);
    }
}
