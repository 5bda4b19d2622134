package dev.llmc4j.cli;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.gpt2.GPT2ParityCheck;
import dev.llmc4j.gpt2.cuda.CudaParityCheck;
import dev.llmc4j.gpt2.cuda.GPT2CudaModel;
import dev.llmc4j.model.DebugState;
import java.lang.foreign.Arena;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ./llmc test-gpt2}: llm.c's test_gpt2 on any model and debug state. */
@Command(
        name = "test-gpt2",
        mixinStandardHelpOptions = true,
        description = {
            "Check GPT-2 against a debug state (llm.c's test_gpt2, stricter): logits, loss, all 16 gradients",
            "(relative error <= 1e-5) and the losses of the training steps (within 1e-4) when the state records them.",
            "With --device cuda: llm.c's test_gpt2.cu tolerances for bf16/fp16 (logits within 25, gradients within",
            "thr + 0.079|ref|, losses within 0.05) and the CPU rule for --precision fp32.",
            "Exit code 0 when everything matches, 1 otherwise."
        })
public final class TestGpt2Command implements Callable<Integer> {

    @Option(
            names = "--model",
            required = true,
            paramLabel = "FILE",
            description = "llm.c checkpoint (v3 fp32 or v5 bf16)")
    Path modelFile;

    @Option(
            names = "--state",
            required = true,
            paramLabel = "FILE",
            description = "llm.c debug state (gpt2_124M_debug_state.bin)")
    Path stateFile;

    @Mixin
    DeviceOptions device;

    @Override
    public Integer call() {
        return device.isCuda() ? callCuda() : callCpu();
    }

    private int callCuda() {
        // TF32 off: an fp32 check must be fp32 all the way
        var options = device.cudaOptions(true, false);
        try (var model = GPT2CudaModel.fromCheckpoint(modelFile, options);
                var arena = Arena.ofConfined()) {
            var state = DebugState.read(stateFile, model.config(), arena);
            var result = CudaParityCheck.run(model.gpu(), state, System.out);
            return result.ok() ? 0 : 1;
        }
    }

    private int callCpu() {
        device.checkCpu();
        try (var model = GPT2.fromCheckpoint(modelFile, GPT2Kernels.of(Llmc.kernels()));
                var arena = Arena.ofConfined()) {
            var state = DebugState.read(stateFile, model.config, arena);
            var result = GPT2ParityCheck.run(model, state, System.out);
            return result.ok() ? 0 : 1;
        }
    }
}
