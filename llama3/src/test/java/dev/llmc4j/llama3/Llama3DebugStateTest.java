package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.testing.Fixtures;
import java.io.IOException;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama3DebugStateTest {
    static final String MAKE_FIXTURES = "reference/make_llama3_fixtures.sh target/fixtures";

    static final Llama3Config TINY = Llama3CheckpointTest.TINY;

    @TempDir
    Path tmp;

    /** A debug state with B=2, T=3, S=2 and recognisable values. */
    static byte[] synthetic(Llama3Config c, int badToken) {
        int B = 2, T = 3, S = 2, V = c.vocabSize();
        long n = c.numParameters();
        var out = ByteBuffer.allocate((int) (1024 + 8 * B * T + 4L * B * T * V + 4 + 4 * n + 8 * S))
                .order(ByteOrder.LITTLE_ENDIAN);
        out.putInt(0, 20240803).putInt(4, 3).putInt(8, B).putInt(12, T).putInt(16, S);
        out.position(1024);
        for (int i = 0; i < B * T; i++) out.putInt(i == 4 ? badToken : i);
        for (int i = 0; i < B * T; i++) out.putInt(i + 1);
        for (int i = 0; i < B * T * V; i++) out.putFloat(i * 0.5f);
        out.putFloat(3.25f);
        for (long i = 0; i < n; i++) out.putFloat(-i);
        out.putFloat(3.25f).putFloat(3.0f).putFloat(0.75f).putFloat(0.7f);
        return out.array();
    }

    @Test
    void readsEveryField() throws IOException {
        Path file = tmp.resolve("state.bin");
        Files.write(file, synthetic(TINY, 4));
        try (var state = Llama3DebugState.read(file, TINY)) {
            assertEquals(2, state.batchSize());
            assertEquals(3, state.seqLen());
            assertEquals(4, state.inputs()[4]);
            assertEquals(6, state.targets()[5]);
            assertEquals(2 * 3 * 40, state.logits().byteSize() / 4);
            assertEquals(7 * 0.5f, state.logits().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 7));
            assertEquals(3.25f, state.loss());
            assertEquals(-5f, state.grads().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 5));
            assertEquals(TINY.numParameters(), state.grads().byteSize() / 4);
            assertEquals(3.0f, state.losses()[1]);
            assertEquals(0.7f, state.gradNorms()[1]);
        }
    }

    @Test
    void rejectsBadFiles() throws IOException {
        Path badToken = tmp.resolve("token.bin");
        Files.write(badToken, synthetic(TINY, 40));
        var e = assertThrows(FileFormatException.class, () -> Llama3DebugState.read(badToken, TINY));
        assertTrue(e.getMessage().contains("x[4]") && e.getMessage().contains("found 40"), e.getMessage());

        byte[] bytes = synthetic(TINY, 0);
        Path shortFile = tmp.resolve("short.bin");
        Files.write(shortFile, java.util.Arrays.copyOf(bytes, bytes.length - 1));
        e = assertThrows(FileFormatException.class, () -> Llama3DebugState.read(shortFile, TINY));
        assertTrue(e.getMessage().contains("file size") && e.getMessage().contains(String.valueOf(bytes.length)));

        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 2);
        Path version = tmp.resolve("version.bin");
        Files.write(version, bytes);
        e = assertThrows(FileFormatException.class, () -> Llama3DebugState.read(version, TINY));
        assertTrue(e.getMessage().contains("version"), e.getMessage());
    }

    @Test
    void readsTheReferenceState() {
        Path file = Fixtures.require("llama3_small_debug_state.bin", MAKE_FIXTURES);
        try (var state = Llama3DebugState.read(file, Llama3ConfigTest.SMALL)) {
            assertEquals(4, state.batchSize());
            assertEquals(64, state.seqLen());
            assertEquals(10, state.losses().length);
            assertEquals(state.loss(), state.losses()[0]);
            // random init: the loss starts near ln(V)
            assertEquals(Math.log(512), state.loss(), 0.5);
            // shifted targets: y[i] == x[i+1]
            assertEquals(state.inputs()[1], state.targets()[0]);
            // bias slots of the gradient are zero
            long[] off = Llama3ConfigTest.SMALL.parameterOffsets();
            assertEquals(0f, state.grads().getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, off[3]));
        }
    }
}
