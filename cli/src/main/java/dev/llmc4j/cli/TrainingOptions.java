package dev.llmc4j.cli;

import dev.llmc4j.data.EvalFile;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import picocli.CommandLine.Option;

/**
 * The training flags every model's train command shares, with llm.c's short names (train_gpt2.cu) and readable
 * long ones: a picocli mixin of {@code ./llmc train} and {@code ./llmc llama3 train}. The data (-i, -j) and the
 * tokenizer stay with each command: their defaults depend on the model.
 */
public final class TrainingOptions {

    @Option(names = {"-b", "--batch-size"}, paramLabel = "B", defaultValue = "4", description = "micro-batch size (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Option(names = {"-t", "--seq-len"}, paramLabel = "T", defaultValue = "1024", description = "sequence length (default: ${DEFAULT-VALUE})")
    int seqLen;

    @Option(names = {"-d", "--total-batch"}, paramLabel = "TOKENS", defaultValue = "-1",
            description = "tokens per optimizer step, a multiple of B*T: gradient accumulation (default: B*T)")
    int totalBatchTokens;

    @Option(names = {"-x", "--steps"}, paramLabel = "N", defaultValue = "-1", description = "optimizer steps (default: one epoch)")
    int maxSteps;

    @Option(names = {"-l", "--lr"}, paramLabel = "LR", defaultValue = "3e-4", description = "peak learning rate (default: ${DEFAULT-VALUE})")
    float learningRate;

    @Option(names = {"-u", "--warmup"}, paramLabel = "STEPS", defaultValue = "0", description = "warmup steps (default: ${DEFAULT-VALUE})")
    int warmupSteps;

    @Option(names = {"-q", "--final-lr-fraction"}, paramLabel = "F", defaultValue = "1.0",
            description = "final learning rate as a fraction of the peak (default: ${DEFAULT-VALUE})")
    float finalFraction;

    @Option(names = {"-k", "--schedule"}, paramLabel = "NAME", defaultValue = "cosine",
            description = "cosine, linear, constant or wsd (default: ${DEFAULT-VALUE})")
    String schedule;

    @Option(names = {"-c", "--weight-decay"}, paramLabel = "WD", defaultValue = "0.0",
            description = "AdamW weight decay, on 2-D tensors only (default: ${DEFAULT-VALUE})")
    float weightDecay;

    @Option(names = {"-v", "--val-every"}, paramLabel = "N", defaultValue = "20", description = "val loss every N steps (default: ${DEFAULT-VALUE})")
    int valEvery;

    @Option(names = {"-m", "--val-batches"}, paramLabel = "N", defaultValue = "20", description = "val batches, -1 for all (default: ${DEFAULT-VALUE})")
    int valBatches;

    @Option(names = {"-h", "--hellaswag"}, paramLabel = "0|1", defaultValue = "0",
            description = "1: HellaSwag accuracy every -v steps (not at 0) and at the end, logged as s:N eval: (needs -b >= 4)")
    int hellaswag;

    @Option(names = "--hellaswag-file", paramLabel = "FILE", defaultValue = "data/hellaswag/hellaswag_val.bin",
            description = "llm.c's HellaSwag eval file, from ./llmc data hellaswag (default: ${DEFAULT-VALUE})")
    Path hellaswagFile;

    // -h is llm.c's HellaSwag switch, so the train commands' help is --help alone
    @Option(names = "--help", usageHelp = true, description = "Show this help message and exit.")
    boolean help;

    @Option(names = {"-s", "--sample-every"}, paramLabel = "N", defaultValue = "20", description = "sample every N steps (default: ${DEFAULT-VALUE})")
    int sampleEvery;

    @Option(names = {"-g", "--gen-tokens"}, paramLabel = "N", defaultValue = "64", description = "tokens per sample (default: ${DEFAULT-VALUE})")
    int genTokens;

    @Option(names = {"-a", "--overfit-single-batch"}, paramLabel = "0|1", defaultValue = "0",
            description = "1: train on one val batch over and over (a debugging aid)")
    int overfit;

    @Option(names = {"-o", "--output"}, paramLabel = "DIR",
            description = "output folder: main.log, loss.png and loss.svg, checkpoints")
    Path outputDir;

    @Option(names = {"-n", "--checkpoint-every"}, paramLabel = "N", defaultValue = "0",
            description = "checkpoint every N steps and at the end (0: never)")
    int checkpointEvery;

    @Option(names = {"-nk", "--checkpoints-keep"}, paramLabel = "N", defaultValue = "0", description = "keep the N most recent checkpoints (0: all)")
    int checkpointsKeep;

    @Option(names = {"-nm", "--major-checkpoint-every"}, paramLabel = "N", defaultValue = "0",
            description = "never delete checkpoints at multiples of N")
    int majorCheckpointEvery;

    @Option(names = {"-y", "--resume"}, paramLabel = "0|1", defaultValue = "0", description = "1: resume from the latest checkpoint in -o")
    int resume;

    @Option(names = {"-sl", "--skip-loss-z"}, paramLabel = "Z", defaultValue = "0",
            description = "skip the update when the loss z-score exceeds Z (0: off)")
    float skipLossZ;

    @Option(names = {"-sg", "--skip-norm-z"}, paramLabel = "Z", defaultValue = "0",
            description = "skip the update when the gradient norm z-score exceeds Z (0: off)")
    float skipNormZ;

    /** The run these flags describe, on the given data; gradient clipping at 1.0 and one process, as llm.c's CPU run. */
    TrainingConfig toConfig(String trainPattern, String valPattern, Path tokenizerFile) {
        return toConfig(trainPattern, valPattern, tokenizerFile, 1, 0);
    }

    /** The config of process {@code rank} of {@code numProcesses} (mpirun). */
    TrainingConfig toConfig(String trainPattern, String valPattern, Path tokenizerFile, int numProcesses, int rank) {
        return new TrainingConfig(trainPattern, valPattern, batchSize, seqLen, totalBatchTokens, maxSteps, learningRate,
                warmupSteps, finalFraction, schedule, weightDecay, 1.0f, valEvery, valBatches, sampleEvery, genTokens,
                overfit != 0, outputDir, checkpointEvery, checkpointsKeep, majorCheckpointEvery, resume != 0,
                skipLossZ, skipNormZ, tokenizerFile, numProcesses, rank);
    }

    /**
     * -h 1: hands the trainer the examples of --hellaswag-file. As llm.c, a missing file is not an error: one line
     * says so and how to make it, and the run goes on without the eval.
     */
    void attachHellaSwag(Trainer trainer, PrintStream out) {
        if (hellaswag == 0) return;
        if (!Files.isRegularFile(hellaswagFile)) {
            out.println("HellaSwag eval not found at " + hellaswagFile + ", skipping its evaluation");
            out.println("You can run ./llmc data hellaswag --input hellaswag_val.jsonl to make it and use it with -h 1.");
            return;
        }
        trainer.evaluateHellaSwag(EvalFile.read(hellaswagFile));
    }

    boolean resume() {
        return resume != 0;
    }
}
