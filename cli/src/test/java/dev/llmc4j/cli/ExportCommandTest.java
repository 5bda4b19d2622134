package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.Json;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.testing.Fixtures;
import dev.llmc4j.testing.Reference;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc export hf}: import(export(m)) gives m back byte for byte, and the exported tensors under our PyTorch
 * reference's Hugging Face-layout forward (reference/hf_logits.py) give llmc's logits to 1e-5.
 */
class ExportCommandTest {
    static final String MAKE_FIXTURES = "reference/make_fixtures.sh target/fixtures";
    static final String MAKE_LLAMA3_FIXTURES = "reference/make_llama3_fixtures.sh target/fixtures";
    static final String[] LLAMA3_SMALL_SHAPE = {
        "--layers",
        "2",
        "--heads",
        "4",
        "--kv-heads",
        "2",
        "--channels",
        "64",
        "--vocab",
        "512",
        "--max-seq-len",
        "128",
        "--ffn-multiplier",
        "1.3",
        "--multiple-of",
        "32"
    };

    @TempDir
    Path folder;

    private Path export(Path model) {
        Path out = folder.resolve("hf-" + model.getFileName());
        var run = LlmcRun.of("export", "hf", "-e", model.toString(), "-o", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(Files.isRegularFile(out.resolve("model.safetensors"))
                && Files.isRegularFile(out.resolve("config.json")));
        return out;
    }

    @Test
    void gpt2RoundTripsByteForByte() throws IOException {
        for (String name : new String[] {"gpt2_small.bin", "gpt2_small_bf16.bin"}) {
            Path model = Fixtures.require(name, MAKE_FIXTURES);
            Path hf = export(model);
            var config = (Map<?, ?>) Json.parse(Files.readString(hf.resolve("config.json")));
            assertEquals(4L, config.get("n_head"));
            assertEquals(50257L, config.get("vocab_size"));
            Path back = folder.resolve("back-" + name);
            var run = name.contains("bf16")
                    ? LlmcRun.of("import", "gpt2", "--from", hf.toString(), "-o", back.toString(), "--bf16")
                    : LlmcRun.of("import", "gpt2", "--from", hf.toString(), "-o", back.toString());
            assertEquals(0, run.exitCode(), run.err());
            assertEquals(-1L, Files.mismatch(model, back), name + ": first differing byte");
        }
    }

    @Test
    void gpt2ExportGivesLlmcsLogitsUnderTheHfLayoutForward() {
        Path model = Fixtures.require("gpt2_small.bin", MAKE_FIXTURES);
        Path hf = export(model);
        int[] tokens = new Random(11).ints(24, 0, 50257).toArray();
        try (var gpt2 = GPT2.fromCheckpoint(model)) {
            gpt2.forward(tokens, null, 1, tokens.length);
            int V = gpt2.vocabSize(), Vp = gpt2.config.paddedVocabSize();
            float[] ours = new float[tokens.length * V];
            for (int t = 0; t < tokens.length; t++)
                MemorySegment.copy(gpt2.logits(), ValueLayout.JAVA_FLOAT, (long) t * Vp * Float.BYTES, ours, t * V, V);
            compare(referenceLogits(hf, tokens), ours);
        }
    }

    @Test
    void llama3RoundTripsByteForByte() throws IOException {
        Path model = Fixtures.require("llama3_small.bin", MAKE_LLAMA3_FIXTURES);
        Path hf = export(model);
        Path back = folder.resolve("back.bin");
        String[] args = concat(
                new String[] {
                    "llama3",
                    "import",
                    "--safetensors",
                    hf.resolve("model.safetensors").toString(),
                    "-o",
                    back.toString()
                },
                LLAMA3_SMALL_SHAPE);
        var run = LlmcRun.of(args);
        assertEquals(0, run.exitCode(), run.err());
        assertEquals(-1L, Files.mismatch(model, back), "first differing byte");
    }

    @Test
    void llama3ExportGivesLlmcsLogitsUnderTheHfLayoutForward() throws IOException {
        Path model = Fixtures.require("llama3_small.bin", MAKE_LLAMA3_FIXTURES);
        Path hf = export(model);
        var config = (Map<?, ?>) Json.parse(Files.readString(hf.resolve("config.json")));
        assertEquals("llama", config.get("model_type"));
        assertFalse((Boolean) config.get("tie_word_embeddings")); // the fixture's lm_head is its own
        int[] tokens = new Random(12).ints(40, 0, 512).toArray();
        try (var llama = Llama3.fromCheckpoint(model)) {
            llama.forward(tokens, null, 1, tokens.length);
            float[] ours = llama.logits()
                    .asSlice(0, (long) tokens.length * 512 * Float.BYTES)
                    .toArray(ValueLayout.JAVA_FLOAT);
            compare(referenceLogits(hf, tokens), ours);
        }
    }

    @Test
    void notACheckpointIsAOneLineError() throws IOException {
        Path junk = Files.write(folder.resolve("junk.bin"), new byte[2048]);
        var run = LlmcRun.of(
                "export", "hf", "-e", junk.toString(), "-o", folder.resolve("x").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("magic") && run.err().lines().count() == 1, run.err());
    }

    private float[] referenceLogits(Path hf, int[] tokens) {
        Path out = folder.resolve("logits.bin");
        Reference.run(
                "hf_logits.py",
                "--folder",
                hf.toString(),
                "--out",
                out.toString(),
                "--tokens",
                Arrays.stream(tokens).mapToObj(Integer::toString).collect(Collectors.joining(",")));
        try {
            var buffer = ByteBuffer.wrap(Files.readAllBytes(out))
                    .order(ByteOrder.LITTLE_ENDIAN)
                    .asFloatBuffer();
            float[] logits = new float[buffer.remaining()];
            buffer.get(logits);
            return logits;
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static void compare(float[] reference, float[] ours) {
        assertEquals(reference.length, ours.length, "logit count");
        double worst = 0;
        for (int i = 0; i < ours.length; i++) {
            double error = Math.abs(ours[i] - reference[i]) / Math.max(1, Math.abs(reference[i]));
            worst = Math.max(worst, error);
        }
        System.out.printf(
                "largest logit error (relative, at least 1 absolute) %.3e over %d logits%n", worst, ours.length);
        assertTrue(worst <= 1e-5, "largest logit error " + worst);
    }

    private static String[] concat(String[] a, String[] b) {
        String[] all = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
