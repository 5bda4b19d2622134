package dev.llmc4j.cli.monitor;

import com.sun.management.OperatingSystemMXBean;
import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.train.TrainingListener;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.management.ManagementFactory;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.atomic.AtomicLong;

/**
 * What {@code --ui} costs a training run, measured in ONE process: one run of the quickstart's GPT-2 whose
 * {@code -v} periods are handed to the monitor or not, alternately, so that both arms share the JIT, the data, the
 * model and, as far as anything can, the machine's load. A period is the work between the log lines of steps k·v
 * and (k+1)·v: the val loss at step k·v, then v training steps, the last of them inspected (tensor statistics).
 * Each pair of periods runs on-off or off-on, in an order drawn at random (half each), and the overhead is that of
 * the median pair (and of the geometric mean), with 95% confidence intervals: of the wall time, and of the process's
 * CPU time (less disturbed by other processes on a shared machine, but blind to a core left idle).
 *
 * <p>With a page connected (the default) a client holds the server-sent event stream open all along, as an open
 * page does. The monitor's own time on the training thread is reported too ({@link RunMonitor#costs()}, the
 * "in-run accounting"). {@code --parts} instead times each part of the monitor's work on its own.
 *
 * <pre>
 *   benchmarks/scripts/monitor-overhead.sh [--pairs 12] [--warmup-pairs 1] [-v 10] [--no-page] [--seed 1] [--parts]
 *                                          [--layers 4 --heads 4 --channels 256] [-b 8] [-t 64]
 * </pre>
 * Not a test (its name does not end in Test): a main among the cli's test classes, because the architecture keeps
 * every other module, benchmarks included, from depending on the cli.
 */
public final class MonitorOverhead {
    private MonitorOverhead() {}

    private static final OperatingSystemMXBean OS =
            (OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean();

    /** Hands the run's events to the monitor in the periods that are "on", and times every period. */
    static final class Switch implements TrainingListener {
        final RunMonitor monitor;
        final int valEvery;
        final boolean[] on; // per period; period 0 (steps 1..v, the JIT's warm-up) is off
        final long[] wallNanos, cpuNanos, stepNanos; // per period: wall time, process CPU time, the steps' logged ms
        final double[][] stepMillis; // per period and step of it (0 .. v-1; the last is the inspected one)
        long wallStart, cpuStart;

        Switch(RunMonitor monitor, int valEvery, boolean[] on) {
            this.monitor = monitor;
            this.valEvery = valEvery;
            this.on = on;
            this.wallNanos = new long[on.length];
            this.cpuNanos = new long[on.length];
            this.stepNanos = new long[on.length];
            this.stepMillis = new double[on.length][valEvery];
        }

        int period(int step) {
            return (step - 1) / valEvery;
        }

        boolean on(int step) {
            int p = period(step);
            return p < on.length && on[p];
        }

        @Override
        public boolean inspects(int step) {
            return on(step) && monitor.inspects(step);
        }

        @Override
        public void beforeUpdate(int step) {
            monitor.beforeUpdate(step);
        }

        @Override
        public void stepDone(StepLog log) {
            int step = log.step();
            stepNanos[period(step)] += (long) (log.millis() * 1e6);
            stepMillis[period(step)][(step - 1) % valEvery] = log.millis();
            if (on(step)) monitor.stepDone(log);
            if (step % valEvery == 0) { // a period ends; the next begins with the val loss at this step
                long wall = System.nanoTime(), cpu = OS.getProcessCpuTime();
                if (step > valEvery) {
                    wallNanos[period(step)] = wall - wallStart;
                    cpuNanos[period(step)] = cpu - cpuStart;
                }
                wallStart = wall;
                cpuStart = cpu;
            }
        }

        @Override
        public void validated(int step, float valLoss) {
            if (step > 0 && on(step + 1)) monitor.validated(step, valLoss); // the val loss at k·v opens period k
        }

        @Override
        public void finished(Trainer.Result result) {
            monitor.finished(result);
        }
    }

    public static void main(String[] args) throws Exception {
        int layers = 4, heads = 4, channels = 256, batch = 8, seqLen = 64, valEvery = 10, pairs = 12, warmupPairs = 1;
        boolean page = true, parts = false;
        long seed = 1;
        Path text = Path.of("..", "shared", "data", "tinyshakespeare.txt");
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--layers" -> layers = Integer.parseInt(args[++i]);
                case "--heads" -> heads = Integer.parseInt(args[++i]);
                case "--channels" -> channels = Integer.parseInt(args[++i]);
                case "-b" -> batch = Integer.parseInt(args[++i]);
                case "-t" -> seqLen = Integer.parseInt(args[++i]);
                case "-v" -> valEvery = Integer.parseInt(args[++i]);
                case "--pairs" -> pairs = Integer.parseInt(args[++i]);
                case "--warmup-pairs" -> warmupPairs = Integer.parseInt(args[++i]);
                case "--text" -> text = Path.of(args[++i]);
                case "--no-page" -> page = false;
                case "--parts" -> parts = true;
                case "--seed" -> seed = Long.parseLong(args[++i]);
                default -> throw new IllegalArgumentException("unknown option " + args[i]);
            }
        }
        var modelConfig = GPT2Config.of(layers, heads, channels);
        if (parts) {
            parts(modelConfig, batch, seqLen);
            return;
        }
        int pairCount = warmupPairs + pairs;
        boolean[] on = new boolean[1 + 2 * pairCount];
        // each pair's order at random, half of them on-off: a drift of the machine's speed cancels out on average,
        // and another process's periodic load cannot fall into step with a fixed pattern
        var orders = new ArrayList<Boolean>();
        for (int k = 0; k < pairCount; k++) orders.add(k % 2 == 0);
        Collections.shuffle(orders, new Random(seed));
        for (int k = 0; k < pairCount; k++) {
            on[1 + 2 * k] = orders.get(k);
            on[2 + 2 * k] = !orders.get(k);
        }
        int steps = valEvery * on.length;

        Path folder = Files.createTempDirectory("llmc4j-monitor-overhead-");
        try {
            Path train, val, tokenizer;
            if (Files.isRegularFile(text)) {
                var written = DatasetBuilder.buildTinyShakespeare(DatasetBuilder.readUtf8(text), folder);
                train = written.trainFile();
                val = written.valFile();
                tokenizer = written.tokenizerFile();
            } else {
                System.out.println("no " + text + ": random tokens");
                var random = new Random(1);
                train = folder.resolve("train.bin");
                val = folder.resolve("val.bin");
                TokenShard.write(
                        train,
                        TokenShard.Kind.GPT2,
                        random.ints(300_000, 0, 50257).toArray());
                TokenShard.write(
                        val, TokenShard.Kind.GPT2, random.ints(32_768, 0, 50257).toArray());
                tokenizer = null;
            }
            // the quickstart's run (lr 1e-3, cosine to 10%, 20 val batches, -o), without samples and checkpoints:
            // they are the same work with and without the monitor
            var config = new TrainingConfig(
                    train.toString(),
                    val.toString(),
                    batch,
                    seqLen,
                    -1,
                    steps,
                    1e-3f,
                    steps / 30,
                    0.1f,
                    "cosine",
                    0.0f,
                    1.0f,
                    valEvery,
                    20,
                    0,
                    0,
                    false,
                    Files.createDirectories(folder.resolve("run")),
                    0,
                    0,
                    0,
                    false,
                    0,
                    0,
                    tokenizer,
                    1,
                    0);
            System.out.printf(
                    "GPT-2 %d layers, %d heads, %d channels (%,d parameters), B=%d, T=%d, -v %d, 20 val batches:"
                            + " %d periods of %d steps, %d pairs measured after %d; %d threads; a page %s%n",
                    layers,
                    heads,
                    channels,
                    modelConfig.numParameters(),
                    batch,
                    seqLen,
                    valEvery,
                    on.length,
                    valEvery,
                    pairs,
                    warmupPairs,
                    Parallel.threads(),
                    page ? "connected" : "not connected");
            var events = new AtomicLong();
            try (var model = GPT2.randomInit(modelConfig, GPT2Kernels.of(CpuKernels.Choice.VECTORIZED))) {
                var monitor = new RunMonitor(
                        model,
                        MonitorOptions.describe(model, config, "overhead"),
                        valEvery,
                        MonitorOptions.gpt2TokenText(tokenizer),
                        config.outputDir());
                var meter = new Switch(monitor, valEvery, on);
                try (var server = new MonitorServer(monitor, "127.0.0.1", 0);
                        var http = HttpClient.newHttpClient()) {
                    if (page)
                        http.sendAsync(
                                        HttpRequest.newBuilder(URI.create(server.url() + "events"))
                                                .build(),
                                        HttpResponse.BodyHandlers.ofLines())
                                .thenAccept(response -> response.body().forEach(line -> {
                                    if (line.startsWith("event:")) events.incrementAndGet();
                                }));
                    new Trainer(model, config, new PrintStream(OutputStream.nullOutputStream()))
                            .listen(meter)
                            .run();
                }
                report(meter, warmupPairs, pairCount);
                System.out.println(page ? events + " events reached the connected page" : "no page connected");
            }
        } finally {
            MonitorPageTest.deleteQuietly(folder);
        }
    }

    static void report(Switch meter, int warmupPairs, int pairCount) {
        int measured = pairCount - warmupPairs;
        double[] wall = new double[measured], cpu = new double[measured], step = new double[measured];
        long onWallNanos = 0;
        System.out.println("pair  order     wall on   off (s)  on/off   CPU on/off  steps' ms on/off");
        for (int k = 0; k < pairCount; k++) {
            int first = 1 + 2 * k, onPeriod = meter.on[first] ? first : first + 1;
            int offPeriod = meter.on[first] ? first + 1 : first;
            double wallRatio = (double) meter.wallNanos[onPeriod] / meter.wallNanos[offPeriod];
            double cpuRatio = (double) meter.cpuNanos[onPeriod] / meter.cpuNanos[offPeriod];
            double stepRatio = (double) meter.stepNanos[onPeriod] / meter.stepNanos[offPeriod];
            System.out.printf(
                    "%4d  %-7s %9.2f %9.2f  %6.4f   %6.4f      %6.4f%s%n",
                    k,
                    meter.on[first] ? "on-off" : "off-on",
                    meter.wallNanos[onPeriod] / 1e9,
                    meter.wallNanos[offPeriod] / 1e9,
                    wallRatio,
                    cpuRatio,
                    stepRatio,
                    k < warmupPairs ? "   (warm-up, left out)" : "");
            if (k >= warmupPairs) {
                wall[k - warmupPairs] = Math.log(wallRatio);
                cpu[k - warmupPairs] = Math.log(cpuRatio);
                step[k - warmupPairs] = Math.log(stepRatio);
            }
            onWallNanos += meter.wallNanos[onPeriod]; // every "on" period, as the monitor's costs count them all
        }
        System.out.println(overhead("wall time of whole periods (val loss, steps, monitor)", wall));
        System.out.println(overhead("process CPU time of whole periods", cpu));
        System.out.println(overhead("the trainer's logged step times", step));
        // where the time goes: each step of a period (the first follows the val loss, the last is inspected), the
        // median over the measured pairs of its on/off ratio
        var byStep = new StringBuilder("the logged step times by their place in the period, median pair on/off:");
        for (int position = 0; position < meter.valEvery; position++) {
            double[] ratios = new double[measured];
            for (int k = warmupPairs; k < pairCount; k++) {
                int first = 1 + 2 * k, onPeriod = meter.on[first] ? first : first + 1;
                int offPeriod = meter.on[first] ? first + 1 : first;
                ratios[k - warmupPairs] = meter.stepMillis[onPeriod][position] / meter.stepMillis[offPeriod][position];
            }
            Arrays.sort(ratios);
            byStep.append(" %.3f".formatted(measured == 0 ? Double.NaN : ratios[measured / 2]));
        }
        System.out.println(byStep);
        var costs = meter.monitor.costs();
        double onMs = onWallNanos / 1e6;
        System.out.printf(
                "in-run accounting: the monitor's time on the training thread in the %d 'on' periods (%.1f s):"
                        + " %.3f%% (statistics %.1f ms over %d inspected steps, %.3f%%; attention maps %.2f ms over"
                        + " %d val steps, %.4f%%; events %.2f ms, %.4f%%)%n",
                pairCount,
                onMs / 1000,
                100 * costs.totalNanos() / 1e6 / onMs,
                costs.statisticsNanos() / 1e6,
                costs.inspectedSteps(),
                100 * costs.statisticsNanos() / 1e6 / onMs,
                costs.attentionNanos() / 1e6,
                costs.attentionMaps(),
                100 * costs.attentionNanos() / 1e6 / onMs,
                costs.eventNanos() / 1e6,
                100 * costs.eventNanos() / 1e6 / onMs);
    }

    /**
     * The overhead from the pairs' log ratios, two ways: the geometric mean with Student's 95% interval, and the
     * median pair with a 95% interval that assumes nothing of the spread (on a shared machine a pair now and then
     * catches another process's burst: heavy tails, which the mean follows and the median does not).
     */
    static String overhead(String what, double[] logRatios) {
        int n = logRatios.length;
        double mean = Arrays.stream(logRatios).average().orElse(Double.NaN);
        double variance =
                Arrays.stream(logRatios).map(d -> (d - mean) * (d - mean)).sum() / Math.max(1, n - 1);
        double halfWidth = studentT95(n - 1) * Math.sqrt(variance / n);
        double[] sorted = logRatios.clone();
        Arrays.sort(sorted);
        double median = n == 0 ? Double.NaN : n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
        int k = medianInterval(n);
        String medianInterval = k < 1
                ? "too few pairs for its interval"
                : "95%% CI %+.2f%% to %+.2f%%"
                        .formatted(100 * Math.expm1(sorted[k - 1]), 100 * Math.expm1(sorted[n - k]));
        return "%s (%d pairs; one pair's spread %.2f%%):%n    median pair %+.2f%% (%s); mean %+.2f%% (95%% CI %+.2f%% to %+.2f%%)"
                .formatted(
                        what,
                        n,
                        100 * Math.sqrt(variance),
                        100 * Math.expm1(median),
                        medianInterval,
                        100 * Math.expm1(mean),
                        100 * Math.expm1(mean - halfWidth),
                        100 * Math.expm1(mean + halfWidth));
    }

    /**
     * The rank k (1-based) such that the k-th smallest and the k-th largest of n values bound their median with 95%
     * confidence: the largest k with P(Binomial(n, 1/2) < k) <= 2.5% (the sign test); 0 when n is too small.
     */
    static int medianInterval(int n) {
        double below = 0, term = Math.pow(0.5, n); // P(B = 0)
        int k = 0;
        for (int i = 0; i < n; i++) {
            below += term; // P(B <= i)
            if (below > 0.025) break;
            k = i + 1;
            term = term * (n - i) / (i + 1); // P(B = i + 1)
        }
        return k;
    }

    /** The two-sided 95% quantile of Student's t with {@code df} degrees of freedom. */
    static double studentT95(int df) {
        double[] table = {
            Double.NaN,
            12.706,
            4.303,
            3.182,
            2.776,
            2.571,
            2.447,
            2.365,
            2.306,
            2.262,
            2.228,
            2.201,
            2.179,
            2.160,
            2.145,
            2.131,
            2.120,
            2.110,
            2.101,
            2.093,
            2.086,
            2.080,
            2.074,
            2.069,
            2.064,
            2.060,
            2.056,
            2.052,
            2.048,
            2.045,
            2.042
        };
        return df < 1 ? Double.NaN : df < table.length ? table[df] : df < 60 ? 2.00 : 1.96;
    }

    /**
     * {@code --parts}: each part of the monitor's work on its own (median of 9, after 3 that warm the JIT up), next
     * to a training step of the same model and batch.
     */
    static void parts(GPT2Config modelConfig, int batch, int seqLen) {
        var random = new Random(7);
        int[] inputs = random.ints(batch * seqLen, 0, modelConfig.vocabSize()).toArray();
        int[] targets = random.ints(batch * seqLen, 0, modelConfig.vocabSize()).toArray();
        int[] sequence = Arrays.copyOf(inputs, Math.min(AttentionMaps.SEQUENCE_LENGTH, seqLen));
        try (var model = GPT2.randomInit(modelConfig, GPT2Kernels.of(CpuKernels.Choice.VECTORIZED))) {
            var statistics = new TensorStatistics(model);
            int[] t = {0};
            Runnable forward = () -> model.forward(inputs, targets, batch, seqLen);
            Runnable step = () -> {
                model.zeroGrad();
                forward.run();
                model.backward(1);
                model.update(1e-4f, 0.9f, 0.95f, 1e-8f, 0f, 1f, ++t[0]);
            };
            double stepMs = median(step, null);
            System.out.printf("%s, B=%d, T=%d: a training step %.1f ms%n", modelConfig, batch, seqLen, stepMs);
            var rows = new LinkedHashMap<String, Double>();
            rows.put(
                    "statistics before the update (|g|/|w|, a copy of w)",
                    median(() -> statistics.beforeUpdate(model.parameters(), model.gradients()), null));
            rows.put(
                    "statistics after the update (|dw|/|w|, rms)",
                    median(() -> statistics.afterUpdate(model.parameters()), null));
            rows.put("activation statistics", median(statistics::activations, null));
            rows.put(
                    "attention maps, from the val loss's last forward",
                    median(() -> AttentionMaps.ofLastForward(model, 1, String::valueOf), forward));
            rows.put(
                    "attention maps, a batch-1 forward of their own",
                    median(() -> AttentionMaps.of(model, 1, sequence, String::valueOf), forward));
            forward.run();
            var maps = AttentionMaps.ofLastForward(model, 1, String::valueOf);
            rows.put("JSON: the attention maps", median(() -> JsonText.of(maps), null));
            var stats = Map.of("step", 1, "stats", statistics.afterUpdate(model.parameters()));
            rows.put("JSON: one step's tensor statistics", median(() -> JsonText.of(stats), null));
            // a 500-step run's state: a point per step, statistics every 10 steps, maps
            var monitor = new RunMonitor(model, Map.of("title", "parts"), 10, String::valueOf, null);
            for (int s = 1; s <= 500; s++) {
                if (monitor.inspects(s)) monitor.beforeUpdate(s);
                monitor.stepDone(new TrainingListener.StepLog(s, 500, 4f, 0.1, 1f, 0.2, 1e-3f, 900, 500, false));
            }
            monitor.validated(500, 4f);
            rows.put("JSON: the state of a 500-step run (monitor.json)", median(monitor::snapshot, null));
            for (var row : rows.entrySet())
                System.out.printf(
                        "%-55s %8.3f ms  %7.3f%% of a step%n",
                        row.getKey(), row.getValue(), 100 * row.getValue() / stepMs);
        }
    }

    /** The median time of work in ms, of 9 after 3 warm-ups; {@code before} (untimed) runs before each. */
    static double median(Runnable work, Runnable before) {
        double[] ms = new double[12];
        for (int i = 0; i < ms.length; i++) {
            if (before != null) before.run();
            long start = System.nanoTime();
            work.run();
            ms[i] = (System.nanoTime() - start) / 1e6;
        }
        double[] timed = Arrays.copyOfRange(ms, 3, ms.length);
        Arrays.sort(timed);
        return timed[timed.length / 2];
    }
}
