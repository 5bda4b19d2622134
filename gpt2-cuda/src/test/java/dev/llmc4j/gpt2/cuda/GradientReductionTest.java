package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.OptimizerShard;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * The host side of the multi-GPU backward, without a GPU: which collectives {@link GradientReduction} enqueues, on
 * which stream, over which device addresses, and how the two streams are ordered by events.
 */
class GradientReductionTest {

    static final GPT2Config SMALL = new GPT2Config(64, 96, 128, 2, 4, 32);
    static final ParameterLayout LAYOUT = ParameterLayout.of(SMALL);
    static final long GRADS = 0x100000, PARAMS = 0x900000;
    static final MemorySegment MAIN = MemorySegment.NULL,
            SIDE = MemorySegment.ofAddress(0x5100),
            LAYER_DONE = MemorySegment.ofAddress(0xE1),
            REDUCED = MemorySegment.ofAddress(0xE2);

    /** One log for the stream calls and the collectives, in the order they are enqueued. */
    record Call(String what, long address, long count, MemorySegment stream) {}

    static final class Recorder implements DeviceCollectives, GradientReduction.Streams {
        final List<Call> log = new ArrayList<>();
        final int rank, size;

        Recorder(int rank, int size) {
            this.rank = rank;
            this.size = size;
        }

        @Override
        public int rank() {
            return rank;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public void groupStart() {
            log.add(new Call("group start", 0, 0, null));
        }

        @Override
        public void groupEnd() {
            log.add(new Call("group end", 0, 0, null));
        }

        @Override
        public void allReduceMean(long a, long n, Nccl.DataType t, MemorySegment s) {
            check(t);
            log.add(new Call("all-reduce", a, n, s));
        }

        @Override
        public void reduceScatterMean(long a, long k, Nccl.DataType t, MemorySegment s) {
            check(t);
            log.add(new Call("reduce-scatter", a, k, s));
        }

        @Override
        public void allGather(long a, long k, Nccl.DataType t, MemorySegment s) {
            check(t);
            log.add(new Call("all-gather", a, k, s));
        }

        @Override
        public void record(MemorySegment event, MemorySegment stream) {
            log.add(new Call(event == LAYER_DONE ? "record layerDone" : "record reduced", 0, 0, stream));
        }

        @Override
        public void wait(MemorySegment stream, MemorySegment event) {
            log.add(new Call(event == LAYER_DONE ? "wait layerDone" : "wait reduced", 0, 0, stream));
        }

        private static void check(Nccl.DataType type) {
            assertEquals(Nccl.DataType.BFLOAT16, type, "collectives move the gradients as they are stored");
        }

        List<String> kinds() {
            return log.stream().map(Call::what).distinct().toList();
        }
    }

    private static GradientReduction reduction(Recorder recorder, OptimizerShard shard) {
        return new GradientReduction(
                recorder, recorder, LAYOUT, Precision.BF16, shard, GRADS, MAIN, SIDE, LAYER_DONE, REDUCED);
    }

    /** The backward's calls for L = 2: layer 1, layer 0, then the rest. */
    private static void backward(GradientReduction reduction) {
        for (int l = SMALL.numLayers() - 1; l >= 0; l--) reduction.layerDone(l);
        reduction.backwardDone();
    }

    @Test
    void zeroZeroAllReducesEveryGradientOnceOnTheSideStreamAfterItsLayer() {
        var recorder = new Recorder(0, 2);
        backward(reduction(recorder, OptimizerShard.whole(SMALL.numParameters())));
        long N = SMALL.numParameters();
        int[] times = new int[(int) N];
        for (var call : recorder.log) {
            if (!call.what().equals("all-reduce")) continue;
            assertEquals(SIDE, call.stream(), "collectives run on the side stream");
            long first = (call.address() - GRADS) / 2; // bf16: 2 bytes per element
            for (long i = first; i < first + call.count(); i++) times[(int) i]++;
        }
        for (long i = 0; i < N; i++) assertEquals(1, times[(int) i], "gradient " + i + " all-reduced once");
        assertEquals(
                List.of(
                        "record layerDone",
                        "wait layerDone",
                        "group start",
                        "all-reduce",
                        "group end",
                        "record reduced",
                        "wait reduced"),
                recorder.kinds());

        // each reduction waits for the main stream to reach it; the main stream waits for all of them at the end
        var log = recorder.log;
        assertEquals(new Call("record layerDone", 0, 0, MAIN), log.get(0));
        assertEquals(new Call("wait layerDone", 0, 0, SIDE), log.get(1));
        assertEquals(new Call("record reduced", 0, 0, SIDE), log.get(log.size() - 2));
        assertEquals(new Call("wait reduced", 0, 0, MAIN), log.get(log.size() - 1));
        // layer 1 first (the backward runs from the top), its 12 slices in one group, starting with ln1w of layer 1
        assertEquals(new Call("all-reduce", GRADS + LAYOUT.layer(ParameterLayout.LN1W, 1) * 2, 32, SIDE), log.get(3));
        assertEquals(new Call("group end", 0, 0, null), log.get(3 + 12));
        // wte goes last: the encoder backward is the last kernel to add into it
        var lastGroup = log.subList(log.size() - 8, log.size() - 2);
        assertEquals(new Call("all-reduce", GRADS, SMALL.parameterSizes()[0], SIDE), lastGroup.get(1));
    }

    @Test
    void zeroOneReduceScattersEverySliceSoEachRankGetsItsPieces() {
        int P = 2;
        for (int rank = 0; rank < P; rank++) {
            var recorder = new Recorder(rank, P);
            var shard = OptimizerShard.of(SMALL.parameterSlices(), rank, P);
            backward(reduction(recorder, shard));
            var scatters = recorder.log.stream()
                    .filter(c -> c.what().equals("reduce-scatter"))
                    .toList();
            assertEquals(SMALL.parameterSlices().size(), scatters.size(), "one reduce-scatter per slice");
            // together they cover every slice; the piece this rank receives is one of its shard's pieces
            var pieces = new ArrayList<Long>();
            for (var call : scatters) {
                assertEquals(SIDE, call.stream());
                long sliceStart = (call.address() - GRADS) / 2;
                var slice = SMALL.parameterSlices().stream()
                        .filter(s -> s.offset() == sliceStart)
                        .findFirst()
                        .orElseThrow();
                assertEquals(slice.count() / P, call.count(), "the piece count");
                pieces.add(sliceStart + rank * call.count());
            }
            var owned = shard.pieces().stream()
                    .map(OptimizerShard.Piece::parameterOffset)
                    .sorted()
                    .toList();
            assertEquals(owned, pieces.stream().sorted().toList());
        }
    }

    @Test
    void zeroOneAllGathersEverySliceOnTheMainStream() {
        var recorder = new Recorder(1, 2);
        var reduction = reduction(recorder, OptimizerShard.of(SMALL.parameterSlices(), 1, 2));
        reduction.allGatherParameters(PARAMS);
        var gathers =
                recorder.log.stream().filter(c -> c.what().equals("all-gather")).toList();
        assertEquals(SMALL.parameterSlices().size(), gathers.size());
        long covered = 0;
        for (int i = 0; i < gathers.size(); i++) {
            var slice = SMALL.parameterSlices().get(i);
            assertEquals(new Call("all-gather", PARAMS + slice.offset() * 2, slice.count() / 2, MAIN), gathers.get(i));
            covered += 2 * gathers.get(i).count();
        }
        assertEquals(SMALL.numParameters(), covered);
        assertEquals("group start", recorder.log.getFirst().what());
        assertEquals("group end", recorder.log.getLast().what());
        assertTrue(
                recorder.log.stream()
                        .noneMatch(
                                c -> c.what().startsWith("record") || c.what().startsWith("wait")),
                "the all-gather follows AdamW on the main stream: no events needed");
    }
}
