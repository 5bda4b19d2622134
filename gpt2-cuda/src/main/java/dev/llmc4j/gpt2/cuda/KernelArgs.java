package dev.llmc4j.gpt2.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Packs kernel arguments the way cuLaunchKernel wants them: {@code void** kernelParams}, an array with one pointer
 * per parameter, each pointing at a copy of that parameter's value.
 *
 * <pre>
 *   values   [ slot 0 (8 bytes) | slot 1 | ... ]      each value at the start of its own 8-byte slot
 *   pointers [ &amp;slot0 | &amp;slot1 | ... ]             the void** handed to the driver
 * </pre>
 *
 * Java types map to C types by size: {@code long} is a device pointer (CUdeviceptr) or a size_t,
 * {@code int} an int or unsigned int, {@code float} a float. The driver copies the values at launch, so the
 * segments only have to live until {@code cuLaunchKernel} returns.
 */
public final class KernelArgs {
    static final int SLOT = 8;

    private final MemorySegment values;
    private final MemorySegment pointers;
    private final int count;

    private KernelArgs(MemorySegment values, MemorySegment pointers, int count) {
        this.values = values;
        this.pointers = pointers;
        this.count = count;
    }

    /** Packs {@code args} (Long, Integer or Float) into memory from {@code arena}. */
    public static KernelArgs pack(Arena arena, Object... args) {
        MemorySegment values = arena.allocate((long) SLOT * Math.max(1, args.length), SLOT);
        MemorySegment pointers = arena.allocate(ADDRESS.byteSize() * Math.max(1, args.length), ADDRESS.byteAlignment());
        for (int i = 0; i < args.length; i++) {
            long offset = (long) i * SLOT;
            switch (args[i]) {
                case Long l -> values.set(JAVA_LONG, offset, l);
                case Integer n -> values.set(JAVA_INT, offset, n);
                case Float f -> values.set(JAVA_FLOAT, offset, f);
                case null ->
                    throw new IllegalArgumentException("kernel argument " + i + " is null (use 0L for a null pointer)");
                default ->
                    throw new IllegalArgumentException("kernel argument " + i + " has unsupported type "
                            + args[i].getClass().getSimpleName() + " (use long, int or float)");
            }
            pointers.setAtIndex(ADDRESS, i, values.asSlice(offset, SLOT));
        }
        return new KernelArgs(values, pointers, args.length);
    }

    /** The {@code void**} for cuLaunchKernel. */
    public MemorySegment pointerArray() {
        return pointers;
    }

    /** The value slots (for tests). */
    MemorySegment values() {
        return values;
    }

    public int count() {
        return count;
    }
}
