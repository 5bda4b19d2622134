package dev.llmc4j.cli;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.util.LlmcException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ./llmc init}: writes a randomly initialised GPT-2 checkpoint, bit-identical to PyTorch's seed-42 init. */
@Command(
        name = "init",
        mixinStandardHelpOptions = true,
        description = "Write a GPT-2 checkpoint from llm.c's random init (identical to PyTorch's with seed 42).")
public final class InitCommand implements Callable<Integer> {

    @Mixin
    ModelOptions model;

    @Option(
            names = {"-o", "--output"},
            required = true,
            paramLabel = "FILE",
            description = "checkpoint to write")
    Path output;

    @Option(names = "--bf16", description = "write version 5 (bf16) instead of version 3 (fp32)")
    boolean bf16;

    @Override
    public Integer call() {
        if (model.isCheckpoint())
            throw new LlmcException(
                    "init makes a new model: give a descriptor (-e d12) or --layers/--heads/--channels, not a checkpoint file");
        var config = model.config();
        try (var gpt2 = GPT2.randomInit(config)) {
            gpt2.save(output, bf16 ? 5 : 3);
        }
        System.out.printf(
                "wrote %s: GPT-2 %s, %,d parameters, checkpoint version %d (%s)%n",
                output, config, config.numParameters(), bf16 ? 5 : 3, bf16 ? "bf16" : "fp32");
        return 0;
    }
}
