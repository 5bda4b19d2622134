package dev.llmc4j.format;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * The 256 x int32 little-endian header (1024 bytes) that every llm.c file starts with. Kept package-private: the
 * shard and tokenizer readers share it.
 */
final class ShardHeaders {
    private ShardHeaders() {}

    static final int HEADER_INTS = 256;
    static final int HEADER_BYTES = HEADER_INTS * Integer.BYTES;

    /** Reads the header from the start of an open file; a file shorter than 1024 bytes is a clear error. */
    static int[] read(Path file, FileChannel channel) throws IOException {
        long size = channel.size();
        if (size < HEADER_BYTES) {
            throw new FileFormatException(file, "header", HEADER_BYTES + " bytes", size + " bytes (file too short)");
        }
        var buffer = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, buffer.position()) < 0) {
                throw new FileFormatException(file, "header", HEADER_BYTES + " bytes", buffer.position() + " bytes");
            }
        }
        buffer.flip();
        int[] header = new int[HEADER_INTS];
        buffer.asIntBuffer().get(header);
        return header;
    }

    /** A zeroed header with the given leading slots, positioned at 0 and ready to be written. */
    static ByteBuffer create(int... leadingSlots) {
        var buffer = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < leadingSlots.length; i++) buffer.putInt(i * Integer.BYTES, leadingSlots[i]);
        return buffer;
    }
}
