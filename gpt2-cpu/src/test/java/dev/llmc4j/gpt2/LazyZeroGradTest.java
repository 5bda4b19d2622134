package dev.llmc4j.gpt2;

import static dev.llmc4j.train.LazyZeroGradCheck.assertBackwardAfterZeroGradEqualsBackwardOnZeroedGradients;
import static dev.llmc4j.train.LazyZeroGradCheck.assertGradientsReadAfterZeroGradAreZero;

import dev.llmc4j.cpu.CpuKernels.Choice;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** GPT-2's lazy zeroGrad ({@link dev.llmc4j.train.LazyZeroGradCheck}), with either kernel set. */
class LazyZeroGradTest {
    private static final int V = GPT2TrainingTest.TINY.vocabSize();

    @ParameterizedTest
    @EnumSource(Choice.class)
    void backwardAfterZeroGradEqualsBackwardOnZeroedGradients(Choice kernels) {
        try (var lazy = GPT2.randomInit(GPT2TrainingTest.TINY, GPT2Kernels.of(kernels));
                var eager = GPT2.randomInit(GPT2TrainingTest.TINY, GPT2Kernels.of(kernels))) {
            assertBackwardAfterZeroGradEqualsBackwardOnZeroedGradients(lazy, eager, V);
        }
    }

    @ParameterizedTest
    @EnumSource(Choice.class)
    void gradientsReadAfterZeroGradAreZero(Choice kernels) {
        try (var model = GPT2.randomInit(GPT2TrainingTest.TINY, GPT2Kernels.of(kernels))) {
            assertGradientsReadAfterZeroGradAreZero(model, V);
        }
    }
}
