package dev.llmc4j.format;

import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;

/**
 * Writes llm.c's little-endian values to a channel through one 1 MiB staging buffer, so a 500 MB checkpoint takes
 * a few hundred write calls rather than one per float. Close (or {@link #flush()}) to push out the last chunk;
 * closing does not close the channel.
 */
public final class BinaryWriter implements AutoCloseable {
    private static final int CHUNK_BYTES = 1 << 20;

    private final FileChannel channel;
    private final ByteBuffer buffer = ByteBuffer.allocateDirect(CHUNK_BYTES).order(ByteOrder.LITTLE_ENDIAN);
    private final MemorySegment staging = MemorySegment.ofBuffer(buffer);

    public BinaryWriter(FileChannel channel) {
        this.channel = channel;
    }

    /** The 256-slot header: the given leading slots, then zeros. */
    public BinaryWriter header(int... leadingSlots) throws IOException {
        return bytes(Headers.toBytes(leadingSlots));
    }

    /** Raw bytes, as they are. */
    public BinaryWriter bytes(ByteBuffer bytes) throws IOException {
        while (bytes.hasRemaining()) {
            if (!buffer.hasRemaining()) flush();
            int n = Math.min(bytes.remaining(), buffer.remaining());
            buffer.put(buffer.position(), bytes, bytes.position(), n);
            buffer.position(buffer.position() + n);
            bytes.position(bytes.position() + n);
        }
        return this;
    }

    /** int32 values. */
    public BinaryWriter ints(int... values) throws IOException {
        for (int value : values) {
            if (buffer.remaining() < Integer.BYTES) flush();
            buffer.putInt(value);
        }
        return this;
    }

    /** fp32 values. */
    public BinaryWriter floats(float... values) throws IOException {
        for (float value : values) {
            if (buffer.remaining() < Float.BYTES) flush();
            buffer.putFloat(value);
        }
        return this;
    }

    /** The first {@code count} native-order floats of {@code source} as fp32, copied a chunk at a time. */
    public BinaryWriter floats(MemorySegment source, long count) throws IOException {
        requireFloats(source, count);
        long done = 0;
        while (done < count) {
            int room = buffer.remaining() / Float.BYTES;
            if (room == 0) {
                flush();
                continue;
            }
            int n = (int) Math.min(room, count - done);
            // one bulk copy per chunk; it swaps bytes if this machine is big-endian
            MemorySegment.copy(
                    source,
                    LittleEndian.NATIVE_FLOAT,
                    done * Float.BYTES,
                    staging,
                    LittleEndian.FLOAT32,
                    buffer.position(),
                    n);
            buffer.position(buffer.position() + n * Float.BYTES);
            done += n;
        }
        return this;
    }

    /** The first {@code count} native-order floats of {@code source} rounded to bf16 (see {@link BFloat16#fromFloat}). */
    public BinaryWriter bfloat16(MemorySegment source, long count) throws IOException {
        requireFloats(source, count);
        for (long i = 0; i < count; i++) {
            if (buffer.remaining() < Short.BYTES) flush();
            buffer.putShort(BFloat16.fromFloat(source.getAtIndex(LittleEndian.NATIVE_FLOAT, i)));
        }
        return this;
    }

    /** Writes out whatever is staged. */
    public void flush() throws IOException {
        buffer.flip();
        while (buffer.hasRemaining()) channel.write(buffer);
        buffer.clear();
    }

    @Override
    public void close() throws IOException {
        flush();
    }

    private static void requireFloats(MemorySegment source, long count) {
        if (count < 0 || source.byteSize() < count * Float.BYTES)
            throw new IllegalArgumentException(
                    "need " + count + " floats, the segment holds " + source.byteSize() / Float.BYTES);
    }
}
