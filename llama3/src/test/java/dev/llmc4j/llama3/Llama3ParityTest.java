package dev.llmc4j.llama3;

import dev.llmc4j.testing.Fixtures;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/**
 * Our Llama 3 against the PyTorch reference (reference/llama3_reference.py via make_llama3_fixtures.sh): logits,
 * loss and every gradient tensor to a relative error of 1e-5, then 10 AdamW steps (lr 1e-4, betas 0.9/0.999,
 * eps 1e-8, weight decay 0.01 on everything, no clipping) with losses within 1e-4 and grad norms within 1e-4
 * relative. Skipped, with the command to run, when the fixtures (which need PyTorch) are missing.
 */
class Llama3ParityTest {
    static final String MAKE_FIXTURES = "reference/make_llama3_fixtures.sh target/fixtures";


    @Test
    void matchesThePyTorchReference() {
        Path checkpoint = Fixtures.require("llama3_small.bin", MAKE_FIXTURES);
        Path stateFile = Fixtures.require("llama3_small_debug_state.bin", MAKE_FIXTURES);
        try (var model = Llama3.fromCheckpoint(checkpoint);
             var state = Llama3DebugState.read(stateFile, model.config)) {
            var result = Llama3ParityCheck.run(model, state, System.out);
            assertTrue(result.logitError() <= 1e-5, "logits relative error " + result.logitError());
            for (int slot = 0; slot < 16; slot++) {
                assertTrue(result.gradientErrors()[slot] <= 1e-5,
                        "gradient " + Llama3Config.PARAMETER_NAMES[slot] + " relative error " + result.gradientErrors()[slot]);
            }
            float[] expectedLosses = state.losses(), expectedNorms = state.gradNorms();
            assertEquals(10, expectedLosses.length);
            for (int step = 0; step < expectedLosses.length; step++) {
                assertEquals(expectedLosses[step], result.losses()[step], 1e-4, "loss at step " + step);
                assertEquals(expectedNorms[step], result.gradNorms()[step], 1e-4 * expectedNorms[step], "grad norm at step " + step);
            }
            assertTrue(result.ok());
        }
    }

    /** Our seeded init draws exactly what the reference drew (torch-identical Mersenne Twister, same order). */
    @Test
    void randomInitEqualsTheReferenceInit() {
        Path checkpoint = Fixtures.require("llama3_small.bin", MAKE_FIXTURES);
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
        Path fp32 = Fixtures.require("llama3_small.bin", MAKE_FIXTURES);
        Path bf16 = Fixtures.require("llama3_small_bf16.bin", MAKE_FIXTURES);
        Path stateFile = Fixtures.require("llama3_small_debug_state.bin", MAKE_FIXTURES);
        try (var a = Llama3.fromCheckpoint(fp32); var b = Llama3.fromCheckpoint(bf16);
             var state = Llama3DebugState.read(stateFile, a.config)) {
            float lossA = a.forward(state.inputs(), state.targets(), state.batchSize(), state.seqLen());
            float lossB = b.forward(state.inputs(), state.targets(), state.batchSize(), state.seqLen());
            assertEquals(lossA, lossB, 1e-2);
        }
    }
}
