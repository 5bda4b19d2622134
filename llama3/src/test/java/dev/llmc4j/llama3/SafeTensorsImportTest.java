package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.testing.Fixtures;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafeTensorsImportTest {
    static final String MAKE_FIXTURES = "reference/make_llama3_fixtures.sh target/fixtures";

    @TempDir
    Path tmp;

    /** The reference exported its weights under HF names with HF's q/k row order; importing restores them exactly. */
    @Test
    void importOfTheReferenceExportGivesTheCheckpoint() {
        Path safetensors = Fixtures.require("llama3_small.safetensors", MAKE_FIXTURES);
        Path checkpoint = Fixtures.require("llama3_small.bin", MAKE_FIXTURES);
        try (var reference = Llama3Checkpoint.read(checkpoint);
                var model = SafeTensorsImport.load(safetensors, reference.config())) {
            assertArrayEquals(reference.parametersToArray(), model.parameters().toArray(Floats.FLOAT));
        }
    }

    @Test
    void reportsMissingTensorsAndBadHeaders() throws IOException {
        byte[] json = "{\"model.norm.weight\":{\"dtype\":\"F32\",\"shape\":[16],\"data_offsets\":[0,64]}}"
                .getBytes(StandardCharsets.UTF_8);
        var bytes = ByteBuffer.allocate(8 + json.length + 64).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(json.length).put(json);
        Path file = tmp.resolve("partial.safetensors");
        Files.write(file, bytes.array());
        var e = assertThrows(FileFormatException.class, () -> SafeTensorsImport.load(file, Llama3CheckpointTest.TINY));
        assertTrue(
                e.getMessage().contains("model.embed_tokens.weight")
                        && e.getMessage().contains("missing"),
                e.getMessage());

        Path garbage = tmp.resolve("garbage.safetensors");
        Files.write(garbage, new byte[] {(byte) 0xff, 0, 0, 0, 0, 0, 0, 0, 1, 2});
        assertThrows(FileFormatException.class, () -> SafeTensorsImport.load(garbage, Llama3CheckpointTest.TINY));
        var missing = assertThrows(
                LlmcException.class,
                () -> SafeTensorsImport.load(tmp.resolve("no.safetensors"), Llama3CheckpointTest.TINY));
        assertTrue(missing.getMessage().contains("no.safetensors"));
    }
}
