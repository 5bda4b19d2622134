package dev.llmc4j.bench;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.awt.Font;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.LocalDate;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.TimeUnit;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.AxisLocation;
import org.jfree.chart.axis.CategoryAxis;
import org.jfree.chart.labels.StandardCategoryItemLabelGenerator;
import org.jfree.chart.plot.CategoryPlot;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.category.CategoryDataset;
import org.jfree.data.category.DefaultCategoryDataset;

/**
 * The speed ladder, as "Let's reproduce GPT-2" climbs one: tokens per second of a GPT-2 training step (forward,
 * backward, AdamW) after each CPU optimization, every rung measured the same way on the reader's own machine.
 *
 * <pre>
 *   SpeedLadder [MODEL [B [T [STEPS [WARMUP]]]]] [--adoc FILE] [--svg FILE] [--one-at-a-time]
 *                                                                                defaults: d6 4 64 5 2
 *     MODEL: d6, d12, ... or L,NH,C (e.g. 2,2,64: a tiny GPT-2 with the real vocabulary)
 * </pre>
 *
 * Each rung runs in a JVM of its own, because the thread count ({@link dev.llmc4j.cpu.Parallel}) is fixed when a
 * JVM starts: {@code -Dllmc.kernels} picks the kernel set, {@code -Dllmc.threads} the threads, and the rung's
 * recompute level is GPT2's {@code -r}. The rungs take turns, one step each per round (see {@link #climb}); each
 * rung's figure is the median of its STEPS steps after WARMUP warm-up rounds (the JIT compiles during the first).
 * The ladder prints a table (ms per step, tokens/s = B*T / step time, the speedup over
 * the rung before and over the first) and, if asked, writes it as an AsciiDoc table and as a bar chart (SVG,
 * JFreeChart). Benchmarks/scripts/speed-ladder.sh builds the jar and runs this.
 */
public final class SpeedLadder {
    private SpeedLadder() {}

    /**
     * One rung: a kernel set ({@code -Dllmc.kernels}), one thread or all of them, GPT2's recompute level, and any
     * further JVM options a new optimization is switched on with (e.g. a system property).
     */
    public record Rung(String name, String kernels, boolean allThreads, int recompute, List<String> jvmOptions) {
        static Rung of(String name, String kernels, boolean allThreads, int recompute, String... jvmOptions) {
            return new Rung(name, kernels, allThreads, recompute, List.of(jvmOptions));
        }

        int threads() {
            return allThreads ? Runtime.getRuntime().availableProcessors() : 1;
        }
    }

    /**
     * The rungs, bottom to top. A new optimization is one more line here: its name, and the kernel set, threads,
     * recompute level and JVM options that turn it on. Recompute (-r 1: GELU's output recomputed in the backward,
     * -r 2: the layernorms' too) comes last: it buys memory with time, so its rungs measure what that costs.
     */
    public static final List<Rung> RUNGS = List.of(
            Rung.of("plain loops, 1 thread", "baseline", false, 0),
            Rung.of("plain loops, all threads", "baseline", true, 0),
            Rung.of("Vector API, 1 thread", "vectorized", false, 0),
            Rung.of("Vector API, all threads", "vectorized", true, 0),
            Rung.of("+ recompute GELU (-r 1)", "vectorized", true, 1),
            Rung.of("+ recompute layernorms (-r 2)", "vectorized", true, 2));

    /** What one rung measured: the median step and the activation floats the model kept for its backward. */
    public record Result(Rung rung, double stepMs, long activationFloats) {
        double tokensPerSecond(int B, int T) {
            return B * T / (stepMs / 1000);
        }
    }

    /** MODEL as a descriptor (d6, d12, ...) or as "L,NH,C" with GPT-2's vocabulary and context. */
    static GPT2Config model(String spec) {
        if (!spec.contains(",")) return GPT2Config.fromDescriptor(spec);
        String[] parts = spec.split(",");
        if (parts.length != 3) throw new LlmcException("model: expected d6, d12, ... or L,NH,C, found " + spec);
        try {
            return GPT2Config.of(
                    Integer.parseInt(parts[0].trim()),
                    Integer.parseInt(parts[1].trim()),
                    Integer.parseInt(parts[2].trim()));
        } catch (NumberFormatException e) {
            throw new LlmcException("model: expected d6, d12, ... or L,NH,C, found " + spec);
        }
    }

    /**
     * Runs every rung of {@code rungs}, each in a JVM of its own, and returns what they measured. With
     * {@code alternate} all the rungs' JVMs are alive at once and take one step each in turn, round after round, so
     * that a change in what else runs on the machine falls on every rung alike (the medians are then comparable on
     * a shared machine); it holds every rung's model in memory together. Without, one rung after another.
     */
    public static List<Result> climb(
            List<Rung> rungs, String model, int B, int T, int steps, int warmup, boolean alternate) {
        model(model); // a bad MODEL fails here, once, not in every child
        var times = new double[rungs.size()][steps];
        var activations = new long[rungs.size()];
        var running = new ArrayList<RungProcess>();
        try {
            if (alternate) {
                for (Rung rung : rungs) running.add(RungProcess.start(rung, model, B, T));
                for (int s = 0; s < warmup + steps; s++) {
                    for (int r = 0; r < rungs.size(); r++) {
                        double ms = running.get(r).step();
                        if (s >= warmup) times[r][s - warmup] = ms;
                    }
                    System.out.printf(
                            Locale.ROOT, "  round %d of %d%s%n", s + 1, warmup + steps, s < warmup ? " (warm-up)" : "");
                }
                for (int r = 0; r < rungs.size(); r++) activations[r] = running.get(r).activationFloats;
            } else {
                for (int r = 0; r < rungs.size(); r++) {
                    try (var rung = RungProcess.start(rungs.get(r), model, B, T)) {
                        for (int s = 0; s < warmup + steps; s++) {
                            double ms = rung.step();
                            if (s >= warmup) times[r][s - warmup] = ms;
                        }
                        activations[r] = rung.activationFloats;
                    }
                    System.out.printf(
                            Locale.ROOT,
                            "  %-32s %10.1f ms/step%n",
                            rungs.get(r).name(),
                            StepBench.median(times[r]));
                }
            }
        } finally {
            for (var rung : running) rung.close();
        }
        var results = new ArrayList<Result>();
        for (int r = 0; r < rungs.size(); r++)
            results.add(new Result(rungs.get(r), StepBench.median(times[r]), activations[r]));
        return results;
    }

    /**
     * One rung's JVM: it builds the model and answers "ready ACTIVATION_FLOATS", then runs one training step per
     * "step" it reads and answers "ms MILLISECONDS"; "quit" ends it. Other lines it prints (the JVM's warnings) are
     * kept for the error message.
     */
    static final class RungProcess implements AutoCloseable {
        final Rung rung;
        final Process process;
        final BufferedReader out;
        final PrintWriter commands;
        final List<String> command;
        final StringBuilder otherOutput = new StringBuilder();
        long activationFloats;

        private RungProcess(Rung rung, List<String> command) throws IOException {
            this.rung = rung;
            this.command = command;
            this.process = new ProcessBuilder(command).redirectErrorStream(true).start();
            this.out = new BufferedReader(new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8));
            this.commands = new PrintWriter(process.outputWriter(StandardCharsets.UTF_8), true); // flushes each line
        }

        static RungProcess start(Rung rung, String model, int B, int T) {
            var command = new ArrayList<String>();
            command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
            command.addAll(List.of("--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"));
            command.add("-Dllmc.kernels=" + rung.kernels());
            command.add("-Dllmc.threads=" + rung.threads());
            command.addAll(rung.jvmOptions());
            command.addAll(List.of("-cp", System.getProperty("java.class.path"), SpeedLadder.class.getName()));
            command.addAll(List.of("--rung", model, "" + B, "" + T, "" + rung.recompute()));
            try {
                var child = new RungProcess(rung, command);
                child.activationFloats = Long.parseLong(child.answer("ready "));
                return child;
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
        }

        /** One training step in the child; its ms. */
        double step() {
            commands.println("step");
            return Double.parseDouble(answer("ms "));
        }

        /** The next line that starts with {@code prefix}, without it. */
        private String answer(String prefix) {
            try {
                for (String line; (line = out.readLine()) != null; ) {
                    if (line.startsWith(prefix)) return line.substring(prefix.length());
                    otherOutput.append(line).append('\n');
                }
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            throw new IllegalStateException("rung '" + rung.name() + "' ended without an answer: "
                    + String.join(" ", command) + "\n" + otherOutput);
        }

        @Override
        public void close() {
            if (process.isAlive()) {
                commands.println("quit");
            }
            try {
                if (!process.waitFor(30, TimeUnit.SECONDS)) process.destroyForcibly();
            } catch (InterruptedException e) {
                process.destroyForcibly();
                Thread.currentThread().interrupt();
            }
        }
    }

    /** In the rung's own JVM: the model, then one training step per "step" on stdin (see {@link RungProcess}). */
    static void serveRung(String model, int B, int T, int recompute) throws IOException {
        var bench = new StepBench(model(model), B, T, recompute);
        System.out.println("ready " + bench.activationFloats());
        var in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        for (String line; (line = in.readLine()) != null && !line.equals("quit"); ) {
            if (!line.equals("step")) throw new IllegalArgumentException("unknown command " + line);
            double[] t = bench.trainStep();
            System.out.printf(Locale.ROOT, "ms %.3f%n", t[0] + t[1] + t[2]);
        }
    }

    /** The table: one row per rung, ms per step, tokens/s, the speedup over the rung before and over the first. */
    public static String table(List<Result> results, int B, int T) {
        var out = new StringBuilder();
        out.append(String.format(
                Locale.ROOT,
                "%-32s %-10s %7s %3s %11s %10s %9s %9s %10s%n",
                "rung",
                "kernels",
                "threads",
                "-r",
                "ms/step",
                "tokens/s",
                "vs prev",
                "vs first",
                "act. MiB"));
        out.append(rows(results, B, T, "%-32s %-10s %7d %3d %11.1f %10.1f %9s %9s %10.1f%n", "%s"));
        return out.toString();
    }

    /**
     * One line per rung in {@code format}: name, kernels, threads, -r, ms/step, tokens/s, the speedup over the rung
     * before (empty for the first), the speedup over the first (in {@code overFirst}, e.g. bold), activation MiB.
     */
    private static String rows(List<Result> results, int B, int T, String format, String overFirst) {
        var out = new StringBuilder();
        for (int i = 0; i < results.size(); i++) {
            Result r = results.get(i);
            out.append(String.format(
                    Locale.ROOT,
                    format,
                    r.rung().name(),
                    r.rung().kernels(),
                    r.rung().threads(),
                    r.rung().recompute(),
                    r.stepMs(),
                    r.tokensPerSecond(B, T),
                    i == 0 ? "" : speedup(results.get(i - 1), r),
                    overFirst.formatted(speedup(results.get(0), r)),
                    r.activationFloats() * 4 / 1048576.0));
        }
        return out.toString();
    }

    /** How many times faster {@code later} is than {@code earlier}: "12.3x" (below 1: slower). */
    static String speedup(Result earlier, Result later) {
        return String.format(Locale.ROOT, "%.2fx", earlier.stepMs() / later.stepMs());
    }

    /** The same table as AsciiDoc, for the docs' performance page. */
    public static String asciidocTable(List<Result> results, int B, int T) {
        var out = new StringBuilder();
        out.append("[cols=\"4,2,1,1,2,2,2,2,2\",options=\"header\"]\n|===\n");
        out.append("| rung | kernels | threads | -r | ms/step | tokens/s | vs previous | vs first | activations\n");
        out.append(rows(results, B, T, "| %s | %s | %d | %d | %,.1f | %,.1f | %s | %s | %,.1f MiB%n", "*%s*"));
        return out.append("|===\n").toString();
    }

    /** A horizontal bar chart of tokens/s per rung, each bar labelled with its value, drawn by JFreeChart. */
    public static String svgChart(List<Result> results, String title, int B, int T) {
        var data = new DefaultCategoryDataset();
        for (Result r : results)
            data.addValue(r.tokensPerSecond(B, T), "tokens/s", r.rung().name());
        JFreeChart chart =
                BarCharts.barChart(title, "tokens/s (higher is better)", data, PlotOrientation.HORIZONTAL, false, 15);
        CategoryPlot plot = chart.getCategoryPlot();
        plot.setRangeAxisLocation(AxisLocation.BOTTOM_OR_LEFT);
        CategoryAxis rungs = plot.getDomainAxis();
        rungs.setMaximumCategoryLabelWidthRatio(0.45f);
        rungs.setTickLabelFont(new Font("SansSerif", Font.PLAIN, 12));
        var renderer = BarCharts.bars(chart);
        renderer.setMaximumBarWidth(0.12);
        // each bar: its tokens/s and how many times the first rung's
        renderer.setDefaultItemLabelGenerator(new StandardCategoryItemLabelGenerator() {
            @Override
            public String generateLabel(CategoryDataset dataset, int row, int column) {
                return String.format(
                        Locale.ROOT,
                        "%,.0f tokens/s (%s)",
                        dataset.getValue(row, column).doubleValue(),
                        speedup(results.get(0), results.get(column)));
            }
        });
        renderer.setDefaultItemLabelsVisible(true);
        renderer.setDefaultItemLabelFont(new Font("SansSerif", Font.PLAIN, 11));
        plot.getRangeAxis().setUpperMargin(0.3); // room for the longest bar's label
        return BarCharts.svg(chart, 860, 120 + 44 * results.size());
    }

    /**
     * The AsciiDoc table to {@code adoc}, after a line saying what was measured ({@code setup}) and when, and the
     * chart to {@code svg}, each atomically; null: not written.
     */
    static void writeOutputs(List<Result> results, String model, int B, int T, String setup, Path adoc, Path svg) {
        if (adoc != null) {
            String text =
                    "// written by benchmarks/scripts/speed-ladder.sh --adoc (SpeedLadder): rerun it, do not edit\n"
                            + "Measured: " + setup + ", " + LocalDate.now() + ".\n\n" + asciidocTable(results, B, T);
            AtomicFiles.write(adoc, text.getBytes(StandardCharsets.UTF_8));
            System.out.println("table: " + adoc);
        }
        if (svg != null) {
            String title = String.format(Locale.ROOT, "Speed ladder: GPT-2 %s training step, B=%d, T=%d", model, B, T);
            AtomicFiles.write(svg, svgChart(results, title, B, T).getBytes(StandardCharsets.UTF_8));
            System.out.println("chart: " + svg);
        }
    }

    /** The CPU's model name from /proc/cpuinfo (Linux), else the architecture. */
    static String cpuName() {
        try (var lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(line -> line.startsWith("model name"))
                    .map(line -> line.substring(line.indexOf(':') + 1).trim())
                    .findFirst()
                    .orElse(System.getProperty("os.arch"));
        } catch (IOException | UncheckedIOException e) {
            return System.getProperty("os.arch");
        }
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("java.awt.headless", "true");
        if (args.length > 0 && args[0].equals("--rung")) {
            serveRung(args[1], Integer.parseInt(args[2]), Integer.parseInt(args[3]), Integer.parseInt(args[4]));
            return;
        }
        var positional = new ArrayList<String>();
        Path adoc = null, svg = null;
        boolean alternate = true;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--adoc" -> adoc = Path.of(args[++i]);
                case "--svg" -> svg = Path.of(args[++i]);
                case "--one-at-a-time" -> alternate = false;
                default -> positional.add(args[i]);
            }
        }
        String model = positional.size() > 0 ? positional.get(0) : "d6";
        int B = positional.size() > 1 ? Integer.parseInt(positional.get(1)) : 4;
        int T = positional.size() > 2 ? Integer.parseInt(positional.get(2)) : 64;
        int steps = positional.size() > 3 ? Integer.parseInt(positional.get(3)) : 5;
        int warmup = positional.size() > 4 ? Integer.parseInt(positional.get(4)) : 2;
        String setup = String.format(
                Locale.ROOT,
                "GPT-2 %s, B=%d, T=%d, fp32; median of %d steps after %d warm-up%s; %d cores (%s), JDK %s",
                model,
                B,
                T,
                steps,
                warmup,
                alternate ? ", the rungs taking turns" : ", one rung after another",
                Runtime.getRuntime().availableProcessors(),
                cpuName(),
                Runtime.version().feature());
        System.out.println("speed ladder: " + setup);
        List<Result> results;
        try {
            results = climb(RUNGS, model, B, T, steps, warmup, alternate);
        } catch (LlmcException e) { // bad input: one line, no stack trace
            System.err.println("speed ladder: " + e.getMessage());
            System.exit(2);
            return;
        }
        System.out.println();
        System.out.print(table(results, B, T));
        writeOutputs(results, model, B, T, setup, adoc, svg);
    }
}
