package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link DataParallel} with a model that keeps its gradients on a GPU: the model gets the device collectives and its
 * shard once, reduces its own gradients during the backward, and the trainer's helper only takes the norm (ZeRO-1:
 * the sum of the ranks' shares); nothing touches host gradients.
 */
class DataParallelDeviceTest {

    /** Records every call the trainer's helper makes, model and communicator in one log. */
    static final List<String> log = new ArrayList<>();

    static final class GpuLikeModel implements TrainableModel, ShardedOptimizer, DeviceGradients {
        public long numParameters() {
            return 1000;
        }

        public int vocabSize() {
            return 1;
        }

        public int maxSeqLen() {
            return 1;
        }

        public float forward(int[] inputs, int[] targets, int B, int T) {
            return 0;
        }

        public void zeroGrad() {}

        public void backward(int microSteps) {}

        public float gradientNorm() {
            log.add("norm");
            return 2.5f;
        }

        public void update(float lr, float b1, float b2, float eps, float wd, float gradScale, int t) {
            log.add("update t=" + t);
        }

        public MemorySegment adamFirstMoments() {
            return null;
        }

        public MemorySegment adamSecondMoments() {
            return null;
        }

        public Nccl.DataType deviceGradientType() {
            return Nccl.DataType.BFLOAT16;
        }

        public List<dev.llmc4j.model.ParameterSlice> parameterSlices() {
            return List.of(new dev.llmc4j.model.ParameterSlice(0, 600), new dev.llmc4j.model.ParameterSlice(600, 400));
        }

        public void shardOptimizerState(OptimizerShard shard) {
            log.add("shard " + shard.count());
        }

        public double gradientSquareSum(OptimizerShard shard) {
            log.add("square sum");
            return 4.0;
        }

        public void reduceGradientsDuringBackward(DeviceCollectives collectives, OptimizerShard shard) {
            log.add("reduce during backward, shard of " + shard.count());
        }

        public void saveCheckpoint(Path file) {}

        public TokenGenerator generator() {
            return null;
        }

        public void close() {}
    }

    /** A host-memory communicator (like MPI) that records what it is asked. */
    static class RecordingHost implements Communicator {
        final int size;

        RecordingHost(int size) {
            this.size = size;
        }

        @Override
        public int rank() {
            return 0;
        }

        @Override
        public int size() {
            return size;
        }

        @Override
        public String description() {
            return "recording";
        }

        @Override
        public void allReduceMean(MemorySegment floats, long count) {
            log.add("host all-reduce");
        }

        @Override
        public float allReduceMean(float value) {
            log.add("mean");
            return value;
        }

        @Override
        public double allReduceSum(double value) {
            log.add("sum");
            return value;
        }

        @Override
        public void reduceScatterMean(MemorySegment floats, long shardCount) {
            log.add("reduce-scatter");
        }

        @Override
        public void allGather(MemorySegment floats, long shardCount) {
            log.add("all-gather");
        }

        @Override
        public void broadcast(MemorySegment bytes, int root) {}

        @Override
        public void barrier() {}

        @Override
        public void abort(int exitCode) {}

        @Override
        public void close() {}
    }

    /** NCCL's shape: host collectives for single numbers, device collectives for the model. */
    static final class Recording extends RecordingHost implements DeviceCollectives {
        Recording(int size) {
            super(size);
        }

        @Override
        public void groupStart() {
            log.add("group start");
        }

        @Override
        public void groupEnd() {
            log.add("group end");
        }

        @Override
        public void allReduceMean(long address, long count, Nccl.DataType type, MemorySegment stream) {
            log.add("device all-reduce");
        }

        @Override
        public void reduceScatterMean(long address, long pieceCount, Nccl.DataType type, MemorySegment stream) {
            log.add("device reduce-scatter");
        }

        @Override
        public void allGather(long address, long pieceCount, Nccl.DataType type, MemorySegment stream) {
            log.add("device all-gather");
        }
    }

    private static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());

    @Test
    void theModelReducesDuringTheBackwardThenTheNormIsTaken() {
        log.clear();
        var parallel = new DataParallel(new Recording(4), new GpuLikeModel(), 0, QUIET);
        assertEquals(List.of("reduce during backward, shard of 1000"), log);
        log.clear();
        assertEquals(1.5f, parallel.mean(1.5f));
        assertEquals(2.5f, parallel.reduceGradients());
        parallel.update(1e-4f, 0.0f, 1.0f, 7);
        assertEquals(List.of("mean", "norm", "update t=7"), log);
        assertEquals(1000, parallel.shardCount());
        // bf16 on the wire: 2 bytes per gradient, 2(P-1)/P of them per ring all-reduce
        assertEquals(2L * 3 * 1000 / 4 * 2, parallel.bytesSentPerStep());
    }

    @Test
    void zeroOneShardsTheModelAndSumsTheShardsNorms() {
        log.clear();
        var parallel = new DataParallel(new Recording(4), new GpuLikeModel(), 1, QUIET);
        assertEquals(List.of("shard 250", "reduce during backward, shard of 250"), log);
        log.clear();
        assertEquals(2.0f, parallel.reduceGradients()); // sqrt of the (recorded, not summed) 4.0
        parallel.update(1e-4f, 0.0f, 1.0f, 3);
        assertEquals(List.of("square sum", "sum", "update t=3"), log, "the model all-gathers in its own update");
        assertEquals(250, parallel.shardCount());
    }

    @Test
    void oneGpuTalksToNobody() {
        log.clear();
        var parallel = new DataParallel(new Recording(1), new GpuLikeModel(), 0, QUIET);
        parallel.reduceGradients();
        assertEquals(List.of("norm"), log);
        // one GPU with -z 1 has nothing to shard: accepted, as on the CPU
        assertEquals(1, new DataParallel(new Recording(1), new GpuLikeModel(), 1, QUIET).zeroStage());
    }

    @Test
    void aHostCommunicatorCannotReduceGpuGradients() {
        var error = assertThrows(
                LlmcException.class, () -> new DataParallel(new RecordingHost(2), new GpuLikeModel(), 0, QUIET));
        assertTrue(error.getMessage().contains("GPU gradients need NCCL"), error.getMessage());
    }

    @Test
    void aModelWithoutTheCapabilitiesTrainsAloneOrWithZeroZeroOnly() {
        try (var core = new TrainableModelTest.Moments()) { // the core contract only: no ZeRO-1, no gradients to share
            assertEquals(0, new DataParallel(new RecordingHost(1), core, 0, QUIET).zeroStage());
            var zero1 = assertThrows(LlmcException.class, () -> new DataParallel(new RecordingHost(2), core, 1, QUIET));
            assertEquals("Moments does not support ZeRO-1 (-z 1)", zero1.getMessage());
            var shared =
                    assertThrows(LlmcException.class, () -> new DataParallel(new RecordingHost(2), core, 0, QUIET));
            assertEquals("Moments keeps no gradients to reduce across processes", shared.getMessage());
        }
    }
}
