package dev.llmc4j.cli.monitor;

import dev.llmc4j.cli.Range;
import dev.llmc4j.format.TokenizerFile;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.IntFunction;
import picocli.CommandLine.Option;

/** The {@code --ui} flags of the train commands: a picocli mixin. */
public final class MonitorOptions {

    @Range(min = 0, max = 65535, also = -1) // -1: no --ui
    @Option(
            names = "--ui",
            arity = "0..1",
            paramLabel = "PORT",
            defaultValue = "-1",
            fallbackValue = "8080",
            description = "serve a live page of the run (curves, gradient and update ratios, attention maps, samples) "
                    + "on this port (default 8080; 0: any free port); rank 0 serves it")
    int port;

    @Option(
            names = "--ui-bind",
            paramLabel = "ADDRESS",
            defaultValue = "127.0.0.1",
            description = "--ui: the address to serve on (default: ${DEFAULT-VALUE}, this machine only)")
    String bind;

    @Range(min = 0, max = Integer.MAX_VALUE) // 0: every -v steps
    @Option(
            names = "--ui-every",
            paramLabel = "N",
            defaultValue = "0",
            description = "--ui: gradient, update and activation statistics every N steps (default: -v's)")
    int every;

    public boolean enabled() {
        return port >= 0;
    }

    /** The port --ui asked for (0: any free one), -1 without --ui. */
    public int port() {
        return port;
    }

    /**
     * A monitor and the server showing it; closing stops the server and prints what the monitor cost the run: its
     * time on the training thread, against the time since the page opened.
     */
    public record Session(RunMonitor monitor, MonitorServer server, PrintStream out, long openedNanos)
            implements AutoCloseable {
        @Override
        public void close() {
            server.close();
            out.println(costLine(monitor.costs(), System.nanoTime() - openedNanos));
        }
    }

    /** "monitor: 0.12% of the run on the training thread (statistics ..., attention maps ..., events ...)". */
    static String costLine(RunMonitor.Costs costs, long runNanos) {
        return "monitor: %.2f%% of the run's %.1f s on the training thread (statistics %.0f ms over %d steps, attention"
                        .formatted(
                                100.0 * costs.totalNanos() / runNanos,
                                runNanos / 1e9,
                                costs.statisticsNanos() / 1e6,
                                costs.inspectedSteps())
                + " maps %.1f ms over %d val steps, events %.1f ms)"
                        .formatted(costs.attentionNanos() / 1e6, costs.attentionMaps(), costs.eventNanos() / 1e6);
    }

    /**
     * Starts the page for a run: on rank 0 and with --ui, else null (try-with-resources skips a null).
     *
     * @param title     the page's heading, e.g. "GPT-2 d4"
     * @param tokenText a token's text, for the samples and the maps' labels
     */
    public Session open(
            TrainableModel model, TrainingConfig config, String title, IntFunction<String> tokenText, PrintStream out) {
        if (!enabled() || config.rank() != 0) return null;
        if (port > 65535) throw new LlmcException("--ui: expected a port in 0..65535, found " + port);
        if (every < 0) throw new LlmcException("--ui-every: expected at least 1 step, found " + every);
        long opened = System.nanoTime();
        var monitor = new RunMonitor(
                model,
                describe(model, config, title),
                every > 0 ? every : config.valEvery(),
                tokenText,
                config.outputDir());
        var server = new MonitorServer(monitor, bind, port);
        out.println("monitor: " + server.url()
                + (config.outputDir() != null
                        ? " (and ./llmc report " + config.outputDir() + " when it is done)"
                        : ""));
        return new Session(monitor, server, out, opened);
    }

    /** A GPT-2 token's text from an llm.c tokenizer file (its id where there is no file), for samples and labels. */
    public static IntFunction<String> gpt2TokenText(Path tokenizerFile) {
        if (tokenizerFile == null) return String::valueOf;
        return TokenizerFile.readIfPresent(tokenizerFile)
                .<IntFunction<String>>map(t -> id -> new String(t.printable(id), StandardCharsets.UTF_8))
                .orElse(String::valueOf);
    }

    static Map<String, Object> describe(TrainableModel model, TrainingConfig config, String title) {
        var run = new LinkedHashMap<String, Object>();
        run.put("title", title);
        run.put("parameters", model.numParameters());
        run.put("batchSize", config.batchSize());
        run.put("seqLen", config.seqLen());
        run.put("processes", config.numProcesses());
        run.put("valEvery", config.valEvery());
        run.put("sampleEvery", config.sampleEvery());
        return run;
    }
}
