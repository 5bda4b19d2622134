package dev.llmc4j.cpu;

import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.util.OffHeap;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * AdamW's moments m and v in host memory for the parameters this process updates, and the update over them: all
 * parameters, or under ZeRO-1 the pieces of its {@link OptimizerShard} (the moments then hold the pieces one after
 * the other). The CPU models (GPT-2, Llama 3) each keep one; the moments are allocated, zero, on first use.
 */
public final class AdamWState {
    private final long numParameters;
    private final CpuKernels kernels;
    private final Arena arena;
    private final String owner;
    private OptimizerShard shard;
    private List<OptimizerShard.Run> runs; // the shard cut at tensor boundaries, made on the first update
    private MemorySegment m, v;

    /**
     * @param kernels the model's kernel set, whose AdamW runs the update
     * @param owner the model, for the out-of-memory message
     */
    public AdamWState(long numParameters, CpuKernels kernels, Arena arena, String owner) {
        this.numParameters = numParameters;
        this.kernels = kernels;
        this.arena = arena;
        this.owner = owner;
        this.shard = OptimizerShard.whole(numParameters);
    }

    /** ZeRO-1: keep the moments of the shard's pieces only, and update only those parameters. Before the first update. */
    public void shard(OptimizerShard newShard) {
        if (m != null) throw new IllegalStateException("shard the optimizer state before the first update");
        shard = newShard.requireWithin(numParameters);
    }

    public MemorySegment firstMoments() {
        allocate();
        return m;
    }

    public MemorySegment secondMoments() {
        allocate();
        return v;
    }

    private void allocate() {
        if (m == null) {
            m = OffHeap.allocate(arena, shard.count() * Float.BYTES, "AdamW first moments", owner);
            v = OffHeap.allocate(arena, shard.count() * Float.BYTES, "AdamW second moments", owner);
        }
    }

    /**
     * One AdamW step over the shard's parameters, tensor by tensor: weight decay only on the tensors {@code decays}
     * accepts, and the tensors {@code frozen} names (Llama's zero bias slots) left alone.
     *
     * @param tensorSizes the sizes of the parameter tensors, in order
     */
    public void update(
            MemorySegment params,
            MemorySegment grads,
            long[] tensorSizes,
            IntPredicate decays,
            IntPredicate frozen,
            AdamW.Step step) {
        allocate();
        var noDecay = new AdamW.Step(
                step.learningRate(), step.beta1(), step.beta2(), step.eps(), 0, step.gradScale(), step.t());
        if (runs == null) runs = shard.runs(tensorSizes); // the shard cannot change after the first update
        for (var run : runs) {
            if (frozen.test(run.tensor())) continue;
            long param = run.parameterOffset() * Float.BYTES, state = run.stateOffset() * Float.BYTES;
            kernels.adamwUpdate(
                    params.asSlice(param),
                    grads.asSlice(param),
                    m.asSlice(state),
                    v.asSlice(state),
                    0,
                    run.count(),
                    decays.test(run.tensor()) ? step : noDecay);
        }
    }

    /** Sum of the squared gradients of the shard's pieces: this rank's share of the global norm under ZeRO-1. */
    public static double gradientSquareSum(MemorySegment grads, OptimizerShard shard) {
        double sum = 0;
        for (var piece : shard.pieces()) sum += AdamW.gradientSquareSum(grads, piece.parameterOffset(), piece.count());
        return sum;
    }
}
