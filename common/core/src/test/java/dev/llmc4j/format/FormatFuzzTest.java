package dev.llmc4j.format;

import static dev.llmc4j.testing.FormatFuzzer.assertNoFailures;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.model.DebugState;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.GPT2Import;
import dev.llmc4j.model.SyntheticHfGpt2;
import dev.llmc4j.testing.FormatFuzzer;
import dev.llmc4j.testing.FormatFuzzer.Field;
import dev.llmc4j.testing.RandomTokens;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every format the common module reads, damaged by {@link FormatFuzzer} (seeded: the same cases every run) and run
 * through its public reader: each case ends accepted or in one line of {@link dev.llmc4j.util.LlmcException}
 * naming the file, never in another exception, a hang or an allocation the file cannot justify.
 */
class FormatFuzzTest {
    private static final long SEED = 20241205;
    private static final int RANDOM_CASES = 200;

    @TempDir
    Path dir;

    /** The model shape of the fuzzed checkpoints, debug states and training states (2040 parameters). */
    private static final GPT2Config CONFIG = FormatFixtures.TINY;

    private static final long N = CONFIG.numParameters();

    private FormatFuzzer fuzzer(long salt) {
        return new FormatFuzzer(dir, SEED + salt, RANDOM_CASES);
    }

    private static List<Field> gpt2HeaderFields() {
        return FormatFuzzer.Field.slots(0, 0, 8);
    }

    @Test
    void gpt2CheckpointFp32() throws Exception {
        fuzzCheckpoint(GPT2Checkpoint.VERSION_FP32);
    }

    @Test
    void gpt2CheckpointBf16() throws Exception {
        fuzzCheckpoint(GPT2Checkpoint.VERSION_BF16);
    }

    private void fuzzCheckpoint(int version) throws Exception {
        Path valid = dir.resolve("valid.bin");
        GPT2Checkpoint.write(valid, CONFIG, MemorySegment.ofArray(FormatFixtures.values(N, 1)), version);
        assertNoFailures(fuzzer(version)
                .fuzzBinary(
                        "GPT-2 checkpoint v" + version,
                        "model.bin",
                        Files.readAllBytes(valid),
                        gpt2HeaderFields(),
                        file -> {
                            try (var arena = Arena.ofConfined()) {
                                var checkpoint = GPT2Checkpoint.open(file, arena);
                                checkpoint.readParametersInto(arena.allocate(checkpoint.numParameters() * Float.BYTES));
                            }
                        }));
    }

    @Test
    void debugState() throws Exception {
        int B = 2, T = 3, V = CONFIG.vocabSize();
        Path valid = dir.resolve("valid.bin");
        DebugState.write(
                valid,
                B,
                T,
                RandomTokens.of(B * T, V, 1),
                RandomTokens.of(B * T, V, 2),
                MemorySegment.ofArray(FormatFixtures.values((long) B * T * V, 3)),
                2.5f,
                MemorySegment.ofArray(FormatFixtures.values(N, 4)),
                new float[] {2.4f, 2.3f});
        assertNoFailures(fuzzer(10)
                .fuzzBinary(
                        "GPT-2 debug state",
                        "state.bin",
                        Files.readAllBytes(valid),
                        FormatFuzzer.Field.slots(0, 0, 5),
                        file -> {
                            try (var arena = Arena.ofConfined()) {
                                DebugState.read(file, CONFIG, arena);
                            }
                        }));
    }

    @Test
    void tokenizer() throws Exception {
        byte[][] tokens = new byte[40][];
        for (int i = 0; i < tokens.length; i++) tokens[i] = ("tok" + i).getBytes(StandardCharsets.UTF_8);
        Path valid = dir.resolve("valid.bin");
        TokenizerFile.write(valid, tokens, 39);
        var fields = new ArrayList<>(FormatFuzzer.Field.slots(0, 0, 4));
        fields.add(Field.int32("length byte of token 0 and its bytes", 1024));
        assertNoFailures(fuzzer(11)
                .fuzzBinary("GPT-2 tokenizer", "tokenizer.bin", Files.readAllBytes(valid), fields, file -> {
                    var tokenizer = TokenizerFile.read(file);
                    for (int id = 0; id < tokenizer.vocabSize(); id++) tokenizer.decode(id);
                }));
    }

    @Test
    void gpt2Shard() throws Exception {
        fuzzShard(TokenShard.Kind.GPT2);
    }

    @Test
    void llama3Shard() throws Exception {
        fuzzShard(TokenShard.Kind.LLAMA3);
    }

    private void fuzzShard(TokenShard.Kind kind) throws Exception {
        Path valid = dir.resolve("valid.bin");
        TokenShard.write(valid, kind, RandomTokens.of(300, 10, 5));
        assertNoFailures(fuzzer(20 + kind.ordinal())
                .fuzzBinary(
                        kind + " token shard",
                        "shard.bin",
                        Files.readAllBytes(valid),
                        FormatFuzzer.Field.slots(0, 0, 3),
                        file -> {
                            try (var loader = new DataLoader(file.toString(), 2, 8, 0, 1, true, 10)) {
                                for (int i = 0; i < 3; i++) loader.nextBatch();
                            }
                        }));
    }

    /** Hugging Face GPT-2 weights: the safetensors file's length field, its JSON header as text, then config.json. */
    @Test
    void safetensorsAndConfigJson() throws Exception {
        Path folder = Files.createDirectories(dir.resolve("hf"));
        var hf = new SyntheticHfGpt2(1, 8);
        Path valid = hf.write(dir.resolve("valid.safetensors"), "", true);
        byte[] bytes = Files.readAllBytes(valid);
        String config = """
                {"architectures": ["GPT2LMHeadModel"], "n_head": 2, "n_embd": 8, "n_layer": 1, "n_positions": 6,
                 "vocab_size": 10, "layer_norm_epsilon": 1e-05, "model_type": "gpt2"}
                """;
        Files.writeString(folder.resolve("config.json"), config);
        FormatFuzzer.Reader importer = file -> {
            try (var arena = Arena.ofConfined()) {
                GPT2Import.load(
                        Safetensors.open(folder.resolve("model.safetensors"), arena), OptionalInt.empty(), arena);
            }
        };
        var fuzzer = new FormatFuzzer(folder, SEED + 40, RANDOM_CASES);
        assertNoFailures(fuzzer.fuzzBinary(
                "safetensors", "model.safetensors", bytes, List.of(Field.int64("header length", 0)), importer));

        long headerLength =
                ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        String json = new String(bytes, 8, (int) headerLength, StandardCharsets.UTF_8);
        byte[] data = Arrays.copyOfRange(bytes, 8 + (int) headerLength, bytes.length);
        assertNoFailures(fuzzer.fuzzText(
                "safetensors JSON header",
                "model.safetensors",
                json,
                text -> {
                    byte[] header = text.getBytes(StandardCharsets.UTF_8);
                    var out =
                            ByteBuffer.allocate(8 + header.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
                    return out.putLong(header.length).put(header).put(data).array();
                },
                importer));

        Files.write(folder.resolve("model.safetensors"), bytes);
        assertNoFailures(fuzzer.fuzzText(
                "config.json",
                "config.json",
                config,
                FormatFuzzer::utf8,
                file -> importer.read(folder.resolve("model.safetensors"))));
    }
}
