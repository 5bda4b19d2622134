package dev.llmc4j.llama3;

import static dev.llmc4j.train.LazyZeroGradCheck.assertBackwardAfterZeroGradEqualsBackwardOnZeroedGradients;
import static dev.llmc4j.train.LazyZeroGradCheck.assertGradientsReadAfterZeroGradAreZero;

import dev.llmc4j.cpu.CpuKernels.Choice;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Llama 3's lazy zeroGrad ({@link dev.llmc4j.train.LazyZeroGradCheck}), with either kernel set. */
class LazyZeroGradTest {
    private static final int V = Llama3TrainingTest.TINY.vocabSize();

    @ParameterizedTest
    @EnumSource(Choice.class)
    void backwardAfterZeroGradEqualsBackwardOnZeroedGradients(Choice kernels) {
        try (var lazy = Llama3.randomInit(Llama3TrainingTest.TINY, 42, Llama3Kernels.of(kernels));
                var eager = Llama3.randomInit(Llama3TrainingTest.TINY, 42, Llama3Kernels.of(kernels))) {
            assertBackwardAfterZeroGradEqualsBackwardOnZeroedGradients(lazy, eager, V);
        }
    }

    @ParameterizedTest
    @EnumSource(Choice.class)
    void gradientsReadAfterZeroGradAreZero(Choice kernels) {
        try (var model = Llama3.randomInit(Llama3TrainingTest.TINY, 42, Llama3Kernels.of(kernels))) {
            assertGradientsReadAfterZeroGradAreZero(model, V);
        }
    }
}
