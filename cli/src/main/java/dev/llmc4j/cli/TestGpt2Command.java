package dev.llmc4j.cli;

import dev.llmc4j.format.DebugState;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2ParityCheck;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ./llmc test-gpt2}: llm.c's test_gpt2 on any model and debug state. */
@Command(name = "test-gpt2", mixinStandardHelpOptions = true,
        description = {"Check GPT-2 against a debug state (llm.c's test_gpt2, stricter): logits, loss, all 16 gradients",
            "(relative error <= 1e-5) and the losses of the training steps (within 1e-4) when the state records them.",
            "Exit code 0 when everything matches, 1 otherwise."})
public final class TestGpt2Command implements Callable<Integer> {

    @Option(names = "--model", required = true, paramLabel = "FILE", description = "llm.c checkpoint (v3 fp32 or v5 bf16)")
    Path modelFile;

    @Option(names = "--state", required = true, paramLabel = "FILE", description = "llm.c debug state (gpt2_124M_debug_state.bin)")
    Path stateFile;

    @Override
    public Integer call() {
        try (var model = GPT2.fromCheckpoint(modelFile); var arena = Arena.ofConfined()) {
            var state = DebugState.read(stateFile, model.config, arena);
            var result = GPT2ParityCheck.run(model, state, System.out);
            return result.ok() ? 0 : 1;
        }
    }
}
