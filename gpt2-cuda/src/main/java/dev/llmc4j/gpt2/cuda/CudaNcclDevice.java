package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.distributed.NcclCommunicator;
import java.lang.foreign.MemorySegment;

/** What {@link NcclCommunicator} needs of the CUDA driver, on the GPU (and in the context) of a {@link GPT2Cuda}. */
final class CudaNcclDevice implements NcclCommunicator.Device {
    private final GPT2Cuda gpu;
    private final CudaDriver cuda = CudaDriver.get();

    CudaNcclDevice(GPT2Cuda gpu) {
        this.gpu = gpu;
    }

    @Override
    public void makeCurrent() {
        gpu.makeCurrent();
    }

    @Override
    public long allocate(long bytes) {
        return cuda.memAlloc(bytes);
    }

    @Override
    public void free(long address) {
        cuda.memFree(address);
    }

    @Override
    public void copyToDevice(long destination, MemorySegment source, long bytes) {
        cuda.memcpyHtoD(destination, source, bytes);
    }

    @Override
    public void copyToHost(MemorySegment destination, long source, long bytes, MemorySegment stream) {
        cuda.streamSynchronize(stream); // the all-reduce that wrote source was enqueued there
        cuda.memcpyDtoH(destination, source, bytes);
    }
}
