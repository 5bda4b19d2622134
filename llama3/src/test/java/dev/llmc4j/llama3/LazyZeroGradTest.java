package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.llmc4j.cpu.CpuKernels.Choice;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/**
 * Llama 3 as GPT-2 (dev.llmc4j.gpt2.LazyZeroGradTest): zeroGrad only marks the gradients as zero; the next backward overwrites the matmul gradients and zeroes the rest.
 * That must give exactly the gradients of zeroing them in memory first, for one micro-batch and for several, and
 * anything that reads the gradients in between must see zeros.
 */
class LazyZeroGradTest {
    private static final int B = 2, T = 8;

    @ParameterizedTest
    @EnumSource(Choice.class)
    void backwardAfterZeroGradEqualsBackwardOnZeroedGradients(Choice kernels) {
        var random = new Random(3);
        int V = Llama3TrainingTest.TINY.vocabSize();
        int[][] batches = new int[4][];
        for (int i = 0; i < batches.length; i++)
            batches[i] = random.ints(B * T, 0, V).toArray();
        try (var lazy = Llama3.randomInit(Llama3TrainingTest.TINY, 42, Llama3Kernels.of(kernels));
                var eager = Llama3.randomInit(Llama3TrainingTest.TINY, 42, Llama3Kernels.of(kernels))) {
            for (var model : new Llama3[] {lazy, eager}) { // old gradients in memory, which zeroGrad must clear
                model.forward(batches[0], batches[1], B, T);
                model.backward();
            }
            for (int microSteps : new int[] {1, 2}) {
                lazy.zeroGrad();
                eager.zeroGrad();
                eager.gradients(); // read: zeroes them in memory, so its backward adds to zeros
                for (int micro = 0; micro < microSteps; micro++) {
                    for (var model : new Llama3[] {lazy, eager}) {
                        model.forward(batches[2 * micro], batches[2 * micro + 1], B, T);
                        model.backward(microSteps);
                    }
                }
                assertSameFloats(eager.gradients(), lazy.gradients(), microSteps + " micro-steps");
            }
        }
    }

    @ParameterizedTest
    @EnumSource(Choice.class)
    void gradientsReadAfterZeroGradAreZero(Choice kernels) {
        int V = Llama3TrainingTest.TINY.vocabSize();
        try (var model = Llama3.randomInit(Llama3TrainingTest.TINY, 42, Llama3Kernels.of(kernels))) {
            var tokens = new Random(5).ints(B * T, 0, V).toArray();
            model.forward(tokens, tokens, B, T);
            model.backward();
            model.zeroGrad();
            assertEquals(0f, model.gradientNorm());
            var gradients = model.gradients();
            for (long i = 0; i < model.numParameters(); i++)
                assertEquals(0f, gradients.getAtIndex(ValueLayout.JAVA_FLOAT, i), "gradient " + i);
        }
    }

    static void assertSameFloats(MemorySegment expected, MemorySegment found, String what) {
        for (long i = 0; i < expected.byteSize() / Float.BYTES; i++)
            assertEquals(
                    expected.getAtIndex(ValueLayout.JAVA_FLOAT, i),
                    found.getAtIndex(ValueLayout.JAVA_FLOAT, i),
                    what + ": gradient " + i);
    }
}
