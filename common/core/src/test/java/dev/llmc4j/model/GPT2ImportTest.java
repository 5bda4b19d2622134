package dev.llmc4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.format.Safetensors;
import dev.llmc4j.format.Safetensors.TensorData;
import dev.llmc4j.testing.Fixtures;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GPT2ImportTest {

    @TempDir
    Path folder;

    private static final OptionalInt TWO_HEADS = OptionalInt.of(2);

    private static float[] toArray(MemorySegment nativeFloats) {
        return nativeFloats.toArray(LittleEndian.NATIVE_FLOAT);
    }

    private GPT2Import.Imported load(Path file, OptionalInt heads, Arena arena) {
        return GPT2Import.load(Safetensors.open(file, arena), heads, arena);
    }

    private String loadFails(Path file, OptionalInt heads) {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(LlmcException.class, () -> load(file, heads, arena));
            return e.getMessage();
        }
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), () -> "'" + part + "' missing from: " + message);
    }

    // ---- the mapping

    @Test
    void mapsEveryTensorTransposesConv1dAndPadsWte() {
        var model = new SyntheticHfGpt2(2, 8);
        Path file = model.write(folder.resolve("model.safetensors"), "", false);
        try (Arena arena = Arena.ofConfined()) {
            var imported = load(file, TWO_HEADS, arena);
            assertEquals(new GPT2Config(6, 10, 128, 2, 2, 8), imported.config());
            assertEquals("--heads", imported.headsSource());
            assertArrayEquals(model.expected(), toArray(imported.parameters()));
        }
    }

    @Test
    void acceptsTheTransformerPrefixAndIgnoresBuffersAndATiedLmHead() {
        var model = new SyntheticHfGpt2(3, 8);
        Path file = model.write(folder.resolve("model.safetensors"), "transformer.", true);
        try (Arena arena = Arena.ofConfined()) {
            var imported = load(file, TWO_HEADS, arena);
            assertEquals(3, imported.config().numLayers());
            assertArrayEquals(model.expected(), toArray(imported.parameters()));
        }
    }

    @Test
    void readsBf16TensorsToo() throws IOException {
        // a bf16 file: the values 1..k are exact in bf16 only up to 256, so use a model whose values we round first
        var model = new SyntheticHfGpt2(1, 8);
        Path f32 = model.write(folder.resolve("f32.safetensors"), "", false);
        try (Arena arena = Arena.ofConfined()) {
            float[] viaF32 = toArray(load(f32, TWO_HEADS, arena).parameters());
            // rewrite every tensor as BF16 by hand
            var st = Safetensors.open(f32, arena);
            var header = new StringBuilder("{");
            var data = new java.io.ByteArrayOutputStream();
            long offset = 0;
            for (String name : st.names()) {
                float[] values = st.readFloats(name);
                long[] shape = st.shape(name);
                if (header.length() > 1) header.append(',');
                header.append("\"%s\":{\"dtype\":\"BF16\",\"shape\":%s,\"data_offsets\":[%d,%d]}"
                        .formatted(
                                name,
                                java.util.Arrays.toString(shape).replace(" ", ""),
                                offset,
                                offset + 2L * values.length));
                for (float v : values) {
                    short b = BFloat16.fromFloat(v);
                    data.write(b & 0xFF);
                    data.write((b >> 8) & 0xFF);
                }
                offset += 2L * values.length;
            }
            byte[] json = header.append('}').toString().getBytes(java.nio.charset.StandardCharsets.UTF_8);
            var bytes =
                    java.nio.ByteBuffer.allocate(8 + json.length + data.size()).order(java.nio.ByteOrder.LITTLE_ENDIAN);
            bytes.putLong(json.length).put(json).put(data.toByteArray());
            Path bf16 = folder.resolve("bf16.safetensors");
            Files.write(bf16, bytes.array());

            float[] viaBf16 = toArray(load(bf16, TWO_HEADS, arena).parameters());
            for (int i = 0; i < viaF32.length; i++)
                assertEquals(BFloat16.toFloat(BFloat16.fromFloat(viaF32[i])), viaBf16[i], "parameter " + i);
        }
    }

    @Test
    void writesCheckpointsThatReadBack() {
        var model = new SyntheticHfGpt2(2, 8);
        Path file = model.write(folder.resolve("model.safetensors"), "", true);
        Path v3 = folder.resolve("gpt2.bin"), v5 = folder.resolve("gpt2_bf16.bin");
        var summary = GPT2Import.importCheckpoint(file, v3, TWO_HEADS, 3);
        GPT2Import.importCheckpoint(file, v5, TWO_HEADS, 5);
        assertEquals(new GPT2Config(6, 10, 128, 2, 2, 8), summary.config());
        float[] expected = model.expected();
        try (Arena arena = Arena.ofConfined()) {
            var fp32 = GPT2Checkpoint.open(v3, arena);
            assertEquals(3, fp32.version());
            assertEquals(summary.config(), fp32.config());
            MemorySegment read = arena.allocate((long) expected.length * Float.BYTES);
            fp32.readParametersInto(read);
            assertArrayEquals(expected, toArray(read));

            var bf16 = GPT2Checkpoint.open(v5, arena);
            assertEquals(5, bf16.version());
            bf16.readParametersInto(read);
            float[] widened = toArray(read);
            for (int i = 0; i < expected.length; i++)
                assertEquals(BFloat16.toFloat(BFloat16.fromFloat(expected[i])), widened[i], "parameter " + i);
        }
    }

    @Test
    void transposeIsOutByIn() {
        // Conv1D (in=2, out=3): rows are inputs
        float[] conv = {1, 2, 3, 4, 5, 6};
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(6 * Float.BYTES);
            GPT2Import.transposeInto(conv, 2, 3, out);
            assertArrayEquals(new float[] {1, 4, 2, 5, 3, 6}, toArray(out));
        }
    }

    // ---- the head count

    @Test
    void headsFromConfigJsonNextToTheFile() throws IOException {
        var model = new SyntheticHfGpt2(2, 8);
        Path file = model.write(folder.resolve("model.safetensors"), "", false);
        Path configJson = folder.resolve("config.json");
        Files.writeString(
                configJson,
                "{\"model_type\": \"gpt2\", \"n_head\": 4, \"n_embd\": 8, \"n_layer\": 2, \"n_positions\": 6, \"vocab_size\": 10}");
        try (Arena arena = Arena.ofConfined()) {
            var imported = load(file, OptionalInt.empty(), arena);
            assertEquals(4, imported.config().numHeads());
            assertEquals(configJson.toAbsolutePath().toString(), imported.headsSource());
            assertEquals(2, load(file, TWO_HEADS, arena).config().numHeads(), "--heads wins over config.json");
        }
    }

    @Test
    void configJsonThatDisagreesWithTheShapes() throws IOException {
        Path file = new SyntheticHfGpt2(2, 8).write(folder.resolve("model.safetensors"), "", false);
        Files.writeString(folder.resolve("config.json"), "{\"n_head\": 2, \"n_embd\": 768}");
        assertMentions(loadFails(file, OptionalInt.empty()), "config.json", "n_embd", "expected 8", "found 768");
        Files.writeString(folder.resolve("config.json"), "{\"n_head\": 2, \"n_layer\": 12}");
        assertMentions(loadFails(file, OptionalInt.empty()), "n_layer", "expected 2", "found 12");
        Files.writeString(folder.resolve("config.json"), "{\"n_head\": \"two\"}");
        assertMentions(loadFails(file, OptionalInt.empty()), "n_head", "a positive integer", "two");
        Files.writeString(folder.resolve("config.json"), "{\"n_head\": ");
        assertMentions(loadFails(file, OptionalInt.empty()), "config.json", "expected JSON", "invalid text");
    }

    @Test
    void headsDefaultToHeadSize64() {
        var model = new SyntheticHfGpt2(1, 128);
        Path file = model.write(folder.resolve("model.safetensors"), "", false);
        try (Arena arena = Arena.ofConfined()) {
            var imported = load(file, OptionalInt.empty(), arena);
            assertEquals(2, imported.config().numHeads());
            assertMentions(imported.headsSource(), "C / 64");
            assertArrayEquals(model.expected(), toArray(imported.parameters()));
        }
    }

    @Test
    void headsCannotBeGuessedWhenCIsNotAMultipleOf64() {
        Path file = new SyntheticHfGpt2(1, 8).write(folder.resolve("model.safetensors"), "", false);
        assertMentions(loadFails(file, OptionalInt.empty()), "cannot tell the number of heads", "C = 8", "--heads");
    }

    @Test
    void headsMustDivideC() {
        Path file = new SyntheticHfGpt2(1, 8).write(folder.resolve("model.safetensors"), "", false);
        assertMentions(loadFails(file, OptionalInt.of(3)), "heads (from --heads)", "divisor of C = 8", "found 3");
        assertMentions(loadFails(file, OptionalInt.of(0)), "found 0");
    }

    // ---- files that are not (complete, consistent) GPT-2s

    @Test
    void notAGpt2File() {
        Path file = folder.resolve("llama.safetensors");
        Safetensors.write(file, java.util.Map.of("model.embed_tokens.weight", TensorData.of(new float[4], 2, 2)));
        String message = loadFails(file, TWO_HEADS);
        assertMentions(message, file.toString(), "wte.weight", "not a GPT-2 file", "model.embed_tokens.weight");
    }

    @Test
    void missingTensor() {
        var model = new SyntheticHfGpt2(2, 8);
        var tensors = model.tensors("");
        tensors.remove("h.1.mlp.c_fc.bias");
        Path file = folder.resolve("model.safetensors");
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), file.toString(), "tensor h.1.mlp.c_fc.bias", "missing");

        tensors = model.tensors("");
        tensors.remove("ln_f.bias");
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "tensor ln_f.bias", "missing");
    }

    @Test
    void unexpectedTensor() {
        var tensors = new SyntheticHfGpt2(1, 8).tensors("");
        tensors.put("score.weight", TensorData.of(new float[16], 2, 8));
        Path file = folder.resolve("model.safetensors");
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "tensor names", "only GPT-2 tensors", "score.weight");
    }

    @Test
    void sameTensorWithAndWithoutPrefix() {
        var tensors = new SyntheticHfGpt2(1, 8).tensors("");
        tensors.put("transformer.ln_f.bias", tensors.get("ln_f.bias"));
        Path file = folder.resolve("model.safetensors");
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "tensor ln_f.bias", "twice");
    }

    @Test
    void shapesThatDisagree() {
        var model = new SyntheticHfGpt2(2, 8);
        Path file = folder.resolve("model.safetensors");

        // c_attn stored the Linear way (3C, C) instead of Conv1D (C, 3C)
        var tensors = model.tensors("");
        tensors.put("h.0.attn.c_attn.weight", TensorData.of(new float[3 * 8 * 8], 24, 8));
        Safetensors.write(file, tensors);
        assertMentions(
                loadFails(file, TWO_HEADS),
                "shape of h.0.attn.c_attn.weight",
                "[8, 24] = (C, 3C) with C = 8",
                "found [24, 8]");

        tensors = model.tensors("");
        tensors.put("wpe.weight", TensorData.of(new float[6 * 4], 6, 4));
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "shape of wpe.weight", "[maxT, 8]", "[6, 4]");

        tensors = model.tensors("");
        tensors.put("wte.weight", TensorData.of(new float[80], 80));
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "shape of wte.weight", "[V, C]", "[80]");

        tensors = model.tensors("");
        tensors.put("h.1.ln_2.bias", TensorData.of(new float[9], 9));
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "shape of h.1.ln_2.bias", "[8]", "found [9]");
    }

    @Test
    void untiedLmHeadIsRefused() {
        var model = new SyntheticHfGpt2(1, 8);
        var tensors = model.tensors("");
        float[] other = new float[10 * 8];
        other[3] = 1f;
        tensors.put("lm_head.weight", TensorData.of(other, 10, 8));
        Path file = folder.resolve("model.safetensors");
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "lm_head.weight", "equal to wte.weight", "untied");
    }

    @Test
    void layersMustBeContiguous() {
        var model = new SyntheticHfGpt2(3, 8);
        var tensors = model.tensors("");
        tensors.keySet().removeIf(name -> name.startsWith("h.1."));
        Path file = folder.resolve("model.safetensors");
        Safetensors.write(file, tensors);
        assertMentions(loadFails(file, TWO_HEADS), "tensor h.1.ln_1.weight", "missing");
    }

    @Test
    void missingFile() {
        var e = assertThrows(
                FileFormatException.class,
                () -> GPT2Import.importCheckpoint(
                        folder.resolve("absent.safetensors"), folder.resolve("out.bin"), TWO_HEADS, 3));
        assertMentions(e.getMessage(), "absent.safetensors", "no such file");
        assertTrue(Files.notExists(folder.resolve("out.bin")));
    }

    // ---- parity with the PyTorch reference

    @Test
    void pytorchReferenceFixtureImportsByteIdentical() throws IOException {
        Path safetensors = Fixtures.require("gpt2_small.safetensors", "reference/make_fixtures.sh target/fixtures");
        Path reference = Fixtures.require("gpt2_small.bin", "reference/make_fixtures.sh target/fixtures");
        Path referenceBf16 = Fixtures.require("gpt2_small_bf16.bin", "reference/make_fixtures.sh target/fixtures");
        // gpt2_small is L=2 NH=4 C=128: the head count is not C/64, so it is given, as --heads would be
        Path v3 = folder.resolve("gpt2_small.bin"), v5 = folder.resolve("gpt2_small_bf16.bin");
        var summary = GPT2Import.importCheckpoint(safetensors, v3, OptionalInt.of(4), 3);
        assertEquals(new GPT2Config(1024, 50257, 50304, 2, 4, 128), summary.config());
        assertEquals(-1, Files.mismatch(reference, v3), "imported fp32 checkpoint differs from " + reference);
        GPT2Import.importCheckpoint(safetensors, v5, OptionalInt.of(4), 5);
        assertEquals(-1, Files.mismatch(referenceBf16, v5), "imported bf16 checkpoint differs from " + referenceBf16);
    }
}
