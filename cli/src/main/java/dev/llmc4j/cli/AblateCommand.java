package dev.llmc4j.cli;

import dev.llmc4j.gpt2.Ablation;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.Trainer.LossPoint;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.train.TrainingListener;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code ./llmc ablate}: what each piece of GPT-2 buys, measured. The same small GPT-2 is trained on tinyshakespeare
 * from the same init, on the same batches, once as it is and once with each piece taken out ({@link Ablation});
 * the loss curves go to a CSV and a chart, the final losses to a table.
 */
@Command(
        name = "ablate",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Train a small GPT-2 on tinyshakespeare once as it is and once with each piece taken out (position",
            "embedding, layernorm, residual connections, GELU, init scaling, warmup, weight decay): same init, same",
            "batches. Writes the loss curves (ablations.csv), their chart (ablations.png, ablations.svg) and the",
            "final losses (ablations-summary.csv) into --output. A few minutes per variant on 2 cores."
        })
public final class AblateCommand implements Callable<Integer>, OptionChecks.CrossCheck {

    @Option(
            names = "--input",
            paramLabel = "FILE",
            description = "a local copy of tinyshakespeare's input.txt (else it is downloaded)")
    Path input;

    @Option(
            names = "--data",
            paramLabel = "DIR",
            defaultValue = "data/tinyshakespeare",
            description = "where the token shards are, or go (default: ${DEFAULT-VALUE})")
    Path data;

    @Option(
            names = {"-o", "--output"},
            paramLabel = "DIR",
            defaultValue = "out/ablations",
            description = "where the CSVs and the chart go (default: ${DEFAULT-VALUE})")
    Path output;

    @Option(
            names = "--variants",
            paramLabel = "LIST",
            split = ",",
            description = "which to train, comma-separated, of: full, no-wpe, no-layernorm, no-residual, relu, "
                    + "no-init-scaling, no-warmup, no-weight-decay (default: all)")
    List<String> variants;

    @Range(min = 1, max = 1_000_000)
    @Option(
            names = {"-x", "--steps"},
            paramLabel = "N",
            defaultValue = "300",
            description = "optimizer steps per variant (default: ${DEFAULT-VALUE})")
    int steps;

    @Range(min = 1, max = 64)
    @Option(
            names = "--layers",
            paramLabel = "L",
            defaultValue = "4",
            description = "layers (default: ${DEFAULT-VALUE})")
    int layers;

    @Range(min = 1, max = 64)
    @Option(names = "--heads", paramLabel = "NH", defaultValue = "4", description = "heads (default: ${DEFAULT-VALUE})")
    int heads;

    @Range(min = 1, max = 4096)
    @Option(
            names = "--channels",
            paramLabel = "C",
            defaultValue = "128",
            description = "channels (default: ${DEFAULT-VALUE})")
    int channels;

    @Range(min = 1, max = 1024)
    @Option(
            names = {"-b", "--batch-size"},
            paramLabel = "B",
            defaultValue = "8",
            description = "batch size (default: ${DEFAULT-VALUE})")
    int batchSize;

    @Range(min = 1, max = GPT2Config.GPT2_MAX_SEQ_LEN)
    @Option(
            names = {"-t", "--seq-len"},
            paramLabel = "T",
            defaultValue = "64",
            description = "sequence length (default: ${DEFAULT-VALUE})")
    int seqLen;

    @Range(min = 0, max = 1, minExclusive = true)
    @Option(
            names = {"-l", "--learning-rate"},
            paramLabel = "LR",
            defaultValue = "1e-3",
            description = "peak learning rate, cosine decay to a tenth of it (default: ${DEFAULT-VALUE})")
    float learningRate;

    @Range(min = 0, max = 1_000_000)
    @Option(
            names = {"-u", "--warmup"},
            paramLabel = "N",
            defaultValue = "30",
            description = "warmup steps of every variant but no-warmup (default: ${DEFAULT-VALUE})")
    int warmupSteps;

    @Range(min = 0, max = 10)
    @Option(
            names = {"-c", "--weight-decay"},
            paramLabel = "WD",
            defaultValue = "0.1",
            description = "AdamW weight decay of every variant but no-weight-decay (default: ${DEFAULT-VALUE})")
    float weightDecay;

    @Range(min = 1, max = 1_000_000)
    @Option(
            names = {"-v", "--val-every"},
            paramLabel = "N",
            defaultValue = "25",
            description = "val loss every N steps (default: ${DEFAULT-VALUE})")
    int valEvery;

    @Range(min = 1, max = 1_000_000)
    @Option(
            names = {"-m", "--val-batches"},
            paramLabel = "N",
            defaultValue = "10",
            description = "val batches per val loss (default: ${DEFAULT-VALUE})")
    int valBatches;

    static final String FULL = "full";
    static final String ABLATIONS = Ablation.labels();
    /** The train curve in the chart and the summary: the mean of the last this many steps' losses. */
    static final int TRAIN_WINDOW = 20;

    /** A model to train: the full one, or the full one without a piece. */
    record Variant(String label, String description, Ablation ablation) {
        static Variant of(String label) {
            if (label.equals(FULL)) return new Variant(FULL, "nothing: llm.c's GPT-2 and trainer", null);
            var ablation = Ablation.of(label);
            return new Variant(ablation.label(), ablation.description(), ablation);
        }

        GPT2 randomInit(GPT2Config config, GPT2Kernels kernels) {
            return ablation == null ? GPT2.randomInit(config, kernels) : ablation.randomInit(config, kernels);
        }

        int warmupSteps(int full) {
            return ablation == null ? full : ablation.warmupSteps(full);
        }

        float weightDecay(float full) {
            return ablation == null ? full : ablation.weightDecay(full);
        }
    }

    /**
     * One variant's measured curves: train loss at steps 1..N, val loss at 0 and every few steps; {@code stopped}
     * says why a run ended early (it diverged), else null.
     */
    record Curves(Variant variant, List<LossPoint> train, List<LossPoint> val, String stopped, double seconds) {
        /** The val loss at the last step, NaN when the run stopped early. */
        float finalValLoss() {
            return stopped != null || val.isEmpty() ? Float.NaN : val.getLast().loss();
        }

        /** The mean train loss over the last {@link #TRAIN_WINDOW} steps up to {@code step}. */
        float trainMean(int step) {
            return trainMean(train, step);
        }

        /** The same over a train curve in step order: the last point at or before {@code step} ends the window. */
        static float trainMean(List<LossPoint> train, int step) {
            int last = train.size() - 1;
            while (last >= 0 && train.get(last).step() > step) last--;
            return last < 0 ? Float.NaN : meanEndingAt(train, last);
        }

        /** The mean train loss of the window that ends at point {@code last}: at most TRAIN_WINDOW points read. */
        static float meanEndingAt(List<LossPoint> train, int last) {
            int step = train.get(last).step();
            double sum = 0;
            int count = 0;
            for (int i = last; i >= 0 && train.get(i).step() > step - TRAIN_WINDOW; i--, count++)
                sum += train.get(i).loss();
            return (float) (sum / count);
        }
    }

    /** The variants asked for, in the order given (all of them by default): a one-line error for an unknown one. */
    List<Variant> variants() {
        var labels = new ArrayList<String>();
        if (variants == null || variants.isEmpty()) {
            labels.add(FULL);
            for (var ablation : Ablation.values()) labels.add(ablation.label());
        } else {
            for (var label : variants) labels.add(label.strip().toLowerCase(Locale.ROOT));
        }
        var list = new ArrayList<Variant>();
        for (var label : labels) {
            Variant variant;
            try {
                variant = Variant.of(label);
            } catch (LlmcException e) {
                throw new LlmcException("--variants: expected full or one of " + ABLATIONS + ", found " + label);
            }
            if (list.stream().anyMatch(v -> v.label().equals(variant.label())))
                throw new LlmcException("--variants: " + label + " is listed twice");
            list.add(variant);
        }
        return list;
    }

    @Override
    public void checkTogether() {
        GPT2Config.of(layers, heads, channels); // channels a multiple of heads
        variants();
    }

    @Override
    public Integer call() throws IOException {
        var out = System.out;
        Path train = data.resolve("tiny_shakespeare_train.bin"), val = data.resolve("tiny_shakespeare_val.bin");
        QuickstartCommand.prepareTinyShakespeare(input, data, out, train, val);
        var config = GPT2Config.of(layers, heads, channels);
        var list = variants();
        out.printf(
                "ablations: GPT-2 with %d layers, %d heads, %d channels (%,d parameters), %d steps of %d x %d tokens, "
                        + "lr %s (warmup %d, cosine to a tenth), weight decay %s, %d variants%n",
                layers,
                heads,
                channels,
                config.numParameters(),
                steps,
                batchSize,
                seqLen,
                learningRate,
                warmupSteps,
                weightDecay,
                list.size());
        out.println("machine: " + machine());
        Files.createDirectories(output);

        var results = new ArrayList<Curves>();
        for (var variant : list) {
            out.printf("== %s: %s%n", variant.label(), variant.description());
            results.add(train(variant, config, train, val, out));
            write(results); // after each variant, so that an interrupted study keeps what it measured
        }
        out.println();
        out.print(summaryText(results));
        out.printf(
                "%ncurves: %s, chart: %s (and .svg), table: %s%n",
                output.resolve("ablations.csv"),
                output.resolve("ablations.png"),
                output.resolve("ablations-summary.csv"));
        return 0;
    }

    private Curves train(Variant variant, GPT2Config gpt2, Path train, Path val, PrintStream out) {
        var config = new TrainingConfig(
                train.toString(),
                val.toString(),
                batchSize,
                seqLen,
                -1,
                steps,
                learningRate,
                variant.warmupSteps(warmupSteps),
                0.1f,
                "cosine",
                variant.weightDecay(weightDecay),
                1.0f,
                valEvery,
                valBatches,
                0, // no samples
                0,
                false,
                null, // no log, no checkpoints
                0,
                0,
                0,
                false,
                0,
                0,
                null,
                1,
                0);
        var trainLosses = new ArrayList<LossPoint>();
        var valLosses = new ArrayList<LossPoint>();
        long start = System.nanoTime();
        var progress = new TrainingListener() {
            boolean diverging; // the last step's loss or gradient norm was not finite

            @Override
            public void stepDone(StepLog log) {
                trainLosses.add(new LossPoint(log.step(), log.loss()));
                diverging = !Float.isFinite(log.loss()) || !Float.isFinite(log.norm());
            }

            @Override
            public void validated(int step, float valLoss) {
                valLosses.add(new LossPoint(step, valLoss));
                float trainMean = Curves.trainMean(trainLosses, step);
                out.printf(
                        "%-16s step %5d/%d | train %7s | val %7.4f | %6.1f s%n",
                        variant.label(),
                        step,
                        steps,
                        Float.isNaN(trainMean) ? "-" : "%.4f".formatted(trainMean),
                        valLoss,
                        (System.nanoTime() - start) / 1e9);
            }
        };
        String stopped = null;
        var silent = new PrintStream(OutputStream.nullOutputStream(), false, StandardCharsets.UTF_8);
        try (var model = variant.randomInit(gpt2, GPT2Kernels.of(Llmc.kernels()))) {
            new Trainer(model, config, silent).listen(progress).run();
        } catch (LlmcException e) {
            if (!progress.diverging) throw e; // the trainer stops a run whose loss stays NaN: keep its curve
            stopped = "diverged at step "
                    + (trainLosses.isEmpty() ? 1 : trainLosses.getLast().step());
            out.printf("%-16s %s: the loss is not finite%n", variant.label(), stopped);
        }
        return new Curves(variant, trainLosses, valLosses, stopped, (System.nanoTime() - start) / 1e9);
    }

    private void write(List<Curves> results) {
        AtomicFiles.write(output.resolve("ablations.csv"), curvesCsv(results).getBytes(StandardCharsets.UTF_8));
        AtomicFiles.write(
                output.resolve("ablations-summary.csv"), summaryCsv(results).getBytes(StandardCharsets.UTF_8));
        String title = "GPT-2 (L=%d, C=%d) on tinyshakespeare, one piece taken out".formatted(layers, channels);
        String subtitle = "%d steps of %d x %d tokens, lr %s, same init and batches; ./llmc ablate"
                .formatted(steps, batchSize, seqLen, learningRate);
        AblationChart.write(output.resolve("ablations.png"), results, title, subtitle);
    }

    /** variant,step,train_loss,val_loss: one row per step from 0, a cell empty where that loss was not measured. */
    static String curvesCsv(List<Curves> results) {
        var csv = new StringBuilder("variant,step,train_loss,val_loss\n");
        for (var curves : results) {
            int last = Math.max(
                    curves.train().isEmpty() ? 0 : curves.train().getLast().step(),
                    curves.val().isEmpty() ? 0 : curves.val().getLast().step());
            var train = new String[last + 1];
            var val = new String[last + 1];
            for (var p : curves.train()) train[p.step()] = number(p.loss());
            for (var p : curves.val()) val[p.step()] = number(p.loss());
            for (int step = 0; step <= last; step++) {
                if (train[step] == null && val[step] == null) continue;
                csv.append(curves.variant().label()).append(',').append(step).append(',');
                csv.append(train[step] == null ? "" : train[step]).append(',');
                csv.append(val[step] == null ? "" : val[step]).append('\n');
            }
        }
        return csv.toString();
    }

    /**
     * One variant's line of the summary: its final val loss, the difference from the full model's (NaN for the
     * full model itself, or where either loss is NaN) and its mean train loss over the last steps.
     */
    private record SummaryRow(Curves curves, float valLoss, float vsFull, float trainMean) {}

    private static List<SummaryRow> summaryRows(List<Curves> results) {
        float full = fullValLoss(results);
        return results.stream()
                .map(curves -> {
                    float loss = curves.finalValLoss();
                    int lastStep = curves.train().isEmpty()
                            ? 0
                            : curves.train().getLast().step();
                    float vsFull = curves.variant().ablation() == null ? Float.NaN : loss - full;
                    return new SummaryRow(curves, loss, vsFull, curves.trainMean(lastStep));
                })
                .toList();
    }

    /** The final losses, one row per variant, as the docs page's table shows them. */
    static String summaryCsv(List<Curves> results) {
        var csv = new StringBuilder(
                "variant,what is taken out,val loss at the end,vs full,train loss (mean of the last %d steps)\n"
                        .formatted(TRAIN_WINDOW));
        for (var row : summaryRows(results)) {
            var curves = row.curves();
            csv.append(curves.variant().label()).append(',');
            csv.append(quoted(curves.variant().description())).append(',');
            csv.append(curves.stopped() != null ? curves.stopped() : "%.3f".formatted(row.valLoss()))
                    .append(',');
            csv.append(Float.isNaN(row.vsFull()) ? "" : "%+.3f".formatted(row.vsFull()))
                    .append(',');
            csv.append("%.3f".formatted(row.trainMean())).append('\n');
        }
        return csv.toString();
    }

    /** The same table as text, for the terminal. */
    static String summaryText(List<Curves> results) {
        var text = new StringBuilder("%-16s %10s %9s %11s %8s  %s%n"
                .formatted("variant", "val loss", "vs full", "train loss", "seconds", "taken out"));
        for (var row : summaryRows(results)) {
            var curves = row.curves();
            text.append("%-16s %10s %9s %11.4f %8.0f  %s%n"
                    .formatted(
                            curves.variant().label(),
                            curves.stopped() != null ? "diverged" : "%.4f".formatted(row.valLoss()),
                            Float.isNaN(row.vsFull()) ? "" : "%+.4f".formatted(row.vsFull()),
                            row.trainMean(),
                            curves.seconds(),
                            curves.variant().description()));
        }
        return text.toString();
    }

    private static float fullValLoss(List<Curves> results) {
        return results.stream()
                .filter(c -> c.variant().ablation() == null)
                .map(Curves::finalValLoss)
                .findFirst()
                .orElse(Float.NaN);
    }

    private static String number(float value) {
        return Float.isFinite(value) ? "%.4f".formatted(value) : "NaN";
    }

    private static String quoted(String text) {
        return "\"" + text.replace("\"", "\"\"") + "\"";
    }

    /** Cores, CPU model (Linux) and JVM, for the record of where the curves were measured. */
    static String machine() {
        String cpu = "";
        try (var lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            cpu = lines.filter(line -> line.startsWith("model name"))
                    .map(line -> line.substring(line.indexOf(':') + 1).strip() + ", ")
                    .findFirst()
                    .orElse("");
        } catch (IOException | UncheckedIOException e) {
            // not Linux: cores and JVM only
        }
        return "%s%d cores, Java %s"
                .formatted(
                        cpu,
                        Runtime.getRuntime().availableProcessors(),
                        Runtime.version().feature());
    }
}
