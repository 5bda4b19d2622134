package dev.llmc4j.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class HeadersTest {

    @TempDir
    Path folder;

    @Test
    void writesAndReadsAllSlotsLittleEndian() throws IOException {
        Path file = folder.resolve("h.bin");
        byte[] bytes = new byte[Headers.BYTES + 8];
        Headers.toBytes(20240520, 1, 0x01020304).get(bytes, 0, Headers.BYTES);
        assertArrayEquals(new byte[] {4, 3, 2, 1}, Arrays.copyOfRange(bytes, 8, 12));
        Files.write(file, bytes);
        try (FileChannel channel = Headers.openForReading(file)) {
            int[] header = Headers.readInts(file, channel);
            assertEquals(256, header.length);
            assertEquals(20240520, header[0]);
            assertEquals(0x01020304, header[2]);
            assertEquals(0, header[255]);
            Headers.expectMagic(file, header, 20240520);
            Headers.expectFileSize(file, channel, Headers.BYTES + 8, "test");
        }
    }

    @Test
    void shortFileIsTruncated() throws IOException {
        Path file = folder.resolve("h.bin");
        Files.write(file, new byte[1023]);
        try (FileChannel channel = Headers.openForReading(file)) {
            var e = assertThrows(FileFormatException.class, () -> Headers.readInts(file, channel));
            assertEquals(
                    file + ": header: expected 1024 bytes (256 int32 slots), found 1023 bytes (the file is truncated)",
                    e.getMessage());
        }
    }

    @Test
    void wrongMagicNamesBothKinds() {
        Path file = Path.of("shard.bin");
        int[] header = new int[256];
        header[0] = 20240801;
        var e = assertThrows(FileFormatException.class, () -> Headers.expectMagic(file, header, 20240520));
        assertEquals(
                "shard.bin: magic (header[0]): expected 20240520 (a GPT-2 token shard), found 20240801 (a Llama 3 token shard)",
                e.getMessage());
    }

    @Test
    void tooManySlots() {
        assertThrows(IllegalArgumentException.class, () -> Headers.toBytes(new int[257]));
        assertTrue(Headers.toBytes().remaining() == Headers.BYTES);
    }
}
