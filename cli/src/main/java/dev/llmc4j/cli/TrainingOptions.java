package dev.llmc4j.cli;

import dev.llmc4j.data.EvalFile;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The training flags every model's train command shares, with llm.c's short names (train_gpt2.cu) and readable
 * long ones: a picocli mixin of {@code ./llmc train} and {@code ./llmc llama3 train}. The data (-i, -j) and the
 * tokenizer stay with each command: their defaults depend on the model.
 */
public final class TrainingOptions implements OptionChecks.CrossCheck {

    /** Largest -b or -t accepted; their product is checked too ({@link #MAX_TOKENS_PER_MICRO_BATCH}). */
    static final int MAX_B_OR_T = 1 << 20;
    /** Largest B*T: index arithmetic stays far from int overflow; the memory check refuses far less anyway. */
    static final long MAX_TOKENS_PER_MICRO_BATCH = 1L << 28;

    @Range(min = 1, max = MAX_B_OR_T)
    @Option(
            names = {"-b", "--batch-size"},
            paramLabel = "B",
            defaultValue = "4",
            description = "micro-batch size (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Range(min = 1, max = MAX_B_OR_T)
    @Option(
            names = {"-t", "--seq-len"},
            paramLabel = "T",
            defaultValue = "1024",
            description = "sequence length (default: ${DEFAULT-VALUE})")
    int seqLen;

    @Range(min = 1, max = Integer.MAX_VALUE, also = -1)
    @Option(
            names = {"-d", "--total-batch"},
            paramLabel = "TOKENS",
            defaultValue = "-1",
            description = "tokens per optimizer step, a multiple of B*T: gradient accumulation (default: B*T)")
    int totalBatchTokens;

    @Range(min = 1, max = Integer.MAX_VALUE, also = -1)
    @Option(
            names = {"-x", "--steps"},
            paramLabel = "N",
            defaultValue = "-1",
            description = "optimizer steps (default: one epoch)")
    int maxSteps;

    @Range(min = 0, max = 100)
    @Option(
            names = {"-l", "--lr"},
            paramLabel = "LR",
            defaultValue = "3e-4",
            description = "peak learning rate (default: ${DEFAULT-VALUE})")
    float learningRate;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = {"-u", "--warmup"},
            paramLabel = "STEPS",
            defaultValue = "0",
            description = "warmup steps (default: ${DEFAULT-VALUE})")
    int warmupSteps;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-q", "--final-lr-fraction"},
            paramLabel = "F",
            defaultValue = "1.0",
            description = "final learning rate as a fraction of the peak (default: ${DEFAULT-VALUE})")
    float finalFraction;

    @Option(
            names = {"-k", "--schedule"},
            paramLabel = "NAME",
            defaultValue = "cosine",
            description = "cosine, linear, constant or wsd (default: ${DEFAULT-VALUE})")
    String schedule;

    @Range(min = 0, max = 100)
    @Option(
            names = {"-c", "--weight-decay"},
            paramLabel = "WD",
            defaultValue = "0.0",
            description = "AdamW weight decay, on 2-D tensors only (default: ${DEFAULT-VALUE})")
    float weightDecay;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = {"-v", "--val-every"},
            paramLabel = "N",
            defaultValue = "20",
            description = "val loss every N steps (default: ${DEFAULT-VALUE})")
    int valEvery;

    @Range(min = 0, max = Integer.MAX_VALUE, also = -1)
    @Option(
            names = {"-m", "--val-batches"},
            paramLabel = "N",
            defaultValue = "20",
            description = "val batches, -1 for all (default: ${DEFAULT-VALUE})")
    int valBatches;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-h", "--hellaswag"},
            paramLabel = "0|1",
            defaultValue = "0",
            description =
                    "1: HellaSwag accuracy every -v steps (not at 0) and at the end, logged as s:N eval: (needs -b >= 4)")
    int hellaswag;

    @Option(
            names = "--hellaswag-file",
            paramLabel = "FILE",
            defaultValue = "data/hellaswag/hellaswag_val.bin",
            description = "llm.c's HellaSwag eval file, from ./llmc data hellaswag (default: ${DEFAULT-VALUE})")
    Path hellaswagFile;

    // -h is llm.c's HellaSwag switch, so the train commands' help is --help alone
    @Option(names = "--help", usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = {"-s", "--sample-every"},
            paramLabel = "N",
            defaultValue = "20",
            description = "sample every N steps (default: ${DEFAULT-VALUE})")
    int sampleEvery;

    @Range(min = 0, max = 1_000_000)
    @Option(
            names = {"-g", "--gen-tokens"},
            paramLabel = "N",
            defaultValue = "64",
            description = "tokens per sample (default: ${DEFAULT-VALUE})")
    int genTokens;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-a", "--overfit-single-batch"},
            paramLabel = "0|1",
            defaultValue = "0",
            description = "1: train on one val batch over and over (a debugging aid)")
    int overfit;

    @Option(
            names = {"-o", "--output"},
            paramLabel = "DIR",
            description = "output folder: main.log, loss.png and loss.svg, checkpoints")
    Path outputDir;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = {"-n", "--checkpoint-every"},
            paramLabel = "N",
            defaultValue = "0",
            description = "checkpoint every N steps and at the end (0: never)")
    int checkpointEvery;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = {"-nk", "--checkpoints-keep"},
            paramLabel = "N",
            defaultValue = "0",
            description = "keep the N most recent checkpoints (0: all)")
    int checkpointsKeep;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = {"-nm", "--major-checkpoint-every"},
            paramLabel = "N",
            defaultValue = "0",
            description = "never delete checkpoints at multiples of N")
    int majorCheckpointEvery;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-y", "--resume"},
            paramLabel = "0|1",
            defaultValue = "0",
            description = "1: resume from the latest checkpoint in -o")
    int resume;

    @Range(min = 0, max = 1e6)
    @Option(
            names = {"-sl", "--skip-loss-z"},
            paramLabel = "Z",
            defaultValue = "0",
            description = "skip the update when the loss z-score exceeds Z (0: off)")
    float skipLossZ;

    @Range(min = 0, max = 1e6)
    @Option(
            names = {"-sg", "--skip-norm-z"},
            paramLabel = "Z",
            defaultValue = "0",
            description = "skip the update when the gradient norm z-score exceeds Z (0: off)")
    float skipNormZ;

    @Override
    public void checkTogether() {
        long tokens = (long) batchSize * seqLen;
        if (tokens > MAX_TOKENS_PER_MICRO_BATCH)
            throw new LlmcException("-b * -t: expected at most %d tokens per micro-batch, found %d * %d = %d"
                    .formatted(MAX_TOKENS_PER_MICRO_BATCH, batchSize, seqLen, tokens));
        if (totalBatchTokens > 0 && totalBatchTokens % tokens != 0)
            throw new LlmcException("-d (--total-batch): expected a multiple of B*T = %d * %d = %d, found %d"
                    .formatted(batchSize, seqLen, tokens, totalBatchTokens));
    }

    /** The run these flags describe, on the given data; gradient clipping at 1.0 and one process, as llm.c's CPU run. */
    TrainingConfig toConfig(String trainPattern, String valPattern, Path tokenizerFile) {
        return toConfig(trainPattern, valPattern, tokenizerFile, 1, 0);
    }

    /** The config of process {@code rank} of {@code numProcesses} (mpirun). */
    TrainingConfig toConfig(String trainPattern, String valPattern, Path tokenizerFile, int numProcesses, int rank) {
        return new TrainingConfig(
                trainPattern,
                valPattern,
                batchSize,
                seqLen,
                totalBatchTokens,
                maxSteps,
                learningRate,
                warmupSteps,
                finalFraction,
                schedule,
                weightDecay,
                1.0f,
                valEvery,
                valBatches,
                sampleEvery,
                genTokens,
                overfit != 0,
                outputDir,
                checkpointEvery,
                checkpointsKeep,
                majorCheckpointEvery,
                resume != 0,
                skipLossZ,
                skipNormZ,
                tokenizerFile,
                numProcesses,
                rank);
    }

    /**
     * -h 1: hands the trainer the examples of --hellaswag-file. As llm.c, a missing file is not an error: one line
     * says so and how to make it, and the run goes on without the eval.
     */
    void attachHellaSwag(Trainer trainer, PrintStream out) {
        if (hellaswag == 0) return;
        if (!Files.isRegularFile(hellaswagFile)) {
            out.println("HellaSwag eval not found at " + hellaswagFile + ", skipping its evaluation");
            out.println(
                    "You can run ./llmc data hellaswag --input hellaswag_val.jsonl to make it and use it with -h 1.");
            return;
        }
        trainer.evaluateHellaSwag(EvalFile.read(hellaswagFile));
    }

    boolean resume() {
        return resume != 0;
    }
}
