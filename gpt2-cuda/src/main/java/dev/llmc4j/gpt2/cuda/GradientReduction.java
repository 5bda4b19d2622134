package dev.llmc4j.gpt2.cuda;

import static dev.llmc4j.gpt2.cuda.ParameterLayout.*;

import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * How a multi-GPU run averages {@link GPT2Cuda}'s gradients, llm.c's way: during the backward of the last
 * micro-step, each layer's gradients as soon as they are complete, on a second CUDA stream, so that NCCL's traffic
 * for layer l overlaps the backward of layers l-1 .. 0 on the main stream.
 * <pre>
 * main:  lm head, lnf | layer L-1 | layer L-2 | ... | layer 0 | encoder |                         wait(reduced) | norm ..
 *                            rec(layerDone)  rec(layerDone)        rec(layerDone)
 * side:                      wait | reduce layer L-1 | wait | reduce L-2 ...  | wait | reduce wte, wpe, lnfw, lnfb | rec(reduced)
 * </pre>
 * A layer's gradients are its 12 slices (ln1w .. fcprojb of that layer), reduced in one NCCL group; wte (which the
 * encoder backward finishes last), wpe, lnfw and lnfb go after the whole backward.
 * <ul>
 *   <li>ZeRO-0: each slice is all-reduced (ncclAvg): every rank ends with every averaged gradient.</li>
 *   <li>ZeRO-1: each slice is reduce-scattered: rank r ends with the average of its piece r of every slice (see
 *       {@link OptimizerShard}), updates only those parameters, and {@link #allGatherParameters} then hands each
 *       rank's updated pieces to all.</li>
 * </ul>
 * One event per direction is enough: a stream waits for the event's most recent record at the time of the wait.
 * The side stream is non-blocking, so it neither waits for nor holds up the main (legacy default) stream; the
 * events are the only order between them. Everything here only enqueues work, which makes the order testable
 * without a GPU ({@link Streams} and {@link DeviceCollectives} are recorders in the test).
 */
final class GradientReduction {

    /** The two CUDA driver calls that order the streams (cuEventRecord, cuStreamWaitEvent). */
    interface Streams {
        void record(MemorySegment event, MemorySegment stream);

        void wait(MemorySegment stream, MemorySegment event);
    }

    /** The per-layer tensors, in the order llm.c lists a layer's gradients for its NCCL group. */
    private static final int[] LAYER_TENSORS = {
        LN1W, LN1B, QKVW, QKVB, ATTPROJW, ATTPROJB, LN2W, LN2B, FCW, FCB, FCPROJW, FCPROJB
    };

    private static final int[] WHOLE_TENSORS = {WTE, WPE, LNFW, LNFB};

    private final DeviceCollectives collectives;
    private final Streams streams;
    private final Nccl.DataType type; // the gradients' (and parameters') storage type
    private final int elementBytes;
    private final boolean zero1;
    private final long grads; // CUdeviceptr of the gradients
    private final MemorySegment main, side, layerDone, reduced;
    private final List<List<ParameterSlice>> layerSlices; // [l]: the 12 slices of layer l
    private final List<ParameterSlice> lastSlices; // wte, wpe, lnfw, lnfb
    private final List<ParameterSlice> allSlices; // every slice, in parameter order (the all-gather)

    /**
     * @param shard     this rank's pieces; a whole shard means ZeRO-0 (all-reduce)
     * @param grads     the gradients' device address
     * @param main      the model's stream (its kernels)
     * @param side      a non-blocking stream for the collectives
     * @param layerDone an event main records after each layer, side waits on
     * @param reduced   an event side records after the last collective, main waits on
     */
    GradientReduction(
            DeviceCollectives collectives,
            Streams streams,
            ParameterLayout layout,
            Precision precision,
            OptimizerShard shard,
            long grads,
            MemorySegment main,
            MemorySegment side,
            MemorySegment layerDone,
            MemorySegment reduced) {
        this.collectives = collectives;
        this.streams = streams;
        this.type = GPT2CudaModel.ncclType(precision);
        this.elementBytes = precision.bytes();
        this.zero1 = !shard.isWhole();
        this.grads = grads;
        this.main = main;
        this.side = side;
        this.layerDone = layerDone;
        this.reduced = reduced;
        var layers = new ArrayList<List<ParameterSlice>>();
        for (int l = 0; l < layout.config().numLayers(); l++) {
            var slices = new ArrayList<ParameterSlice>(LAYER_TENSORS.length);
            for (int tensor : LAYER_TENSORS)
                slices.add(new ParameterSlice(
                        layout.layer(tensor, l),
                        layout.size(tensor) / layout.config().numLayers()));
            layers.add(List.copyOf(slices));
        }
        this.layerSlices = List.copyOf(layers);
        var last = new ArrayList<ParameterSlice>(WHOLE_TENSORS.length);
        for (int tensor : WHOLE_TENSORS) last.add(new ParameterSlice(layout.offset(tensor), layout.size(tensor)));
        this.lastSlices = List.copyOf(last);
        this.allSlices = layout.config().parameterSlices();
    }

    /** Called on the main stream's order right after layer l's parameter gradients are complete. */
    void layerDone(int l) {
        reduceOnSide(layerSlices.get(l));
    }

    /**
     * After the encoder backward (the last kernel to touch wte's gradient): reduces the four remaining slices, and
     * makes the main stream wait for every reduction before whatever it runs next (the norm, AdamW).
     */
    void backwardDone() {
        reduceOnSide(lastSlices);
        streams.record(reduced, side);
        streams.wait(main, reduced);
    }

    private void reduceOnSide(List<ParameterSlice> slices) {
        streams.record(layerDone, main);
        streams.wait(side, layerDone);
        collectives.groupStart();
        for (ParameterSlice slice : slices) {
            long address = grads + slice.offset() * elementBytes;
            if (zero1) collectives.reduceScatterMean(address, slice.count() / collectives.size(), type, side);
            else collectives.allReduceMean(address, slice.count(), type, side);
        }
        collectives.groupEnd();
    }

    /**
     * ZeRO-1, after AdamW updated this rank's pieces: every rank gets every rank's pieces, slice by slice in one
     * group, on the main stream (the next forward, also on main, reads them).
     */
    void allGatherParameters(long params) {
        collectives.groupStart();
        for (ParameterSlice slice : allSlices)
            collectives.allGather(
                    params + slice.offset() * elementBytes, slice.count() / collectives.size(), type, main);
        collectives.groupEnd();
    }
}
