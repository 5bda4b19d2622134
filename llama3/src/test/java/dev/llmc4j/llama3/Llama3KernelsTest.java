package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.testing.RandomTokens;
import java.lang.foreign.ValueLayout;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Llama 3's kernel sets: what the vectorized set still runs as the baseline is listed (issue 18 adds the fast
 * versions), and a model built with either set trains to the same losses and gradients up to fp32 rounding.
 */
class Llama3KernelsTest {
    // grouped-query attention (NKV = 2 < NH = 4), as Llama 3 itself
    static final Llama3Config TINY = Llama3TrainingTest.TINY;

    @Test
    void theVectorizedSetNamesItsMissingFastVersions() {
        assertEquals(List.of("embedding", "rmsnorm", "rope", "swiglu", "grouped-query attention (NKV < NH)"),
                Llama3Kernels.VECTORIZED.missingFastVersions());
        assertEquals("vectorized", Llama3Kernels.VECTORIZED.name());
        assertEquals("baseline", Llama3Kernels.BASELINE.name());
        assertEquals(List.of(), Llama3Kernels.BASELINE.missingFastVersions());
        assertSame(Llama3Kernels.BASELINE, Llama3Kernels.of(CpuKernels.Choice.BASELINE));
        assertSame(Llama3Kernels.VECTORIZED, Llama3Kernels.of(CpuKernels.Choice.VECTORIZED));
    }

    @Test
    void bothSetsTrainAlike() {
        int B = 2, T = 8;
        int[] x = RandomTokens.of(B * T, TINY.vocabSize(), 1), y = RandomTokens.of(B * T, TINY.vocabSize(), 2);
        float[][] losses = new float[2][2];
        float[][] gradients = new float[2][];
        var sets = new Llama3Kernels[] {Llama3Kernels.BASELINE, Llama3Kernels.VECTORIZED};
        for (int s = 0; s < 2; s++) {
            try (var model = Llama3.randomInit(TINY, 42, sets[s])) {
                assertSame(sets[s], model.kernels());
                for (int step = 1; step <= 2; step++) {
                    model.zeroGrad();
                    losses[s][step - 1] = model.forward(x, y, B, T);
                    model.backward();
                    if (step == 2) gradients[s] = model.gradients().toArray(ValueLayout.JAVA_FLOAT);
                    model.update(1e-3f, 0.9f, 0.95f, 1e-8f, 0.0f, step);
                }
            }
        }
        assertArrayEquals(losses[0], losses[1], 1e-5f);
        assertArrayEquals(gradients[0], gradients[1], 1e-5f);
    }
}
