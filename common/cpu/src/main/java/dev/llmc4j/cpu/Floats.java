package dev.llmc4j.cpu;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * Float tensors as slices of off-heap memory, indexed by long element offsets (a model's activations can hold
 * more than 2^31 floats). Kernels read {@code get(x, i)}, write {@code set(x, i, v)} and accumulate
 * {@code add(x, i, v)} — llm.c's {@code x[i]}, {@code x[i] = v} and {@code x[i] += v}.
 */
public final class Floats {
    private Floats() {}

    public static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    public static float get(MemorySegment tensor, long i) {
        return tensor.getAtIndex(FLOAT, i);
    }

    public static void set(MemorySegment tensor, long i, float value) {
        tensor.setAtIndex(FLOAT, i, value);
    }

    /** tensor[i] += value */
    public static void add(MemorySegment tensor, long i, float value) {
        tensor.setAtIndex(FLOAT, i, tensor.getAtIndex(FLOAT, i) + value);
    }

    /** Floats [offset, offset + count) of a tensor. */
    public static MemorySegment slice(MemorySegment tensor, long offset, long count) {
        return tensor.asSlice(offset * Float.BYTES, count * Float.BYTES);
    }

    /** The part of a layer-major tensor that belongs to {@code layer}: floats [layer*size, (layer+1)*size). */
    public static MemorySegment layer(MemorySegment tensor, int layer, long floatsPerLayer) {
        return slice(tensor, layer * floatsPerLayer, floatsPerLayer);
    }

    /**
     * tensor = 0, the threads of {@link Parallel} each zeroing a contiguous part (one thread alone does not reach the
     * memory's write bandwidth: a d12's 497 MB of gradients, 16 ms alone, 12 ms on two cores).
     */
    public static void zero(MemorySegment tensor) {
        long bytes = tensor.byteSize(), chunk = 1 << 16;
        Parallel.forRange((bytes + chunk - 1) / chunk, (start, end) -> {
            long from = start * chunk;
            tensor.asSlice(from, Math.min(bytes, end * chunk) - from).fill((byte) 0);
        });
    }

    /** Zeroes memory from its start up to where tensor, a slice of it, begins ({@link #zero}). */
    public static void zeroBefore(MemorySegment memory, MemorySegment tensor) {
        zero(memory.asSlice(0, tensor.address() - memory.address()));
    }

    /** Slices consecutive tensors of the given sizes (in floats) out of one buffer. */
    public static MemorySegment[] sliceAll(MemorySegment memory, long[] sizes) {
        var tensors = new MemorySegment[sizes.length];
        long offset = 0;
        for (int i = 0; i < sizes.length; i++) {
            tensors[i] = slice(memory, offset, sizes[i]);
            offset += sizes[i];
        }
        return tensors;
    }
}
