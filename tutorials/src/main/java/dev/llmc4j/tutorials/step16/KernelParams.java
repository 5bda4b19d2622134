package dev.llmc4j.tutorials.step16;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

/**
 * Step 16: kernel arguments for cuLaunchKernel. In C one writes
 * <pre>
 *   void* params[] = { &amp;c, &amp;a, &amp;b, &amp;n };          // one pointer per kernel parameter
 *   cuLaunchKernel(f, grid, 1, 1, block, 1, 1, 0, stream, params, NULL);
 * </pre>
 * The driver knows each parameter's size from the compiled kernel and copies that many bytes from each pointer.
 * Java values have no address, so we copy them into native memory first: one 8-byte slot per argument, and a
 * second array holding the slots' addresses.
 * <pre>
 *   slots  [ c (8 bytes) | a (8) | b (8) | n (4) + 4 unused ]
 *   params [ &amp;slots[0] | &amp;slots[1] | &amp;slots[2] | &amp;slots[3] ]     the void** the driver gets
 * </pre>
 * Java types stand for C types by size: long = a device pointer (CUdeviceptr) or size_t, int = int or unsigned,
 * float = float.
 */
public final class KernelParams {
    private KernelParams() {}

    /** Bytes per slot: enough for the largest argument (a pointer or size_t) and aligned for it. */
    public static final int SLOT_BYTES = 8;

    // tag::pack[]
    /** Packs {@code args} (Long, Integer or Float) and returns the {@code void**}; both live as long as the arena. */
    public static MemorySegment pack(Arena arena, Object... args) {
        int count = Math.max(1, args.length); // never a 0-byte allocation
        MemorySegment slots = arena.allocate((long) SLOT_BYTES * count, SLOT_BYTES); // zero-filled
        MemorySegment params = arena.allocate(ADDRESS, count); // void*[count]
        for (int i = 0; i < args.length; i++) {
            MemorySegment slot = slots.asSlice((long) i * SLOT_BYTES, SLOT_BYTES);
            switch (args[i]) {
                case Long pointerOrSize -> slot.set(JAVA_LONG, 0, pointerOrSize);
                case Integer value -> slot.set(JAVA_INT, 0, value); // little-endian: the low 4 bytes
                case Float value -> slot.set(JAVA_FLOAT, 0, value);
                case null, default ->
                    throw new IllegalArgumentException(
                            "kernel argument " + i + " must be a long, int or float: " + args[i]);
            }
            params.setAtIndex(ADDRESS, i, slot); // params[i] = &slot_i
        }
        return params;
    }
    // end::pack[]
}
