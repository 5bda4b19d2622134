package dev.llmc4j.train;

import java.lang.foreign.MemorySegment;

/**
 * A model whose parameters and gradients live in host memory (the CPU models): {@link DataParallel} averages the
 * gradients across processes with the communicator (MPI) after the backward, and under ZeRO-1 gathers the updated
 * parameters. A GPU model reduces its gradients itself instead ({@link DeviceGradients}).
 */
public interface HostGradients {

    /** The parameters, numParameters floats in host memory, in the model's checkpoint order. */
    MemorySegment parameters();

    /** The parameter gradients, same layout as {@link #parameters()}. */
    MemorySegment gradients();
}
