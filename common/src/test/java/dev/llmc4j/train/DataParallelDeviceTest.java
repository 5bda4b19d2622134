package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.DeviceBuffer;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * {@link DataParallel} with a model that keeps its gradients on a GPU: once per step the device buffer goes to the
 * communicator (NCCL's all-reduce), before the norm is taken; nothing touches host gradients; ZeRO-1 is refused.
 */
class DataParallelDeviceTest {

    /** Records every call the trainer's helper makes, model and communicator in one log. */
    static final List<String> log = new ArrayList<>();

    static final DeviceBuffer GRADIENTS = new DeviceBuffer(0xA000, 1000, Nccl.DataType.BFLOAT16, MemorySegment.NULL);

    static final class GpuLikeModel implements TrainableModel {
        public long numParameters() { return 1000; }
        public int vocabSize() { return 1; }
        public int maxSeqLen() { return 1; }
        public float forward(int[] inputs, int[] targets, int B, int T) { return 0; }
        public void zeroGrad() {}
        public void backward(int microSteps) {}
        public float gradientNorm() { log.add("norm"); return 2.5f; }
        public void update(float lr, float b1, float b2, float eps, float wd, float gradScale, int t) { log.add("update t=" + t); }
        public MemorySegment adamFirstMoments() { return null; }
        public MemorySegment adamSecondMoments() { return null; }
        public DeviceBuffer deviceGradients() { return GRADIENTS; }
        public void saveCheckpoint(Path file) {}
        public TokenGenerator generator() { return null; }
        public void close() {}
    }

    static final class Recording implements Communicator {
        final int size;
        Recording(int size) { this.size = size; }
        @Override public int rank() { return 0; }
        @Override public int size() { return size; }
        @Override public String description() { return "recording"; }
        @Override public void allReduceMeanOnDevice(DeviceBuffer buffer) { log.add("device all-reduce " + (buffer == GRADIENTS)); }
        @Override public void allReduceMean(MemorySegment floats, long count) { log.add("host all-reduce"); }
        @Override public float allReduceMean(float value) { log.add("mean"); return value; }
        @Override public double allReduceSum(double value) { log.add("sum"); return value; }
        @Override public void reduceScatterMean(MemorySegment floats, long shardCount) { log.add("reduce-scatter"); }
        @Override public void allGather(MemorySegment floats, long shardCount) { log.add("all-gather"); }
        @Override public void broadcast(MemorySegment bytes, int root) {}
        @Override public void barrier() {}
        @Override public void abort(int exitCode) {}
        @Override public void close() {}
    }

    private static final PrintStream QUIET = new PrintStream(new ByteArrayOutputStream());

    @Test
    void gradientsAreAveragedOnTheDeviceThenTheNormIsTaken() {
        log.clear();
        var parallel = new DataParallel(new Recording(4), new GpuLikeModel(), 0, QUIET);
        assertEquals(1.5f, parallel.mean(1.5f));
        assertEquals(2.5f, parallel.reduceGradients());
        parallel.update(1e-4f, 0.0f, 1.0f, 7);
        assertEquals(List.of("mean", "device all-reduce true", "norm", "update t=7"), log);
        assertEquals(1000, parallel.shardCount());
        // bf16 on the wire: 2 bytes per gradient, 2(P-1)/P of them per ring all-reduce
        assertEquals(2L * 3 * 1000 / 4 * 2, parallel.bytesSentPerStep());
    }

    @Test
    void oneGpuTalksToNobody() {
        log.clear();
        var parallel = new DataParallel(new Recording(1), new GpuLikeModel(), 0, QUIET);
        parallel.reduceGradients();
        assertEquals(List.of("norm"), log);
    }

    @Test
    void zeroOneOnGpusIsRefusedInOneLine() {
        var error = assertThrows(LlmcException.class, () -> new DataParallel(new Recording(4), new GpuLikeModel(), 1, QUIET));
        assertEquals(DataParallel.GPU_ZERO1_REFUSAL, error.getMessage());
        // one GPU with -z 1 has nothing to shard: accepted, as on the CPU
        assertEquals(1, new DataParallel(new Recording(1), new GpuLikeModel(), 1, QUIET).zeroStage());
    }
}
