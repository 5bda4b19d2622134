package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.lang.foreign.ValueLayout;
import java.util.Random;

/**
 * A lazy zeroGrad, for any CPU model (GPT-2, Llama 3): zeroGrad only marks the gradients as zero, and the next
 * backward overwrites the matmul gradients and zeroes the rest. That must give exactly the gradients of zeroing them
 * in memory first, for one micro-batch and for several, and anything that reads the gradients in between must see
 * zeros.
 */
public final class LazyZeroGradCheck {
    private LazyZeroGradCheck() {}

    private static final int B = 2, T = 8;

    /** {@code lazy} and {@code eager} must start identical, with a vocabulary of {@code vocabSize} tokens. */
    public static void assertBackwardAfterZeroGradEqualsBackwardOnZeroedGradients(
            CpuTrainableModel lazy, CpuTrainableModel eager, int vocabSize) {
        var random = new Random(3);
        int[][] batches = new int[4][];
        for (int i = 0; i < batches.length; i++)
            batches[i] = random.ints(B * T, 0, vocabSize).toArray();
        for (var model : new CpuTrainableModel[] {lazy, eager}) { // old gradients in memory, which zeroGrad must clear
            model.forward(batches[0], batches[1], B, T);
            model.backward(1);
        }
        for (int microSteps : new int[] {1, 2}) {
            lazy.zeroGrad();
            eager.zeroGrad();
            eager.gradients(); // read: zeroes them in memory, so its backward adds to zeros
            for (int micro = 0; micro < microSteps; micro++) {
                for (var model : new CpuTrainableModel[] {lazy, eager}) {
                    model.forward(batches[2 * micro], batches[2 * micro + 1], B, T);
                    model.backward(microSteps);
                }
            }
            var expected = eager.gradients();
            var found = lazy.gradients();
            for (long i = 0; i < lazy.numParameters(); i++)
                assertEquals(
                        expected.getAtIndex(ValueLayout.JAVA_FLOAT, i),
                        found.getAtIndex(ValueLayout.JAVA_FLOAT, i),
                        microSteps + " micro-steps: gradient " + i);
        }
    }

    /** After a backward and a zeroGrad, the gradients read (and their norm) are all zero. */
    public static void assertGradientsReadAfterZeroGradAreZero(CpuTrainableModel model, int vocabSize) {
        var tokens = new Random(5).ints(B * T, 0, vocabSize).toArray();
        model.forward(tokens, tokens, B, T);
        model.backward(1);
        model.zeroGrad();
        assertEquals(0f, model.gradientNorm());
        var gradients = model.gradients();
        for (long i = 0; i < model.numParameters(); i++)
            assertEquals(0f, gradients.getAtIndex(ValueLayout.JAVA_FLOAT, i), "gradient " + i);
    }
}
