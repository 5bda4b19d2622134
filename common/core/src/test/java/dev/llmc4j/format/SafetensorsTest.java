package dev.llmc4j.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.Safetensors.DType;
import dev.llmc4j.format.Safetensors.TensorData;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsTest {

    @TempDir
    Path folder;

    /** A file with this exact header text and data bytes. */
    private Path raw(String header, byte[] data) throws IOException {
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        return rawBytes(json, data);
    }

    private Path rawBytes(byte[] json, byte[] data) throws IOException {
        ByteBuffer bytes = ByteBuffer.allocate(8 + json.length + data.length).order(ByteOrder.LITTLE_ENDIAN);
        bytes.putLong(json.length).put(json).put(data);
        Path file = folder.resolve("t" + System.nanoTime() + ".safetensors");
        Files.write(file, bytes.array());
        return file;
    }

    private static byte[] littleEndianShorts(short... values) {
        ByteBuffer b = ByteBuffer.allocate(2 * values.length).order(ByteOrder.LITTLE_ENDIAN);
        for (short v : values) b.putShort(v);
        return b.array();
    }

    private static String openFails(Path file) {
        try (Arena arena = Arena.ofConfined()) {
            var e = assertThrows(FileFormatException.class, () -> Safetensors.open(file, arena));
            assertTrue(e.getMessage().contains(file.toString()), () -> "the message names the file: " + e.getMessage());
            return e.getMessage();
        }
    }

    private static void assertMentions(String message, String... parts) {
        for (String part : parts) assertTrue(message.contains(part), () -> "'" + part + "' missing from: " + message);
    }

    // ---- round trips

    @Test
    void writeThenReadF32() {
        float[] a = {1f, -2.5f, 3.25f, Float.MIN_VALUE, Float.MAX_VALUE, -0f};
        float[] b = {42f};
        float[] scalar = {7f};
        var tensors = new LinkedHashMap<String, TensorData>();
        tensors.put("layer.a", TensorData.of(a, 2, 3));
        tensors.put("b \"quoted\"\\name", TensorData.of(b, 1));
        tensors.put("empty", TensorData.of(new float[0], 0, 4));
        tensors.put("scalar", TensorData.of(scalar));
        Path file = folder.resolve("round.safetensors");
        Safetensors.write(file, tensors, Map.of("format", "pt", "note", "line\nbreak"));

        try (Arena arena = Arena.ofConfined()) {
            var st = Safetensors.open(file, arena);
            assertEquals(List.of("layer.a", "b \"quoted\"\\name", "empty", "scalar"), st.names());
            assertArrayEquals(new long[] {2, 3}, st.shape("layer.a"));
            assertEquals(DType.F32, st.dtype("layer.a"));
            assertArrayEquals(a, st.readFloats("layer.a"));
            assertArrayEquals(b, st.readFloats("b \"quoted\"\\name"));
            assertArrayEquals(new float[0], st.readFloats("empty"));
            assertArrayEquals(new long[0], st.shape("scalar"));
            assertEquals(1, st.numElements("scalar"));
            assertArrayEquals(scalar, st.readFloats("scalar"));
            assertEquals(Map.of("format", "pt", "note", "line\nbreak"), st.metadata());
            assertTrue(st.contains("layer.a"));
            assertFalse(st.contains("nope"));

            // into a segment, with room to spare
            MemorySegment destination = arena.allocate(8 * Float.BYTES);
            st.readFloats("layer.a", destination);
            for (int i = 0; i < a.length; i++) assertEquals(a[i], destination.getAtIndex(LittleEndian.NATIVE_FLOAT, i));
            // the raw view is the little-endian bytes of the file
            assertEquals(Float.floatToRawIntBits(-2.5f), st.raw("layer.a").get(LittleEndian.INT32, 4));
        }
    }

    @Test
    void writtenHeaderIsPaddedToEightBytesAndSpecShaped() throws IOException {
        Path file = folder.resolve("pad.safetensors");
        Safetensors.write(file, Map.of("x", TensorData.of(new float[] {1, 2, 3}, 3)));
        byte[] bytes = Files.readAllBytes(file);
        long n = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).getLong(0);
        assertEquals(0, n % 8);
        assertEquals(8 + n + 12, bytes.length);
        String header = new String(bytes, 8, (int) n, StandardCharsets.UTF_8);
        assertEquals("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]}}", header.strip());
    }

    @Test
    void readsBf16AndF16AsFloat() throws IOException {
        // bf16 0x3FC0 = 1.5, 0xC020 = -2.5; f16 0x3E00 = 1.5, 0xC100 = -2.5, 0x0001 = 2^-24 (subnormal), 0x7C00 = +inf
        byte[] data = new byte[4 + 8];
        System.arraycopy(littleEndianShorts((short) 0x3FC0, (short) 0xC020), 0, data, 0, 4);
        System.arraycopy(
                littleEndianShorts((short) 0x3E00, (short) 0xC100, (short) 0x0001, (short) 0x7C00), 0, data, 4, 8);
        Path file = raw(
                "{\"__metadata__\":{\"format\":\"pt\"},"
                        + "\"b\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                        + "\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[4,12]}}",
                data);
        try (Arena arena = Arena.ofConfined()) {
            var st = Safetensors.open(file, arena);
            assertEquals(DType.BF16, st.dtype("b"));
            assertArrayEquals(new float[] {1.5f, -2.5f}, st.readFloats("b"));
            assertArrayEquals(new float[] {1.5f, -2.5f, 0x1p-24f, Float.POSITIVE_INFINITY}, st.readFloats("h"));
        }
    }

    @Test
    void unalignedDataStartStillReads() throws IOException {

        // writers need not pad the header: make the data start at an odd byte offset
        String header = "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        while ((8 + header.length()) % 4 != 1) header += " ";
        Path file = raw(
                header,
                ByteBuffer.allocate(4)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putFloat(3.5f)
                        .array());
        try (Arena arena = Arena.ofConfined()) {
            assertArrayEquals(new float[] {3.5f}, Safetensors.open(file, arena).readFloats("x"));
        }
    }

    @Test
    void otherDtypesAreListedButNotReadAsFloats() throws IOException {
        Path file = raw("{\"ids\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]}}", new byte[16]);
        try (Arena arena = Arena.ofConfined()) {
            var st = Safetensors.open(file, arena);
            assertEquals(DType.I64, st.dtype("ids"));
            var e = assertThrows(FileFormatException.class, () -> st.readFloats("ids"));
            assertMentions(e.getMessage(), file.toString(), "dtype of ids", "F32, BF16 or F16", "I64");
        }
    }

    @Test
    void destinationTooSmall() {
        Path file = folder.resolve("small.safetensors");
        Safetensors.write(file, Map.of("x", TensorData.of(new float[] {1, 2, 3}, 3)));
        try (Arena arena = Arena.ofConfined()) {
            var st = Safetensors.open(file, arena);
            assertThrows(IllegalArgumentException.class, () -> st.readFloats("x", arena.allocate(8)));
        }
    }

    @Test
    void tensorDataChecksItsShape() {
        assertThrows(IllegalArgumentException.class, () -> TensorData.of(new float[5], 2, 3));
        assertThrows(IllegalArgumentException.class, () -> TensorData.of(new float[0], -1));
    }

    // ---- bad input: every one names the file, the field, expected and found

    @Test
    void missingFile() {
        assertMentions(openFails(folder.resolve("absent.safetensors")), "no such file");
    }

    @Test
    void shorterThanTheLengthField() throws IOException {
        Path file = folder.resolve("short.safetensors");
        Files.write(file, new byte[5]);
        assertMentions(openFails(file), "header length", "8 bytes", "5 bytes");
    }

    @Test
    void headerLengthBeyondTheFile() throws IOException {
        Path file = folder.resolve("long.safetensors");
        Files.write(
                file,
                ByteBuffer.allocate(12)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(100)
                        .array());
        assertMentions(openFails(file), "header length", "at most 4", "100");
        // a length with the top bit set must not be read as negative and slip through
        Files.write(
                file,
                ByteBuffer.allocate(12)
                        .order(ByteOrder.LITTLE_ENDIAN)
                        .putLong(-1)
                        .array());
        assertMentions(openFails(file), "header length", "18446744073709551615");
    }

    @Test
    void badJson() throws IOException {
        assertMentions(openFails(raw("{\"x\": {\"dtype\": ", new byte[0])), "header", "expected JSON", "invalid text");
        assertMentions(openFails(raw("[1, 2]", new byte[0])), "header", "a JSON object", "an array");
        assertMentions(
                openFails(rawBytes(new byte[] {'{', (byte) 0xC3, '}'}, new byte[0])), "header", "UTF-8", "not UTF-8");
        assertMentions(openFails(raw("{\"x\":1}", new byte[0])), "tensor x", "an object with dtype", "1");
    }

    @Test
    void unknownDtype() throws IOException {
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,16]}}", new byte[16])),
                "dtype of x",
                "one of [BOOL",
                "F128");
        assertMentions(
                openFails(raw("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", new byte[4])),
                "dtype of x",
                "a string",
                "missing");
    }

    @Test
    void badShapeOrOffsetsFields() throws IOException {
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", new byte[4])),
                "shape of x",
                "non-negative",
                "[-1]");
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", new byte[4])),
                "shape of x",
                "an array of integers");
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", new byte[4])),
                "data_offsets of x",
                "an array of 2 integers");
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", new byte[4])),
                "data_offsets of x",
                "missing");
    }

    @Test
    void offsetsOutOfRange() throws IOException {
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[4])),
                "data_offsets of x",
                "<= 4",
                "[0, 8]");
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", new byte[4])),
                "data_offsets of x",
                "begin <= end",
                "[4, 0]");
    }

    @Test
    void offsetsThatDisagreeWithShapeAndDtype() throws IOException {
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", new byte[12])),
                "data_offsets of x",
                "12 bytes (F32 shape [3])",
                "8 bytes");
        assertMentions(
                openFails(raw("{\"x\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,8]}}", new byte[8])),
                "data_offsets of x",
                "4 bytes (BF16 shape [2])",
                "8 bytes");
        // a product of dimensions that overflows 64 bits cannot match any range
        assertMentions(
                openFails(raw(
                        "{\"x\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}",
                        new byte[4])),
                "data_offsets of x",
                "9223372036854775807 bytes");
    }

    @Test
    void overlappingTensors() throws IOException {
        String header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}";
        assertMentions(
                openFails(raw(header, new byte[12])), "data_offsets of b", "at or after 8 where a ends", "overlap");
    }

    @Test
    void badMetadata() throws IOException {
        assertMentions(
                openFails(raw("{\"__metadata__\":{\"format\":1}}", new byte[0])),
                "__metadata__.format",
                "a string",
                "1");
        assertMentions(openFails(raw("{\"__metadata__\":[]}", new byte[0])), "__metadata__", "an object of strings");
    }

    @Test
    void missingTensor() {
        Path file = folder.resolve("m.safetensors");
        Safetensors.write(file, Map.of("present", TensorData.of(new float[] {1}, 1)));
        try (Arena arena = Arena.ofConfined()) {
            var st = Safetensors.open(file, arena);
            var e = assertThrows(FileFormatException.class, () -> st.shape("absent"));
            assertMentions(
                    e.getMessage(), file.toString(), "tensor absent", "present", "missing", "1 tensors: present");
            assertThrows(FileFormatException.class, () -> st.readFloats("absent"));
        }
    }

    @Test
    void emptyFileHasNoTensors() throws IOException {
        try (Arena arena = Arena.ofConfined()) {
            var st = Safetensors.open(raw("{}", new byte[0]), arena);
            assertEquals(List.of(), st.names());
            assertEquals(Map.of(), st.metadata());
        }
    }
}
