package dev.llmc4j.cli;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.MemoryEstimate;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.function.BiFunction;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * The memory estimate in {@code --help}'s text for -b and -t of the train commands, computed (not written down)
 * for each command's default model, so that a user sees what B and T cost before choosing them.
 */
final class MemoryEstimateHelp {
    private MemoryEstimateHelp() {}

    static void addTo(CommandLine root) {
        // GPT-2: -e d12, -t 1024, -r 1, samples on (the defaults of ./llmc train)
        GPT2Config d12 = GPT2Config.fromDescriptor("d12");
        addTo(
                root.getSubcommands().get("train"),
                "d12, -r 1",
                (b, t) -> GPT2.memoryEstimate(d12, b, t, 1, 1, 0, true).build().totalBytes());
        // Llama 3: the shape options' defaults
        var llama = new Llama3Command.Shape();
        new CommandLine(llama).parseArgs(); // fills in the defaults
        var config = llama.config();
        addTo(
                root.getSubcommands().get("llama3").getSubcommands().get("train"),
                "the default shape",
                (b, t) -> Llama3.memoryEstimate(config, b, t, 1, 0, 64).build().totalBytes());
    }

    /** Rebuilds the command's options in their order, -b and -t with the estimate appended to their text. */
    private static void addTo(CommandLine command, String model, BiFunction<Integer, Integer, Long> bytes) {
        var spec = command.getCommandSpec();
        long base = bytes.apply(0, 1024), perSequence = bytes.apply(1, 1024) - base;
        String batch = "memory per rank (%s, T=1024): %s + %s per sequence of B; a run that does not fit is refused"
                .formatted(model, MemoryEstimate.format(base), MemoryEstimate.format(perSequence));
        String length = "memory per rank (%s, B=4): %s at T=256, %s at T=1024 (attention grows with T^2)"
                .formatted(
                        model, MemoryEstimate.format(bytes.apply(4, 256)), MemoryEstimate.format(bytes.apply(4, 1024)));
        var options = new ArrayList<>(spec.options());
        options.forEach(spec::remove);
        for (OptionSpec option : options) {
            String extra = switch (option.longestName()) {
                case "--batch-size" -> batch;
                case "--seq-len" -> length;
                default -> null;
            };
            if (extra == null) {
                spec.addOption(option);
            } else {
                var text = new ArrayList<>(Arrays.asList(option.description()));
                text.add(extra);
                spec.addOption(option.toBuilder()
                        .description(text.toArray(String[]::new))
                        .build());
            }
        }
    }
}
