package dev.llmc4j.cli;

import dev.llmc4j.model.GPT2Import;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.OptionalInt;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code llmc import}: convert other projects' weights into llm.c checkpoints. */
@Command(
        name = "import",
        mixinStandardHelpOptions = true,
        description = "Convert pretrained weights from other formats into llm.c checkpoints.",
        subcommands = {ImportCommand.Gpt2Command.class})
public final class ImportCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(
            name = "gpt2",
            mixinStandardHelpOptions = true,
            description = {
                "Convert a Hugging Face GPT-2 model.safetensors into an llm.c checkpoint (gpt2_124M.bin), "
                        + "byte-identical to the one llm.c's train_gpt2.py writes from the same weights.",
                "",
                "V, maxT, C and L come from the tensor shapes. The head count is --heads if given, else n_head "
                        + "from a config.json next to the file, else C / 64 (every released GPT-2 size has head size 64)."
            })
    static final class Gpt2Command implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(
                names = "--from",
                required = true,
                paramLabel = "FILE",
                description = "model.safetensors, or the folder holding it (a Hugging Face snapshot)")
        Path from;

        @Option(
                names = {"-o", "--output"},
                required = true,
                paramLabel = "FILE",
                description = "checkpoint to write")
        Path output;

        @Range(min = 1, max = 65536)
        @Option(names = "--heads", paramLabel = "N", description = "number of attention heads (default: see above)")
        Integer heads;

        @Option(names = "--bf16", description = "write version 5 (bf16) instead of version 3 (fp32)")
        boolean bf16;

        @Override
        public Integer call() {
            Path file = Files.isDirectory(from) ? from.resolve("model.safetensors") : from;
            int version = bf16 ? 5 : 3;
            var summary = GPT2Import.importCheckpoint(
                    file, output, heads == null ? OptionalInt.empty() : OptionalInt.of(heads), version);
            var config = summary.config();
            spec.commandLine()
                    .getOut()
                    .printf(
                            "wrote %s: GPT-2 %s, %,d parameters, checkpoint version %d (%s); heads from %s%n",
                            output,
                            config,
                            config.numParameters(),
                            version,
                            bf16 ? "bf16" : "fp32",
                            summary.headsSource());
            return 0;
        }
    }
}
