package dev.llmc4j.format;

import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Memory layouts for the values inside llm.c's files: little-endian, packed with no alignment (a float in a
 * debug state can sit at any multiple of 4 after the header, and callers may hand us byte-backed segments).
 */
public final class LittleEndian {
    private LittleEndian() {}

    /** int32 as stored in headers and token arrays. */
    public static final ValueLayout.OfInt INT32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** IEEE binary32 as stored in v3 checkpoints, logits and gradients. */
    public static final ValueLayout.OfFloat FLOAT32 =
            ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** 16-bit words: bf16 bit patterns in v5 checkpoints, uint16 token ids in data shards. */
    public static final ValueLayout.OfShort INT16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** A float in the machine's own order, as the model keeps its parameters in memory. */
    public static final ValueLayout.OfFloat NATIVE_FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED;
}
