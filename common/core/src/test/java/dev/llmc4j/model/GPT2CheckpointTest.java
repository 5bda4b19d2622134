package dev.llmc4j.model;

import static dev.llmc4j.format.FormatFixtures.TINY;
import static dev.llmc4j.format.FormatFixtures.listing;
import static dev.llmc4j.format.FormatFixtures.patchSlot;
import static dev.llmc4j.format.FormatFixtures.resize;
import static dev.llmc4j.format.FormatFixtures.segment;
import static dev.llmc4j.format.FormatFixtures.toArray;
import static dev.llmc4j.format.FormatFixtures.values;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class GPT2CheckpointTest {

    @TempDir
    Path folder;

    private final float[] parameters = values(TINY.numParameters(), 1);

    private Path written(int version) {
        Path file = folder.resolve("model_v" + version + ".bin");
        GPT2Checkpoint.write(file, TINY, segment(parameters), version);
        return file;
    }

    private String openFails(Path file) {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(FileFormatException.class, () -> GPT2Checkpoint.open(file, arena));
            assertTrue(e.getMessage().contains(file.toString()), () -> "the message names the file: " + e.getMessage());
            assertTrue(e instanceof LlmcException);
            return e.getMessage();
        }
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), () -> "'" + part + "' missing from: " + message);
    }

    // ---- round trips

    @Test
    void fp32RoundTripIsExact() throws IOException {
        Path file = written(3);
        assertEquals(1024 + 4 * TINY.numParameters(), Files.size(file));
        try (Arena arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            assertEquals(file, checkpoint.file());
            assertEquals(3, checkpoint.version());
            assertEquals(TINY, checkpoint.config());
            assertEquals(4 * TINY.numParameters(), checkpoint.rawParameters().byteSize());
            assertTrue(checkpoint.rawParameters().isMapped(), "parameters are memory-mapped");
            assertTrue(checkpoint.rawParameters().isReadOnly(), "the mapping is read-only");

            MemorySegment destination = arena.allocate(4 * TINY.numParameters(), 4);
            checkpoint.readParametersInto(destination);
            assertArrayEquals(parameters, toArray(destination));
        }
    }

    @Test
    void bf16RoundTripRoundsEachValueToNearestEven() throws IOException {
        Path file = written(5);
        assertEquals(1024 + 2 * TINY.numParameters(), Files.size(file));
        float[] expected = new float[parameters.length];
        for (int i = 0; i < expected.length; i++) expected[i] = BFloat16.toFloat(BFloat16.fromFloat(parameters[i]));
        try (Arena arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            assertEquals(5, checkpoint.version());
            assertEquals(TINY, checkpoint.config());
            assertEquals(2 * TINY.numParameters(), checkpoint.rawParameters().byteSize());
            float[] read = new float[parameters.length];
            checkpoint.readParametersInto(MemorySegment.ofArray(read));
            assertArrayEquals(expected, read);
            assertEquals(
                    BFloat16.fromFloat(parameters[0]),
                    checkpoint.rawParameters().get(LittleEndian.INT16, 0));
        }
    }

    @Test
    void fp32FileHasTheExactLlmcByteLayout() throws IOException {
        float[] simple = new float[parameters.length];
        simple[0] = 1.0f; // 0x3F800000
        simple[1] = -2.0f; // 0xC0000000
        simple[2] = 0.5f; // 0x3F000000
        simple[simple.length - 1] = 1.5f; // 0x3FC00000
        Path file = folder.resolve("layout.bin");
        GPT2Checkpoint.write(file, TINY, segment(simple), 3);

        byte[] expected = new byte[1024 + 4 * simple.length];
        byte[] start = {
            (byte) 0xC6,
            (byte) 0xD7,
            0x34,
            0x01, // 20240326 = 0x0134D7C6
            3,
            0,
            0,
            0, // version
            16,
            0,
            0,
            0, // maxT
            10,
            0,
            0,
            0, // V
            1,
            0,
            0,
            0, // L
            2,
            0,
            0,
            0, // NH
            8,
            0,
            0,
            0, // C
            (byte) 128,
            0,
            0,
            0, // Vp
        };
        System.arraycopy(start, 0, expected, 0, start.length);
        byte[] firstFloats = {0, 0, (byte) 0x80, 0x3F, 0, 0, 0, (byte) 0xC0, 0, 0, 0, 0x3F};
        System.arraycopy(firstFloats, 0, expected, 1024, firstFloats.length);
        byte[] lastFloat = {0, 0, (byte) 0xC0, 0x3F};
        System.arraycopy(lastFloat, 0, expected, expected.length - 4, 4);

        assertArrayEquals(expected, Files.readAllBytes(file));
    }

    @Test
    void writingLeavesNoTempFileAndReplacesAnOldFile() throws IOException {
        written(3);
        written(5);
        written(3); // overwrite
        assertArrayEquals(new String[] {"model_v3.bin", "model_v5.bin"}, listing(folder));
    }

    @Test
    void writeRejectsOtherVersionsBeforeCreatingAFile() throws IOException {
        var e = assertThrows(LlmcException.class, () -> written(4));
        assertMentions(e.getMessage(), "3 (fp32) or 5 (bf16)", "4");
        assertArrayEquals(new String[0], listing(folder));
    }

    @Test
    void largerThanOneChunkRoundTrips() throws IOException {
        // 128 channels: 0.4M parameters, so the writer's 1 MiB staging buffer fills several times
        GPT2Config wider = new GPT2Config(64, 100, 128, 2, 4, 128);
        float[] many = values(wider.numParameters(), 7);
        Path file = folder.resolve("wide.bin");
        for (int version : new int[] {3, 5}) {
            GPT2Checkpoint.write(file, wider, segment(many), version);
            try (Arena arena = Arena.ofConfined()) {
                float[] read = new float[many.length];
                GPT2Checkpoint.open(file, arena).readParametersInto(MemorySegment.ofArray(read));
                for (int i = 0; i < many.length; i++) {
                    float expected = version == 3 ? many[i] : BFloat16.toFloat(BFloat16.fromFloat(many[i]));
                    if (expected != read[i]) throw new AssertionError("v" + version + " parameter " + i);
                }
            }
        }
    }

    // ---- bad input

    @Test
    void missingFile() {
        assertMentions(openFails(folder.resolve("nope.bin")), "no such file");
    }

    @Test
    void folderInsteadOfFile() {
        assertMentions(openFails(folder), "folder");
    }

    @Test
    void truncatedHeader() throws IOException {
        Path file = folder.resolve("short.bin");
        Files.write(file, new byte[100]);
        assertMentions(openFails(file), "header", "expected 1024 bytes", "found 100 bytes");
    }

    @Test
    void emptyFile() throws IOException {
        Path file = folder.resolve("empty.bin");
        Files.write(file, new byte[0]);
        assertMentions(openFails(file), "header", "found 0 bytes");
    }

    @Test
    void truncatedBody() throws IOException {
        Path file = written(3);
        long full = Files.size(file);
        resize(file, full - 2);
        assertMentions(
                openFails(file),
                "file size",
                "expected " + full + " bytes",
                "found " + (full - 2) + " bytes",
                "truncated");
    }

    @Test
    void extraBytes() throws IOException {
        Path file = written(5);
        long full = Files.size(file);
        resize(file, full + 4);
        assertMentions(openFails(file), "file size", "expected " + full + " bytes", "found " + (full + 4) + " bytes");
    }

    @Test
    void wrongMagicSaysWhatTheFileIs() throws IOException {
        Path file = written(3);
        patchSlot(file, 0, DebugState.MAGIC);
        assertMentions(openFails(file), "magic (header[0])", "expected 20240326", "found 20240327", "debug state");
        patchSlot(file, 0, 12345);
        assertMentions(openFails(file), "magic (header[0])", "found 12345 (not an llm.c file)");
    }

    @Test
    void oldLlmcVersionsAreNamedAsSuch() throws IOException {
        Path file = written(3);
        for (int old : new int[] {1, 2, 4}) {
            patchSlot(file, 1, old);
            assertMentions(
                    openFails(file),
                    "version (header[1])",
                    "expected 3 (fp32) or 5 (bf16)",
                    "found " + old + " (an old llm.c checkpoint");
        }
        patchSlot(file, 1, 9);
        assertMentions(openFails(file), "version (header[1])", "found 9 (unknown");
    }

    @Test
    void nonPositiveSizes() throws IOException {
        String[] names = {"maxT", "V", "L", "NH", "C", "Vp"};
        for (int slot = 2; slot <= 7; slot++) {
            Path file = written(3);
            patchSlot(file, slot, slot % 2 == 0 ? 0 : -3);
            assertMentions(
                    openFails(file),
                    names[slot - 2] + " (header[" + slot + "])",
                    "expected a positive number",
                    "found " + (slot % 2 == 0 ? 0 : -3));
        }
    }

    @Test
    void paddedVocabSmallerThanVocab() throws IOException {
        Path file = written(3);
        patchSlot(file, 7, 8);
        assertMentions(openFails(file), "Vp (header[7])", "expected at least V = 10", "found 8");
    }

    @Test
    void channelsNotAMultipleOfHeads() throws IOException {
        Path file = written(3);
        patchSlot(file, 5, 3);
        assertMentions(openFails(file), "C (header[6])", "expected a multiple of NH = 3", "found 8");
    }

    @Test
    void headerThatDisagreesWithTheBody() throws IOException {
        Path file = written(3);
        patchSlot(file, 4, 2); // says two layers, holds one
        GPT2Config twoLayers = new GPT2Config(16, 10, 128, 2, 2, 8);
        assertMentions(
                openFails(file),
                "file size",
                "expected " + (1024 + 4 * twoLayers.numParameters()) + " bytes",
                "found " + (1024 + 4 * TINY.numParameters()) + " bytes",
                "L=2");
    }

    @Test
    void absurdSizesAreCaughtBeforeTheArithmeticOverflows() throws IOException {
        Path file = written(3);
        patchSlot(file, 6, 1 << 30);
        patchSlot(file, 5, 1 << 10);
        patchSlot(file, 4, 1 << 30);
        assertMentions(openFails(file), "header sizes", "L=1073741824");
    }

    @Test
    void destinationTooSmallIsAProgrammingError() {
        Path file = written(3);
        try (Arena arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            assertThrows(
                    IllegalArgumentException.class,
                    () -> checkpoint.readParametersInto(MemorySegment.ofArray(new float[10])));
        }
    }
}
