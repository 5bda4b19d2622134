package dev.llmc4j.train;

import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.model.OptimizerShard;

/**
 * A model whose gradients stay on its GPU: it averages them across ranks itself, during the backward, with the
 * device collectives (NCCL), where a {@link HostGradients} model leaves that to {@link DataParallel}.
 */
public interface DeviceGradients {

    /** The type the model stores its gradients in: what NCCL sends. */
    Nccl.DataType deviceGradientType();

    /**
     * From now on the backward of the last micro-step of each optimizer step averages the gradients across the ranks
     * as it goes, layer by layer on a side stream (ZeRO-0: all-reduce; ZeRO-1: reduce-scatter, so that each rank gets
     * the average of its own pieces), and under ZeRO-1 {@link TrainableModel#update} all-gathers the updated pieces.
     */
    void reduceGradientsDuringBackward(DeviceCollectives collectives, OptimizerShard shard);
}
