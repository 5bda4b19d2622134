package dev.llmc4j.format;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.AccessDeniedException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

/**
 * The header every llm.c binary file starts with: 256 little-endian int32 slots (1024 bytes), slot 0 a magic
 * number that says what the file is, unused slots zero. These helpers read and check it with errors that name
 * the file, the field, the expected and the found value.
 */
public final class Headers {
    private Headers() {}

    public static final int SLOTS = 256;
    public static final int BYTES = SLOTS * Integer.BYTES;

    /** Magic numbers of the llm.c files we know, so a wrong one can say what the file really is. */
    private static final Map<Integer, String> KNOWN_MAGICS = Map.of(
            20240326, "a GPT-2 checkpoint",
            20240327, "a GPT-2 debug state",
            20240328, "a GPT-2 tokenizer",
            20240520, "a GPT-2 token shard",
            20240522, "an eval file (HellaSwag/MMLU)",
            20240527, "a training state",
            20240801, "a Llama 3 token shard",
            20240803, "a Llama 3 model or debug state");

    /** Opens a file for reading; a missing, unreadable or folder path becomes a one-line {@link FileFormatException}. */
    public static FileChannel openForReading(Path file) {
        if (Files.isDirectory(file)) throw new FileFormatException(file, "is a folder, expected a file");
        try {
            return FileChannel.open(file, StandardOpenOption.READ);
        } catch (NoSuchFileException e) {
            throw new FileFormatException(file, "no such file");
        } catch (AccessDeniedException e) {
            throw new FileFormatException(file, "cannot read it: permission denied");
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read it: " + e.getMessage());
        }
    }

    /** The file's size in bytes. */
    public static long size(Path file, FileChannel channel) {
        try {
            return channel.size();
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read its size: " + e.getMessage());
        }
    }

    /** Reads the 256 header slots from the start of the file; a file shorter than 1024 bytes is reported as truncated. */
    public static int[] readInts(Path file, FileChannel channel) {
        long size = size(file, channel);
        if (size < BYTES)
            throw new FileFormatException(
                    file, "header", BYTES + " bytes (256 int32 slots)", size + " bytes (the file is truncated)");
        ByteBuffer bytes = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
        try {
            while (bytes.hasRemaining()) {
                if (channel.read(bytes, bytes.position()) < 0)
                    throw new FileFormatException(file, "header", BYTES + " bytes", bytes.position() + " bytes");
            }
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read the header: " + e.getMessage());
        }
        int[] header = new int[SLOTS];
        bytes.flip().asIntBuffer().get(header);
        return header;
    }

    /** The 1024 header bytes for the given leading slots; the remaining slots are zero. Ready to write (position 0). */
    public static ByteBuffer toBytes(int... leadingSlots) {
        if (leadingSlots.length > SLOTS)
            throw new IllegalArgumentException("a header has " + SLOTS + " slots, got " + leadingSlots.length);
        ByteBuffer bytes = ByteBuffer.allocate(BYTES).order(ByteOrder.LITTLE_ENDIAN);
        bytes.asIntBuffer().put(leadingSlots);
        return bytes;
    }

    /** Checks slot 0; a wrong magic says which llm.c file it belongs to, if any. */
    public static void expectMagic(Path file, int[] header, int expectedMagic) {
        int found = header[0];
        if (found != expectedMagic)
            throw new FileFormatException(
                    file,
                    "magic (header[0])",
                    expectedMagic + " (" + describeMagic(expectedMagic) + ")",
                    found + " (" + describeMagic(found) + ")");
    }

    /** What file an llm.c magic number belongs to. */
    public static String describeMagic(int magic) {
        return KNOWN_MAGICS.getOrDefault(magic, "not an llm.c file");
    }

    /** Checks that a size slot holds a positive number; {@code name} is the field as llm.c calls it (B, T, maxT...). */
    public static int requirePositive(Path file, int[] header, int slot, String name) {
        int value = header[slot];
        if (value <= 0) throw new FileFormatException(file, field(name, slot), "a positive number", value);
        return value;
    }

    /** A header field as messages name it: "C (header[6])". */
    public static String field(String name, int slot) {
        return name + " (header[" + slot + "])";
    }

    /** Checks the exact file size the header implies; {@code layout} spells out how it was computed. */
    public static void expectFileSize(Path file, FileChannel channel, long expectedBytes, String layout) {
        long found = size(file, channel);
        if (found != expectedBytes)
            throw new FileFormatException(
                    file,
                    "file size",
                    expectedBytes + " bytes (" + layout + ")",
                    found + " bytes"
                            + (found < expectedBytes ? " (the file is truncated)" : " (extra bytes at the end)"));
    }
}
