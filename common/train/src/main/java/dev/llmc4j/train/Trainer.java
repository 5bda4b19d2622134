package dev.llmc4j.train;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.data.EvalFile;
import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.SingleProcess;
import dev.llmc4j.format.TokenizerFile;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;
import java.util.function.IntFunction;

/**
 * llm.c's training loop (train_gpt2.cu's main), for any {@link TrainableModel}:
 * <pre>
 * for step = start .. numSteps (inclusive):
 *     val loss          every valEvery steps and at the last step
 *     HellaSwag         with -h 1: every valEvery steps (not at 0) and at the last step
 *     sample            every sampleEvery steps (not at 0) and at the last step
 *     checkpoint        every checkpointEvery steps (not at 0, nor at the step just resumed) and at the last step
 *     stop              at the last step
 *     one optimizer step: zero the gradients, then for each of gradAccum micro-batches forward and backward;
 *                       average the gradients over the processes; clip the global gradient norm to 1;
 *                       AdamW with the scheduled learning rate
 * </pre>
 * With several processes (mpirun) each reads its own slice of every batch and {@link DataParallel} averages the
 * gradients and losses; rank 0 alone writes the log, the samples and the model file, every rank its state file.
 */
public final class Trainer {

    /** One point of the loss curves. */
    public record LossPoint(int step, float loss) {}

    /** What a run produced: the loss curves and the average step time. */
    public record Result(
            List<LossPoint> trainLosses, List<LossPoint> valLosses, double averageStepMillis, int lastStep) {}

    /**
     * How samples begin and print, which depends on the model's tokenizer: llm.c starts every sample from the
     * tokenizer's EOT token (GPT-2's {@code <|endoftext|>}, Llama 3's {@code <|begin_of_text|>}) and prints each
     * new token's bytes.
     *
     * @param tokenBytes a token's bytes to print, or null to print token ids
     */
    public record SampleText(int startToken, IntFunction<byte[]> tokenBytes) {

        /** GPT-2: from an llm.c tokenizer file, or EOT 50256 and ids when there is none. */
        public static SampleText of(Optional<TokenizerFile> tokenizer) {
            return tokenizer
                    .map(t -> new SampleText(t.eotToken(), t::printable))
                    .orElse(new SampleText(50256, null));
        }
    }

    private final TrainableModel model;
    private final TrainingConfig config;
    private final PrintStream out;
    private final DataLoader trainLoader;
    private final DataLoader valLoader;
    private final int gradAccumSteps;
    private final int numSteps;
    private final int valBatches;
    private final LearningRateSchedule schedule;
    private final SampleText sampleText;
    private final Path logFile;
    private final Communicator comm;
    private final DataParallel parallel;
    private final List<TrainingListener> listeners = new ArrayList<>();
    private List<EvalFile.Example> hellaSwag; // -h 1: the eval file's examples; null: off

    /** A trainer whose samples use the llm.c tokenizer file of {@code config.tokenizerFile()} (GPT-2). */
    public Trainer(TrainableModel model, TrainingConfig config, PrintStream out) {
        this(model, config, out, null, SingleProcess.INSTANCE, 0);
    }

    /** @param sampleText how samples start and print; null: from {@code config.tokenizerFile()} as for GPT-2 */
    public Trainer(TrainableModel model, TrainingConfig config, PrintStream out, SampleText sampleText) {
        this(model, config, out, sampleText, SingleProcess.INSTANCE, 0);
    }

    /** A process of a data-parallel GPT-2 run: comm connects the config.numProcesses() processes; zeroStage is -z. */
    public Trainer(TrainableModel model, TrainingConfig config, PrintStream out, Communicator comm, int zeroStage) {
        this(model, config, out, null, comm, zeroStage);
    }

    /** Any model's sample text, one process of a data-parallel run. */
    public Trainer(
            TrainableModel model,
            TrainingConfig config,
            PrintStream out,
            SampleText sampleText,
            Communicator comm,
            int zeroStage) {
        this(model, config, out, sampleText, comm, zeroStage, null);
    }

    /**
     * The general case.
     *
     * @param memory what the caller estimated (and checked) this rank holds, before building the model: the run
     *               header shows it as "memory per rank"; null shows the parameters' state only
     */
    public Trainer(
            TrainableModel model,
            TrainingConfig config,
            PrintStream out,
            SampleText sampleText,
            Communicator comm,
            int zeroStage,
            MemoryEstimate memory) {
        this.model = model;
        this.config = config;
        this.out = out;
        this.comm = comm;
        if (comm.size() != config.numProcesses() || comm.rank() != config.rank())
            throw new LlmcException("process %d of %d (-pr, -pn) disagrees with %s, where this is rank %d of %d"
                    .formatted(config.rank(), config.numProcesses(), comm.description(), comm.rank(), comm.size()));
        this.parallel = new DataParallel(comm, model, zeroStage, out);
        int B = config.batchSize(), T = config.seqLen(), P = config.numProcesses();
        if (T > model.maxSeqLen())
            throw new LlmcException(
                    "sequence length -t " + T + " exceeds the model's context length " + model.maxSeqLen());
        long tokensPerMicroStep = (long) B * T * P;
        long totalBatch = config.totalBatchTokens() <= 0 ? tokensPerMicroStep : config.totalBatchTokens();
        if (totalBatch % tokensPerMicroStep != 0)
            throw new LlmcException("total batch size -d " + totalBatch + " must be a multiple of B*T*processes = "
                    + tokensPerMicroStep);
        this.gradAccumSteps = (int) (totalBatch / tokensPerMicroStep);

        // -a: overfit one batch of the val data, no shuffling
        String trainPattern = config.overfitSingleBatch() ? config.valPattern() : config.trainPattern();
        this.trainLoader =
                new DataLoader(trainPattern, B, T, config.rank(), P, !config.overfitSingleBatch(), model.vocabSize());
        this.valLoader = new DataLoader(config.valPattern(), B, T, config.rank(), P, false, model.vocabSize());
        this.numSteps =
                config.maxSteps() > 0 ? config.maxSteps() : (int) Math.max(1, trainLoader.numTokens() / totalBatch);
        long valAvailable = valLoader.numTokens() / tokensPerMicroStep;
        this.valBatches =
                (int) (config.valMaxSteps() < 0 ? valAvailable : Math.min(valAvailable, config.valMaxSteps()));
        this.schedule = LearningRateSchedule.of(
                config.schedule(),
                config.learningRate(),
                config.warmupSteps(),
                numSteps,
                config.finalLearningRateFraction());
        Optional<TokenizerFile> tokenizer = sampleText != null || config.tokenizerFile() == null
                ? Optional.empty()
                : TokenizerFile.readIfPresent(config.tokenizerFile());
        this.sampleText = sampleText != null ? sampleText : SampleText.of(tokenizer);
        boolean samples = config.genTokens() > 0 && config.sampleEvery() > 0;
        if (samples && (this.sampleText.startToken() < 0 || this.sampleText.startToken() >= model.vocabSize()))
            throw new LlmcException("samples start from token %d, outside the model's vocabulary (0..%d)"
                    .formatted(this.sampleText.startToken(), model.vocabSize() - 1));
        this.logFile = config.outputDir() == null ? null : config.outputDir().resolve("main.log");

        out.printf("| train data        | %-50s |%n", trainPattern);
        out.printf("| val data          | %-50s |%n", config.valPattern());
        out.printf("| micro batch B     | %-50d |%n", B);
        out.printf("| sequence length T | %-50d |%n", T);
        out.printf("| total batch size  | %-50s |%n", totalBatch + " tokens (" + gradAccumSteps + " micro-steps)");
        out.printf("| steps             | %-50d |%n", numSteps);
        out.printf(
                "| learning rate     | %-50s |%n",
                "%.2e, %s, warmup %d, final fraction %.2f"
                        .formatted(
                                config.learningRate(),
                                schedule.name(),
                                config.warmupSteps(),
                                config.finalLearningRateFraction()));
        out.printf("| weight decay      | %-50s |%n", config.weightDecay());
        out.printf("| parameters        | %-50s |%n", "%,d".formatted(model.numParameters()));
        if (P > 1) {
            out.printf("| processes         | %-50s |%n", comm.description());
            out.printf(
                    "| ZeRO stage        | %-50s |%n",
                    parallel.zeroStage()
                            + (parallel.zeroStage() == 1
                                    ? " (AdamW state sharded: %,d parameters per rank)".formatted(parallel.shardCount())
                                    : " (AdamW state replicated)"));
            out.printf(
                    "| sent per step     | %-50s |%n",
                    "%.1f MiB per rank (ring all-reduce of the gradients)"
                            .formatted(parallel.bytesSentPerStep() / 1048576.0));
        }
        if (memory != null) out.printf("| memory per rank   | %-50s |%n", memory.describe());
        else
            out.printf(
                    "| memory per rank   | %-50s |%n",
                    "%.1f MiB parameters, gradients, optimizer state"
                            .formatted(parallel.stateBytesPerRank() / 1048576.0));
        out.printf("train dataset num_batches: %d%n", trainLoader.numTokens() / tokensPerMicroStep);
        out.printf("val dataset num_batches: %d%n", valAvailable);
        if (sampleText == null && tokenizer.isEmpty() && config.tokenizerFile() != null)
            out.println("warning: no tokenizer at " + config.tokenizerFile() + "; samples are printed as token ids");
    }

    /** Adds a listener (the --ui monitor) that the run tells of its steps, val losses and samples. */
    public Trainer listen(TrainingListener listener) {
        listeners.add(listener);
        return this;
    }

    /**
     * -h 1: evaluate these HellaSwag examples (llm.c's eval file) at every val step after step 0 and at the last
     * step, printing {@code HellaSwag: correct/total = accuracy} and logging {@code s:N eval:accuracy} as llm.c.
     */
    public Trainer evaluateHellaSwag(List<EvalFile.Example> examples) {
        HellaSwagEval.check(examples, config.batchSize(), config.seqLen(), "HellaSwag");
        this.hellaSwag = examples;
        out.printf("| run hellaswag     | %-50s |%n", "yes, " + examples.size() + " examples");
        return this;
    }

    public int numSteps() {
        return numSteps;
    }

    public int gradAccumSteps() {
        return gradAccumSteps;
    }

    public Result run() {
        var trainLosses = new ArrayList<LossPoint>();
        var valLosses = new ArrayList<LossPoint>();
        removeStaleTemporaries();
        int startStep = config.resume() ? resume() : 0;
        if (logFile != null && !config.resume() && config.rank() == 0) writeLog(null); // a fresh run starts a fresh log
        var lossOutliers = new OutlierDetector();
        var normOutliers = new OutlierDetector();
        var progress = new ProgressLine(out, numSteps);
        double totalMillis = 0;
        int timedSteps = 0;
        float tokensPerSecond = -1;
        long tokensPerStep = (long) gradAccumSteps * config.batchSize() * config.seqLen() * config.numProcesses();

        for (int step = startStep; step <= numSteps; step++) {
            boolean last = step == numSteps;

            if (step % Math.max(1, config.valEvery()) == 0 || last) {
                float valLoss = validationLoss();
                progress.clear();
                out.printf("val loss %f%n", valLoss);
                valLosses.add(new LossPoint(step, valLoss));
                log("s:%d tel:%.4f".formatted(step, valLoss));
                for (var listener : listeners) listener.validated(step, valLoss);
            }
            if (hellaSwag != null && ((step > 0 && step % Math.max(1, config.valEvery()) == 0) || last)) {
                progress.clear();
                evaluateHellaSwag(step);
            }
            if (config.genTokens() > 0
                    && config.sampleEvery() > 0
                    && ((step > 0 && step % config.sampleEvery() == 0) || last)) {
                progress.clear();
                sample(step);
            }
            if (config.outputDir() != null
                    && config.checkpointEvery() > 0
                    && ((step > 0 && step % config.checkpointEvery() == 0) || last)
                    && !(config.resume() && step == startStep)) {
                saveCheckpoint(step);
            }
            if (last) break;

            long start = System.nanoTime();
            model.zeroGrad();
            float lossSum = 0;
            for (int micro = 0; micro < gradAccumSteps; micro++) {
                if (config.overfitSingleBatch()) trainLoader.reset();
                trainLoader.nextBatch();
                lossSum +=
                        model.forward(trainLoader.inputs(), trainLoader.targets(), config.batchSize(), config.seqLen());
                model.backward(gradAccumSteps);
            }
            // data parallel: the mean loss over all ranks, and the gradients averaged over them (all-reduce, or
            // ZeRO-1's reduce-scatter of each rank's shard); the norm is then that of the whole batch, on every rank
            float loss = parallel.mean(lossSum / gradAccumSteps);
            float norm = parallel.reduceGradients();
            float gradScale = norm > config.gradClip() ? config.gradClip() / norm : 1.0f;
            float lr = schedule.learningRate(step);
            // a non-finite loss or norm would carry NaN into every parameter: skip the update, and stop when it
            // keeps happening (the run diverged, or the model holds NaN); the outlier windows never see such a value
            boolean finite = Float.isFinite(loss) && Float.isFinite(norm);
            nonFiniteInARow = finite ? 0 : nonFiniteInARow + 1;
            double zLoss = finite ? lossOutliers.update(loss) : Double.NaN;
            double zNorm = finite ? normOutliers.update(norm) : Double.NaN;
            boolean outlier = OutlierDetector.shouldSkip(zLoss, config.skipLossZ())
                    || OutlierDetector.shouldSkip(zNorm, config.skipNormZ());
            boolean skip = !finite || outlier;
            for (var listener : listeners) if (listener.inspects(step + 1)) listener.beforeUpdate(step + 1);
            if (!skip) {
                parallel.update(lr, config.weightDecay(), gradScale, step + 1); // ZeRO-1: own shard, then all-gather
            }
            double millis = (System.nanoTime() - start) / 1e6;
            if (step > startStep) { // the first step warms up the JIT: leave it out of the averages, as llm.c does
                totalMillis += millis;
                timedSteps++;
                float current = (float) (tokensPerStep / (millis / 1000));
                tokensPerSecond = tokensPerSecond < 0 ? current : 0.95f * tokensPerSecond + 0.05f * current;
            }
            progress.clear();
            // the same columns on every device; a GPU model with a known peak adds MFU at the end
            double mfu = model.flopsUtilization(config.seqLen(), tokensPerStep, millis / 1000);
            out.printf(
                    "step %4d/%d | loss %7.6f (%+.2fz)| norm %6.4f (%+.2fz)| lr %.2e | %.2f ms | %.0f tok/s%s%s%n",
                    step + 1,
                    numSteps,
                    loss,
                    nanToZero(zLoss),
                    norm,
                    nanToZero(zNorm),
                    lr,
                    millis,
                    Math.max(0, tokensPerSecond),
                    mfu >= 0 ? " | %.1f%% bf16 MFU".formatted(100 * mfu) : "",
                    !finite
                            ? " | update skipped (non-finite loss or norm)"
                            : outlier ? " | update skipped (outlier)" : "");
            if (nonFiniteInARow >= MAX_NON_FINITE_STEPS)
                throw new LlmcException(
                        ("step %d: loss %s, gradient norm %s: not finite for %d steps in a row, every update "
                                        + "skipped; the run diverged or the model holds NaN/infinity: lower -l (now %.2e), or start from "
                                        + "an earlier checkpoint")
                                .formatted(step + 1, loss, norm, nonFiniteInARow, config.learningRate()));
            trainLosses.add(new LossPoint(step + 1, loss));
            log("s:%d trl:%.4f lr:%.6f norm:%.2f".formatted(step + 1, loss, lr, norm));
            var stepLog = new TrainingListener.StepLog(
                    step + 1, numSteps, loss, zLoss, norm, zNorm, lr, millis, tokensPerSecond, skip);
            for (var listener : listeners) listener.stepDone(stepLog);
            progress.show(step + 1, totalMillis / Math.max(1, timedSteps));
        }
        progress.clear();
        double average = timedSteps == 0 ? 0 : totalMillis / timedSteps;
        out.printf("total average iteration time: %f ms%n", average);
        var result = new Result(trainLosses, valLosses, average, numSteps);
        for (var listener : listeners) listener.finished(result);
        return result;
    }

    /** Updates skipped in a row for a non-finite loss or gradient norm before the run stops. */
    public static final int MAX_NON_FINITE_STEPS = 5;

    private int nonFiniteInARow;

    /**
     * A killed checkpoint write leaves its temporary file ({@link AtomicFiles}: ".model_00000020.bin123.tmp"), as
     * large as the checkpoint; a new or resumed run removes those of its own names: rank 0 the model files and the
     * DONE markers, each rank its own state files.
     */
    private void removeStaleTemporaries() {
        Path dir = config.outputDir();
        if (dir == null || !Files.isDirectory(dir)) return;
        String rank = "%05d".formatted(config.rank());
        String ours = config.rank() == 0
                ? "\\.(model_\\d{8}\\.bin|DONE_\\d{8}|state_\\d{8}_" + rank + "\\.bin)\\d*\\.tmp"
                : "\\.state_\\d{8}_" + rank + "\\.bin\\d*\\.tmp";
        try (var files = Files.list(dir)) {
            for (Path stale :
                    files.filter(p -> p.getFileName().toString().matches(ours)).toList()) {
                Files.deleteIfExists(stale);
                out.println("removed a stale temporary file of an interrupted checkpoint: " + stale);
            }
        } catch (IOException e) {
            throw new LlmcException("cannot clean stale temporary files in " + dir + ": " + e.getMessage(), e);
        }
    }

    private static double nanToZero(double z) {
        return Double.isNaN(z) ? 0 : z;
    }

    /** Mean loss over the first valBatches batches of the (unshuffled) val data. */
    private float validationLoss() {
        valLoader.reset();
        float sum = 0;
        for (int i = 0; i < valBatches; i++) {
            valLoader.nextBatch();
            sum += model.forward(valLoader.inputs(), valLoader.targets(), config.batchSize(), config.seqLen());
        }
        return valBatches == 0 ? Float.NaN : parallel.mean(sum / valBatches); // each rank read its own slices
    }

    /** HellaSwag accuracy over all processes' shares of the examples, printed and logged as llm.c does. */
    private void evaluateHellaSwag(int step) {
        var result = HellaSwagEval.run(
                model, hellaSwag, config.batchSize(), config.seqLen(), config.rank(), config.numProcesses());
        int correct = (int) Math.round(comm.allReduceSum(result.correct()));
        float accuracy = (float) correct / result.total();
        out.printf("HellaSwag: %d/%d = %f%n", correct, result.total(), accuracy);
        log("s:%d eval:%.4f".formatted(step, accuracy));
    }

    /** llm.c's sampling: from the EOT token, seed 1337 each time, temperature 1, streaming the text. */
    private void sample(int step) {
        if (config.rank() != 0) return;
        int count = Math.min(config.genTokens(), model.maxSeqLen() - 1);
        out.print("generating:\n---\n");
        var start = new int[] {sampleText.startToken()};
        var text = new ByteArrayOutputStream(); // what was printed, for the listeners
        model.generator().generate(start, count, new Sampler(new XorShift(1337), 1.0f, 0), token -> {
            byte[] bytes = sampleText.tokenBytes() != null
                    ? sampleText.tokenBytes().apply(token)
                    : (token + " ").getBytes(StandardCharsets.UTF_8);
            out.write(bytes, 0, bytes.length);
            text.write(bytes, 0, bytes.length);
            out.flush();
        });
        out.print("\n---\n");
        for (var listener : listeners) listener.sampled(step, text.toString(StandardCharsets.UTF_8));
    }

    // ---- checkpoints: model_%08d.bin, state_%08d_%05d.bin per rank, DONE_%08d, exactly as llm.c names them ----

    private void saveCheckpoint(int step) {
        Path dir = config.outputDir();
        if (config.rank() == 0) model.saveCheckpoint(dir.resolve("model_%08d.bin".formatted(step)));
        // a bf16 model's fp32 master weights and its stochastic-rounding rng go with m and v (header[4], [20..23]);
        // a CPU model has neither, and its file keeps [4] = 0 and rng states 0
        var mixed = model instanceof MixedPrecisionState state ? state : null;
        MemorySegment master = mixed == null ? null : mixed.masterWeights();
        var lossScale = mixed == null ? null : mixed.lossScale(); // fp16 only
        long rng = mixed == null ? 0 : mixed.optimizerRngState();
        long rngLastUpdate = mixed == null ? 0 : mixed.optimizerRngStateBeforeLastUpdate();
        var header = new TrainingStateFile.Header(
                config.numProcesses(),
                config.rank(),
                master != null,
                !config.overfitSingleBatch(),
                step,
                rng,
                rngLastUpdate,
                trainLoader.shardPosition(),
                trainLoader.samplePosition(),
                lossScale == null ? 0 : lossScale.scale(),
                lossScale == null ? 0 : lossScale.goodSteps());
        TrainingStateFile.write(
                dir.resolve("state_%08d_%05d.bin".formatted(step, config.rank())),
                header,
                model.adamFirstMoments(),
                model.adamSecondMoments(),
                master,
                parallel.shardCount(),
                trainLoader.state());
        comm.barrier(); // every rank's state file is written before rank 0 marks the checkpoint done
        if (config.rank() == 0) {
            AtomicFiles.write(dir.resolve("DONE_%08d".formatted(step)), new byte[0]);
            out.printf("checkpoint written: %s%n", dir.resolve("model_%08d.bin".formatted(step)));
            deleteOldCheckpoint(step);
        }
    }

    private void deleteOldCheckpoint(int step) {
        if (config.checkpointsToKeep() <= 0) return;
        int old = step - config.checkpointsToKeep() * config.checkpointEvery();
        if (old <= 0 || (config.majorCheckpointEvery() > 0 && old % config.majorCheckpointEvery() == 0)) return;
        Path dir = config.outputDir();
        try {
            Files.deleteIfExists(
                    dir.resolve("DONE_%08d".formatted(old))); // first: a half-deleted checkpoint is never "done"
            Files.deleteIfExists(dir.resolve("model_%08d.bin".formatted(old)));
            for (int rank = 0; rank < config.numProcesses(); rank++)
                Files.deleteIfExists(dir.resolve("state_%08d_%05d.bin".formatted(old, rank)));
        } catch (IOException e) {
            out.println("warning: could not delete checkpoint of step " + old + ": " + e.getMessage());
        }
    }

    /** Loads the latest completed checkpoint of the output dir; returns its step. */
    private int resume() {
        Path dir = config.outputDir();
        if (dir == null) throw new LlmcException("resume (-y 1) needs the output dir (-o) that holds the checkpoints");
        int step = TrainingStateFile.latestCompletedStep(dir);
        if (step < 0) throw new LlmcException("resume (-y 1): no completed checkpoint (DONE_########) in " + dir);
        Path stateFile = dir.resolve("state_%08d_%05d.bin".formatted(step, config.rank()));
        MemorySegment m = model.adamFirstMoments(), v = model.adamSecondMoments();
        var mixed = model instanceof MixedPrecisionState state ? state : null;
        MemorySegment master = mixed == null ? null : mixed.masterWeights(); // null unless it keeps fp32 master weights
        var contents = TrainingStateFile.read(
                stateFile, parallel.shardCount(), config.numProcesses(), config.rank(), m, v, master);
        var header = contents.header();
        model.loadAdamMoments(m, v); // a no-op for the CPU model (m, v are its own); a GPU model uploads them
        // llm.c regenerates the bf16 parameters from the master weights, replaying the last update's stochastic
        // rounding from rng_state_last_update. We need not: the model file of this step (which the caller built the
        // model from) holds exactly the bf16 parameters that update produced, so model file + master weights + rng
        // state is the same state. A mismatch either way prints a one-line warning and the run goes on, only not bit
        // for bit: state files written before the master weights were saved still resume.
        if (header.masterWeights() && master != null) {
            mixed.loadMasterWeights(master);
        } else if (header.masterWeights()) {
            out.println("warning: " + stateFile
                    + " holds fp32 master weights, but this model keeps none; they are not used");
        } else if (master != null) {
            out.println("warning: " + stateFile + " holds no fp32 master weights; they start from the model file's "
                    + "parameters, so this resumed run is not bit-identical to an uninterrupted one");
        }
        if (header.rngState() != 0) {
            if (mixed != null) mixed.restoreOptimizerRng(header.rngState(), header.rngStateLastUpdate());
        } else if (mixed != null && mixed.optimizerRngState() != 0) { // a file of a model without one (or older llmc4j)
            out.println(
                    "warning: " + stateFile + " holds no stochastic-rounding rng state; it starts again from its seed");
        }
        if (header.lossScale() > 0) {
            var saved = new MixedPrecisionState.LossScale(header.lossScale(), header.lossScaleGoodSteps());
            if (mixed != null) mixed.restoreLossScale(saved);
        } else if (mixed != null && mixed.lossScale() != null) {
            out.println("warning: " + stateFile
                    + " holds no loss scale; the fp16 loss scaler starts again from its initial scale");
        }
        if (contents.loader() != null) {
            trainLoader.restore(contents.loader(), stateFile);
        } else {
            trainLoader.resume(header.shardPosition(), header.samplePosition(), stateFile);
        }
        out.printf("resumed from %s at step %d%n", dir.resolve("model_%08d.bin".formatted(step)), step);
        return step;
    }

    /** The model file a resumed run must load its parameters from (the caller builds the model from it). */
    public static Path resumeModelFile(Path outputDir) {
        int step = TrainingStateFile.latestCompletedStep(outputDir);
        return step < 0 ? null : outputDir.resolve("model_%08d.bin".formatted(step));
    }

    private void log(String line) {
        if (logFile != null && config.rank() == 0) writeLog(line);
    }

    private void writeLog(String line) {
        try {
            Files.createDirectories(logFile.getParent());
            if (line == null) {
                Files.write(logFile, new byte[0]);
            } else {
                Files.writeString(
                        logFile,
                        line + "\n",
                        StandardCharsets.UTF_8,
                        StandardOpenOption.CREATE,
                        StandardOpenOption.APPEND);
            }
        } catch (IOException e) {
            throw new LlmcException("cannot write the log " + logFile + ": " + e.getMessage(), e);
        }
    }
}
