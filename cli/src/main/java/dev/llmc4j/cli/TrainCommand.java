package dev.llmc4j.cli;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ./llmc train}: llm.c's trainer, with its short flags and readable long names. */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Train GPT-2 (llm.c's train_gpt2 loop): AdamW, gradient accumulation, clipping at norm 1.0,",
            "LR schedules, validation, sampling, checkpoints and exact resume. Prepare data first: ./llmc data tinyshakespeare"})
public final class TrainCommand implements Callable<Integer> {

    @Mixin
    ModelOptions model;

    @Option(names = {"-i", "--train-data"}, paramLabel = "GLOB", description = "train shards (default: ${DEFAULT-VALUE})",
            defaultValue = "data/tinyshakespeare/tiny_shakespeare_train.bin")
    String trainPattern;

    @Option(names = {"-j", "--val-data"}, paramLabel = "GLOB", description = "val shards (default: ${DEFAULT-VALUE})",
            defaultValue = "data/tinyshakespeare/tiny_shakespeare_val.bin")
    String valPattern;

    @Mixin
    TrainingOptions training;

    @Option(names = "--tokenizer", paramLabel = "FILE",
            description = "gpt2_tokenizer.bin for printing samples (default: next to the train data)")
    Path tokenizer;

    @Override
    public Integer call() {
        var config = trainingConfig();
        try (var gpt2 = buildModel(config)) {
            System.out.printf("[GPT-2] %s, %,d parameters%n", gpt2.config, gpt2.numParameters());
            var trainer = new Trainer(gpt2, config, System.out);
            var result = trainer.run();
            LossChart.writeIfOutput(config.outputDir(), result, "GPT-2 " + model.describe());
        }
        return 0;
    }

    TrainingConfig trainingConfig() {
        Path tokenizerFile = tokenizer != null ? tokenizer : defaultTokenizer(trainPattern);
        checkDataExists(trainPattern, "train");
        checkDataExists(valPattern, "val");
        return training.toConfig(trainPattern, valPattern, tokenizerFile);
    }

    GPT2 buildModel(TrainingConfig config) {
        if (config.resume()) {
            return GPT2.fromCheckpoint(resumeModelFile(config.outputDir()));
        }
        return model.isCheckpoint() ? GPT2.fromCheckpoint(Path.of(model.model)) : GPT2.randomInit(model.config());
    }

    /** The model file of the latest completed checkpoint in the output folder, for -y 1. */
    static Path resumeModelFile(Path outputDir) {
        if (outputDir == null) throw new LlmcException("resume (-y 1) needs -o, the folder with the checkpoints");
        Path latest = Trainer.resumeModelFile(outputDir);
        if (latest == null) throw new LlmcException("resume (-y 1): no completed checkpoint (DONE_########) in " + outputDir);
        return latest;
    }

    static Path defaultTokenizer(String pattern) {
        Path parent = Path.of(pattern).toAbsolutePath().getParent();
        return parent == null ? Path.of("gpt2_tokenizer.bin") : parent.resolve("gpt2_tokenizer.bin");
    }

    // a friendlier message than the loader's when the default tinyshakespeare files were never prepared
    private static void checkDataExists(String pattern, String what) {
        if (pattern.contains("*") || pattern.contains("?")) return;
        if (!Files.exists(Path.of(pattern)))
            throw new LlmcException("no %s data at %s: prepare it with ./llmc data tinyshakespeare (or give -i/-j)".formatted(what, pattern));
    }
}
