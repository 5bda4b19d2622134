package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** The interface's default methods: what a CPU model gets without writing anything. */
class TrainableModelTest {

    /** A model of 4 parameters whose only state is its moments, held in host memory as a CPU model holds them. */
    static final class Moments implements TrainableModel {
        final Arena arena = Arena.ofConfined();
        final MemorySegment m = arena.allocate(16), v = arena.allocate(16);

        public long numParameters() {
            return 4;
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
            return 0;
        }

        public void update(float lr, float b1, float b2, float eps, float wd, float gradScale, int t) {}

        public MemorySegment adamFirstMoments() {
            return m;
        }

        public MemorySegment adamSecondMoments() {
            return v;
        }

        public void saveCheckpoint(Path file) {}

        public TokenGenerator generator() {
            return null;
        }

        public void close() {
            arena.close();
        }
    }

    @Test
    void loadingItsOwnMomentsChangesNothing() {
        try (var model = new Moments()) {
            model.m.setAtIndex(ValueLayout.JAVA_FLOAT, 2, 1.5f);
            model.loadAdamMoments(model.adamFirstMoments(), model.adamSecondMoments());
            assertEquals(1.5f, model.m.getAtIndex(ValueLayout.JAVA_FLOAT, 2));
        }
    }

    @Test
    void otherMomentsAreCopiedIn() {
        try (var model = new Moments()) {
            model.loadAdamMoments(
                    MemorySegment.ofArray(new float[] {1, 2, 3, 4}), MemorySegment.ofArray(new float[] {5, 6, 7, 8}));
            assertArrayEquals(new float[] {1, 2, 3, 4}, model.m.toArray(ValueLayout.JAVA_FLOAT));
            assertArrayEquals(new float[] {5, 6, 7, 8}, model.v.toArray(ValueLayout.JAVA_FLOAT));
        }
    }

    @Test
    void noMfuColumnUnlessTheModelKnowsItsPeak() {
        try (var model = new Moments()) {
            assertEquals(-1, model.flopsUtilization(1024, 1 << 20, 1.0));
        }
    }
}
