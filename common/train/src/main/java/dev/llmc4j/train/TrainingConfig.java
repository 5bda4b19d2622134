package dev.llmc4j.train;

import java.nio.file.Path;

/**
 * Everything that shapes a training run, with llm.c's flag letters and defaults in the comments (train_gpt2.cu).
 *
 * @param trainPattern        -i  train shards (glob)
 * @param valPattern          -j  val shards (glob)
 * @param batchSize           -b  micro-batch B (4)
 * @param seqLen              -t  sequence length T (1024 in llm.c; ≤ the model's context)
 * @param totalBatchTokens    -d  tokens per optimizer step; gradient accumulation = d / (B·T·processes) (-1: B·T·processes)
 * @param maxSteps            -x  optimizer steps (-1: one epoch of the train data)
 * @param learningRate        -l  peak learning rate (3e-4)
 * @param warmupSteps         -u  linear warmup steps (0)
 * @param finalLearningRateFraction -q final learning rate as a fraction of the peak (1.0)
 * @param schedule            -k  cosine | linear | constant | wsd
 * @param weightDecay         -c  AdamW weight decay on 2-D tensors (0.0)
 * @param gradClip            global gradient-norm clip (1.0, fixed in llm.c)
 * @param valEvery            -v  val loss every N steps (20)
 * @param valMaxSteps         -m  val batches (20; -1: the whole val set)
 * @param sampleEvery         -s  sample every N steps (20)
 * @param genTokens           -g  tokens to sample (64)
 * @param overfitSingleBatch  -a  train on one batch of the val data over and over (a debugging aid)
 * @param outputDir           -o  log and checkpoints (null: none)
 * @param checkpointEvery     -n  write a checkpoint every N steps and at the last step (0: never)
 * @param checkpointsToKeep   -nk keep only the most recent N checkpoints (0: keep all)
 * @param majorCheckpointEvery -nm checkpoints at multiples of this step are never deleted (0: none)
 * @param resume              -y  continue from the latest checkpoint in the output dir
 * @param skipLossZ           -sl skip the update when the loss z-score exceeds this (0: off)
 * @param skipNormZ           -sg skip the update when the gradient-norm z-score exceeds this (0: off)
 * @param tokenizerFile       decodes samples (gpt2_tokenizer.bin); missing: tokens are printed as ids
 * @param numProcesses        processes training together (1 without MPI)
 * @param rank                this process
 */
public record TrainingConfig(
        String trainPattern,
        String valPattern,
        int batchSize,
        int seqLen,
        int totalBatchTokens,
        int maxSteps,
        float learningRate,
        int warmupSteps,
        float finalLearningRateFraction,
        String schedule,
        float weightDecay,
        float gradClip,
        int valEvery,
        int valMaxSteps,
        int sampleEvery,
        int genTokens,
        boolean overfitSingleBatch,
        Path outputDir,
        int checkpointEvery,
        int checkpointsToKeep,
        int majorCheckpointEvery,
        boolean resume,
        float skipLossZ,
        float skipNormZ,
        Path tokenizerFile,
        int numProcesses,
        int rank) {

    /** AdamW's fixed hyper-parameters in llm.c's trainer. */
    public static final float BETA1 = 0.9f, BETA2 = 0.95f, EPS = 1e-8f;
}
