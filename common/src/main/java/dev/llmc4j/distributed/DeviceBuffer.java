package dev.llmc4j.distributed;

import java.lang.foreign.MemorySegment;

/**
 * A buffer in GPU memory as NCCL takes it: a raw CUDA device address, a count of elements of one type, and the
 * CUDA stream whose work produces it (the collective is enqueued there, after that work, before what follows).
 *
 * @param address a {@code CUdeviceptr}
 * @param count   elements, not bytes
 * @param type    the element type (the GPU model's storage precision for gradients)
 * @param stream  a {@code CUstream}; {@link MemorySegment#NULL} is the default stream
 */
public record DeviceBuffer(long address, long count, Nccl.DataType type, MemorySegment stream) {
    public DeviceBuffer {
        if (address == 0) throw new IllegalArgumentException("device buffer at address 0");
        if (count < 1) throw new IllegalArgumentException("device buffer of " + count + " elements");
    }

    public long bytes() {
        return count * type.bytes();
    }
}
