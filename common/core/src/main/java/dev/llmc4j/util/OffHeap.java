package dev.llmc4j.util;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/** Native memory for the CPU models' big buffers, with a one-line error when the machine cannot give it. */
public final class OffHeap {
    private OffHeap() {}

    /**
     * {@code bytes} of zero-filled native memory from {@code arena}, 64-byte aligned (a cache line, and the widest
     * vector). Running out of memory becomes "cannot allocate N bytes for the WHAT of OWNER: out of memory".
     */
    public static MemorySegment allocate(Arena arena, long bytes, String what, String owner) {
        try {
            return arena.allocate(bytes, 64);
        } catch (OutOfMemoryError e) {
            throw new LlmcException(
                    "cannot allocate %,d bytes for the %s of %s: out of memory".formatted(bytes, what, owner), e);
        }
    }
}
