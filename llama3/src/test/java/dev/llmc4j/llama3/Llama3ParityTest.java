package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Our Llama 3 against the PyTorch reference (reference/llama3_reference.py via make_llama3_fixtures.sh): logits,
 * loss and every gradient tensor to a relative error of 1e-5, then 10 AdamW steps (lr 1e-4, betas 0.9/0.999,
 * eps 1e-8, weight decay 0.01 on everything, no clipping) with losses within 1e-4 and grad norms within 1e-4
 * relative. Skipped, with the command to run, when the fixtures (which need PyTorch) are missing.
 */
class Llama3ParityTest {

    /** ||ours - ref|| / ||ref|| over count floats (ours and ref may be segments of different buffers). */
    static double relativeError(MemorySegment ours, long oursOffset, MemorySegment ref, long refOffset, long count) {
        double diff = 0, norm = 0;
        for (long i = 0; i < count; i++) {
            double r = ref.getAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT_UNALIGNED, refOffset + i);
            double o = Floats.get(ours, oursOffset + i);
            diff += (o - r) * (o - r);
            norm += r * r;
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    @Test
    void matchesThePyTorchReference() {
        Path checkpoint = Fixtures.require("llama3_small.bin");
        Path stateFile = Fixtures.require("llama3_small_debug_state.bin");
        try (var model = Llama3.fromCheckpoint(checkpoint);
             var state = Llama3DebugState.read(stateFile, model.config)) {
            var config = model.config;
            int B = state.batchSize(), T = state.seqLen();
            int[] x = state.inputs(), y = state.targets();

            float loss = model.forward(x, y, B, T);
            double logitError = relativeError(model.logits(), 0, state.logits(), 0, (long) B * T * config.vocabSize());
            System.out.printf("llama3 parity: logits rel err %.3e, loss %.6f vs %.6f%n", logitError, loss, state.loss());
            assertTrue(logitError <= 1e-5, "logits relative error " + logitError);
            assertEquals(state.loss(), loss, 1e-5, "loss");

            model.zeroGrad();
            model.backward();
            long[] offsets = config.parameterOffsets(), sizes = config.parameterSizes();
            for (int slot = 0; slot < 16; slot++) {
                double error = relativeError(model.gradients(), offsets[slot], state.grads(), offsets[slot], sizes[slot]);
                System.out.printf("  d%-9s rel err %.3e%n", Llama3Config.PARAMETER_NAMES[slot], error);
                assertTrue(error <= 1e-5, "gradient " + Llama3Config.PARAMETER_NAMES[slot] + " relative error " + error);
            }

            float[] expectedLosses = state.losses(), expectedNorms = state.gradNorms();
            for (int step = 0; step < expectedLosses.length; step++) {
                float stepLoss = model.forward(x, y, B, T);
                model.zeroGrad();
                model.backward();
                float norm = model.gradientNorm();
                model.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step + 1);
                System.out.printf("  step %d: loss %.6f (ref %.6f) grad norm %.6f (ref %.6f)%n",
                        step, stepLoss, expectedLosses[step], norm, expectedNorms[step]);
                assertEquals(expectedLosses[step], stepLoss, 1e-4, "loss at step " + step);
                assertEquals(expectedNorms[step], norm, 1e-4 * expectedNorms[step], "grad norm at step " + step);
            }
        }
    }

    /** Our seeded init draws exactly what the reference drew (torch-identical Mersenne Twister, same order). */
    @Test
    void randomInitEqualsTheReferenceInit() {
        Path checkpoint = Fixtures.require("llama3_small.bin");
        try (var reference = Llama3Checkpoint.read(checkpoint);
             var model = Llama3.randomInit(reference.config(), 42)) {
            float[] expected = reference.parametersToArray();
            float[] ours = model.parameters().toArray(Floats.FLOAT);
            assertArrayEquals(expected, ours);
        }
    }

    /** The bf16 file of the same weights gives nearly the same loss. */
    @Test
    void bf16CheckpointRunsCloseToFp32() {
        Path fp32 = Fixtures.require("llama3_small.bin");
        Path bf16 = Fixtures.require("llama3_small_bf16.bin");
        Path stateFile = Fixtures.require("llama3_small_debug_state.bin");
        try (var a = Llama3.fromCheckpoint(fp32); var b = Llama3.fromCheckpoint(bf16);
             var state = Llama3DebugState.read(stateFile, a.config)) {
            float lossA = a.forward(state.inputs(), state.targets(), state.batchSize(), state.seqLen());
            float lossB = b.forward(state.inputs(), state.targets(), state.batchSize(), state.seqLen());
            assertEquals(lossA, lossB, 1e-2);
        }
    }
}
