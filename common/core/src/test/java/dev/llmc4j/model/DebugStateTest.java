package dev.llmc4j.model;

import static dev.llmc4j.format.FormatFixtures.TINY;
import static dev.llmc4j.format.FormatFixtures.listing;
import static dev.llmc4j.format.FormatFixtures.patchInt;
import static dev.llmc4j.format.FormatFixtures.patchSlot;
import static dev.llmc4j.format.FormatFixtures.resize;
import static dev.llmc4j.format.FormatFixtures.segment;
import static dev.llmc4j.format.FormatFixtures.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.LittleEndian;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DebugStateTest {

    @TempDir
    Path folder;

    private static final int B = 2, T = 3, V = TINY.vocabSize();
    private final int[] x = {1, 2, 3, 4, 5, 9};
    private final int[] y = {2, 3, 4, 5, 9, 0};
    private final float[] logits = values((long) B * T * V, 3);
    private final float[] grads = values(TINY.numParameters(), 4);
    private final float loss = 2.302585f;

    private Path written(float[] losses) {
        Path file = folder.resolve("debug_state.bin");
        DebugState.write(file, B, T, x, y, segment(logits), loss, segment(grads), losses);
        return file;
    }

    private static long sizeWith(int steps) {
        return 1024 + 8L * B * T + 4L * B * T * V + 4 + 4 * TINY.numParameters() + 4L * steps;
    }

    private String readFails(Path file, GPT2Config config) {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(FileFormatException.class, () -> DebugState.read(file, config, arena));
            assertTrue(e.getMessage().contains(file.toString()), () -> "the message names the file: " + e.getMessage());
            return e.getMessage();
        }
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), () -> "'" + part + "' missing from: " + message);
    }

    @Test
    void roundTripWithStepLosses() throws IOException {
        float[] losses = {4.1f, 3.9f, 3.5f};
        Path file = written(losses);
        assertEquals(sizeWith(3), Files.size(file));
        assertArrayEquals(new String[] {"debug_state.bin"}, listing(folder));
        try (Arena arena = Arena.ofConfined()) {
            var state = DebugState.read(file, TINY, arena);
            assertEquals(B, state.batchSize());
            assertEquals(T, state.seqLen());
            assertArrayEquals(x, state.inputs());
            assertArrayEquals(y, state.targets());
            assertArrayEquals(logits, state.logits().toArray(LittleEndian.FLOAT32));
            assertEquals(loss, state.loss());
            assertArrayEquals(grads, state.gradients().toArray(LittleEndian.FLOAT32));
            assertArrayEquals(losses, state.expectedLosses());
            assertTrue(state.logits().isReadOnly() && state.gradients().isReadOnly());
        }
    }

    @Test
    void llmcOwnFilesHaveNoStepLosses() throws IOException {
        Path file = written(null);
        assertEquals(sizeWith(0), Files.size(file));
        try (Arena arena = Arena.ofConfined()) {
            var state = DebugState.read(file, TINY, arena);
            assertEquals(0, state.expectedLosses().length);
            assertArrayEquals(grads, state.gradients().toArray(LittleEndian.FLOAT32));
        }
    }

    @Test
    void readsAHandAssembledLlmcFile() throws IOException {
        // exactly what llm.c's train_gpt2.py writes: header with slot 4 zero, then x, y, logits, loss, grads
        ByteBuffer bytes = ByteBuffer.allocate(Math.toIntExact(sizeWith(0))).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putInt(20240327).putInt(2).putInt(B).putInt(T).position(1024);
        for (int id : x) bytes.putInt(id);
        for (int id : y) bytes.putInt(id);
        for (float f : logits) bytes.putFloat(f);
        bytes.putFloat(loss);
        for (float f : grads) bytes.putFloat(f);
        Path file = folder.resolve("llmc_debug_state.bin");
        Files.write(file, bytes.array());
        try (Arena arena = Arena.ofConfined()) {
            var state = DebugState.read(file, TINY, arena);
            assertArrayEquals(y, state.targets());
            assertEquals(logits[V + 7], state.logits().getAtIndex(LittleEndian.FLOAT32, V + 7)); // row 1, token 7
            assertEquals(loss, state.loss());
            assertEquals(grads[grads.length - 1], state.gradients().getAtIndex(LittleEndian.FLOAT32, grads.length - 1));
        }
        // and our writer produces the same bytes
        assertArrayEquals(bytes.array(), Files.readAllBytes(written(new float[0])));
    }

    @Test
    void tokenIdAtOrAboveVocab() throws IOException {
        Path file = written(null);
        patchInt(file, 1024 + 4 * 5, V); // x[5]: batch row 1, position 2
        assertMentions(
                readFails(file, TINY), "x[5] (batch row 1, position 2)", "expected a token id in [0, 10)", "found 10");
    }

    @Test
    void negativeTargetId() throws IOException {
        Path file = written(null);
        patchInt(file, 1024 + 4L * B * T + 4, -1); // y[1]
        assertMentions(readFails(file, TINY), "y[1] (batch row 0, position 1)", "found -1");
    }

    @Test
    void missingFileAndTruncatedHeader() throws IOException {
        assertMentions(readFails(folder.resolve("none.bin"), TINY), "no such file");
        Path file = folder.resolve("short.bin");
        Files.write(file, new byte[1000]);
        assertMentions(readFails(file, TINY), "header", "expected 1024 bytes", "found 1000 bytes");
    }

    @Test
    void truncatedBody() throws IOException {
        Path file = written(new float[] {1f});
        resize(file, sizeWith(1) - 1);
        assertMentions(
                readFails(file, TINY),
                "file size",
                "expected " + sizeWith(1) + " bytes",
                "found " + (sizeWith(1) - 1) + " bytes",
                "truncated",
                "S=1");
    }

    @Test
    void stateOfAnotherModelSize() throws IOException {
        Path file = written(null);
        GPT2Config wider = new GPT2Config(16, 10, 128, 1, 2, 16);
        assertMentions(
                readFails(file, wider), "file size", "N=" + wider.numParameters(), "found " + sizeWith(0) + " bytes");
    }

    @Test
    void checkpointPassedAsDebugState() throws IOException {
        Path checkpoint = folder.resolve("model.bin");
        GPT2Checkpoint.write(checkpoint, TINY, segment(grads), 3);
        assertMentions(
                readFails(checkpoint, TINY),
                "magic (header[0])",
                "expected 20240327",
                "found 20240326 (a GPT-2 checkpoint)");
    }

    @Test
    void wrongVersion() throws IOException {
        Path file = written(null);
        patchSlot(file, 1, 1);
        assertMentions(readFails(file, TINY), "version (header[1])", "expected 2", "found 1 (an old llm.c debug state");
    }

    @Test
    void badBatchShape() throws IOException {
        Path file = written(null);
        patchSlot(file, 2, 0);
        assertMentions(readFails(file, TINY), "B (header[2])", "expected a positive number", "found 0");
        patchSlot(file, 2, B);
        patchSlot(file, 3, 17);
        assertMentions(readFails(file, TINY), "T (header[3])", "expected at most maxT = 16", "found 17");
        patchSlot(file, 3, T);
        patchSlot(file, 4, -1);
        assertMentions(readFails(file, TINY), "S (header[4])", "found -1");
    }

    @Test
    void hugeBatchIsRejectedBeforeAllocating() throws IOException {
        Path file = written(null);
        patchSlot(file, 2, 1 << 30);
        assertMentions(readFails(file, TINY), "B*T", "found " + (3L << 30));
    }

    @Test
    void writeChecksItsArguments() {
        Path file = folder.resolve("bad.bin");
        assertThrows(
                IllegalArgumentException.class,
                () -> DebugState.write(file, B, T, new int[5], y, segment(logits), loss, segment(grads), null));
        assertThrows(
                IllegalArgumentException.class,
                () -> DebugState.write(file, B, T, x, y, segment(new float[7]), loss, segment(grads), null));
        assertTrue(Files.notExists(file));
    }
}
