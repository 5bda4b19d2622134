package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.format.Safetensors;
import dev.llmc4j.format.Safetensors.TensorData;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.SyntheticHfGpt2;
import dev.llmc4j.testing.Fixtures;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs {@code llmc import gpt2 ...} in-process on synthetic files and on the PyTorch reference fixture. */
class ImportCommandTest {
    @TempDir
    Path folder;

    private static void assertOneLineError(LlmcRun result, String... parts) {
        assertEquals(1, result.exitCode(), result.out() + result.err());
        String err = result.err().strip();
        assertTrue(err.startsWith("error: "), err);
        assertFalse(err.contains("\n"), "one line, no stack trace: " + err);
        for (String part : parts) assertTrue(err.contains(part), () -> "'" + part + "' missing from: " + err);
    }

    @Test
    void importsASyntheticModel() {
        var model = new SyntheticHfGpt2(2, 8);
        Path file = model.write(folder.resolve("model.safetensors"), "transformer.", true);
        Path out = folder.resolve("out/gpt2.bin");
        var result = LlmcRun.of("import", "gpt2", "--from", file.toString(), "-o", out.toString(), "--heads", "2");
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(result.out().contains("wrote " + out), result.out());
        assertTrue(result.out().contains("checkpoint version 3 (fp32)"), result.out());
        try (Arena arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(out, arena);
            assertEquals(2, checkpoint.config().numHeads());
            assertArrayEquals(model.expected(), checkpoint.rawParameters().toArray(LittleEndian.FLOAT32));
        }
    }

    @Test
    void folderWithConfigJsonAndBf16() throws IOException {
        Path snapshot = Files.createDirectories(folder.resolve("snapshot"));
        new SyntheticHfGpt2(1, 8).write(snapshot.resolve("model.safetensors"), "", false);
        Files.writeString(snapshot.resolve("config.json"), "{\"n_head\": 4, \"n_embd\": 8}");
        Path out = folder.resolve("gpt2_bf16.bin");
        var result = LlmcRun.of("import", "gpt2", "--from", snapshot.toString(), "-o", out.toString(), "--bf16");
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(result.out().contains("checkpoint version 5 (bf16)"), result.out());
        assertTrue(result.out().contains("config.json"), result.out());
        try (Arena arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(out, arena);
            assertEquals(5, checkpoint.version());
            assertEquals(4, checkpoint.config().numHeads());
        }
    }

    @Test
    void missingFile() {
        Path out = folder.resolve("gpt2.bin");
        var result = LlmcRun.of(
                "import", "gpt2", "--from", folder.resolve("nope.safetensors").toString(), "-o", out.toString());
        assertOneLineError(result, "nope.safetensors", "no such file");
        assertFalse(Files.exists(out));
    }

    @Test
    void notASafetensorsFile() throws IOException {
        Path file = Files.writeString(folder.resolve("model.safetensors"), "this is text, not safetensors");
        var result = LlmcRun.of(
                "import",
                "gpt2",
                "--from",
                file.toString(),
                "-o",
                folder.resolve("gpt2.bin").toString());
        assertOneLineError(result, file.toString(), "header length");
    }

    @Test
    void notAGpt2File() {
        Path file = folder.resolve("llama.safetensors");
        Safetensors.write(file, Map.of("model.norm.weight", TensorData.of(new float[4], 4)));
        var result = LlmcRun.of(
                "import",
                "gpt2",
                "--from",
                file.toString(),
                "-o",
                folder.resolve("gpt2.bin").toString());
        assertOneLineError(result, file.toString(), "wte.weight", "not a GPT-2 file", "model.norm.weight");
    }

    @Test
    void shapesThatDisagree() {
        var tensors = new SyntheticHfGpt2(1, 8).tensors("");
        tensors.put("h.0.mlp.c_fc.weight", TensorData.of(new float[32 * 8], 32, 8)); // Linear layout, not Conv1D
        Path file = folder.resolve("model.safetensors");
        Safetensors.write(file, tensors);
        var result = LlmcRun.of(
                "import",
                "gpt2",
                "--from",
                file.toString(),
                "-o",
                folder.resolve("gpt2.bin").toString(),
                "--heads",
                "2");
        assertOneLineError(result, "shape of h.0.mlp.c_fc.weight", "[8, 32]", "found [32, 8]");
    }

    @Test
    void headsThatDoNotDivideC() {
        Path file = new SyntheticHfGpt2(1, 8).write(folder.resolve("model.safetensors"), "", false);
        var result = LlmcRun.of(
                "import",
                "gpt2",
                "--from",
                file.toString(),
                "-o",
                folder.resolve("gpt2.bin").toString(),
                "--heads",
                "3");
        assertOneLineError(result, "heads", "divisor of C = 8", "found 3");
        result = LlmcRun.of(
                "import",
                "gpt2",
                "--from",
                file.toString(),
                "-o",
                folder.resolve("gpt2.bin").toString());
        assertOneLineError(result, "cannot tell the number of heads", "--heads");
    }

    @Test
    void usageWithoutASubcommand() {
        var result = LlmcRun.of("import");
        assertEquals(0, result.exitCode());
        assertTrue(result.out().contains("gpt2"), result.out());
    }

    @Test
    void referenceFixtureIsByteIdentical() throws IOException {
        Path safetensors = Fixtures.require("gpt2_small.safetensors", "reference/make_fixtures.sh target/fixtures");
        Path reference = Fixtures.require("gpt2_small.bin", "reference/make_fixtures.sh target/fixtures");
        Path out = folder.resolve("gpt2_small.bin");
        var result =
                LlmcRun.of("import", "gpt2", "--from", safetensors.toString(), "-o", out.toString(), "--heads", "4");
        assertEquals(0, result.exitCode(), result.err());
        assertEquals(-1, Files.mismatch(reference, out), "imported checkpoint differs from " + reference);
    }
}
