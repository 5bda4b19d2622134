package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.model.DebugState;
import dev.llmc4j.testing.Fixtures;
import java.lang.foreign.Arena;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Like llm.c's test_gpt2, against our PyTorch reference: logits, loss, all 16 gradients (relative error <= 1e-5
 * each) and the losses of 10 AdamW steps (within 1e-4), for a small config and for GPT-2 124M (d12), both from
 * seeded random init. The reference writes the fixtures: reference/make_fixtures.sh target/fixtures.
 */
class GPT2ParityTest {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"small", "d12"})
    void matchesPyTorch(String tag) {
        String make = "reference/make_fixtures.sh target/fixtures";
        var modelFile = Fixtures.require("gpt2_" + tag + ".bin", make);
        var stateFile = Fixtures.require("gpt2_" + tag + "_debug_state.bin", make);
        try (var model = GPT2.fromCheckpoint(modelFile);
                var arena = Arena.ofConfined()) {
            var state = DebugState.read(stateFile, model.config, arena);
            assertEquals(10, state.expectedLosses().length, "the reference records 10 step losses");
            var result = GPT2ParityCheck.run(model, state, System.out);
            for (var tensor : result.tensors()) {
                assertTrue(tensor.ok(), tag + " " + tensor.name() + ": relative error " + tensor.relativeError());
            }
            for (var step : result.steps()) {
                assertTrue(
                        step.ok(), tag + " step " + step.step() + ": loss " + step.loss() + " vs " + step.expected());
            }
            assertTrue(result.ok());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"small", "d12"})
    void randomInitIsBitIdenticalToPyTorch(String tag) {
        var modelFile = Fixtures.require("gpt2_" + tag + ".bin", "reference/make_fixtures.sh target/fixtures");
        try (var reference = GPT2.fromCheckpoint(modelFile);
                var ours = GPT2.randomInit(reference.config)) {
            long mismatch = reference.parameters().mismatch(ours.parameters());
            assertEquals(-1, mismatch, "first differing byte of the parameters");
        }
    }
}
