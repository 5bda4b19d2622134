package dev.llmc4j.cli.monitor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.cli.Llmc;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.train.TrainingListener;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.FutureTask;
import java.util.concurrent.Semaphore;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The monitor page in a real browser (headless Chromium): during a short training run of a tiny GPT-2 the curves
 * grow with the steps, the attention grid has L x NH maps and the samples appear; the static report of the finished
 * run renders with no broken resource. With -Dllmc.screenshots=DIR the pages are saved there as PNGs.
 */
class MonitorPageTest {

    @TempDir
    Path folder;

    /**
     * A fresh Chromium profile outside the test's temporary folder: a browser helper process may still write into it
     * as the test ends, which would make JUnit's clean-up of {@code folder} fail. Deleted on exit, as far as it can be.
     */
    static Path browserProfile(String name) throws java.io.IOException {
        Path profile = java.nio.file.Files.createTempDirectory("llmc4j-chromium-" + name + "-");
        Runtime.getRuntime().addShutdownHook(new Thread(() -> deleteQuietly(profile)));
        return profile;
    }

    static void deleteQuietly(Path root) {
        try (var paths = java.nio.file.Files.walk(root)) {
            paths.sorted(java.util.Comparator.reverseOrder())
                    .forEach(path -> path.toFile().delete());
        } catch (java.io.IOException | java.io.UncheckedIOException ignored) {
            // best effort: a leftover profile in the system's temporary folder harms nothing
        }
    }

    static final int LAYERS = 2, HEADS = 3, STEPS = 12, VAL_EVERY = 5;
    static final Duration PATIENCE = Duration.ofSeconds(60);

    /** Lets the trainer go on only as far as the test allows: the page is looked at between known steps. */
    static final class Gate implements TrainingListener {
        final Semaphore steps = new Semaphore(0);

        @Override
        public void stepDone(StepLog log) {
            steps.acquireUninterruptibly();
        }
    }

    @Test
    void livePageFollowsTheRunAndTheReportRendersIt() throws Exception {
        var chromium = HeadlessChromium.find();
        assumeTrue(chromium.isPresent(), "chromium is not installed (apt-get install chromium): browser test skipped");

        Path train = folder.resolve("train.bin"), val = folder.resolve("val.bin"), run = folder.resolve("run");
        TokenShard.write(train, TokenShard.Kind.GPT2, RandomTokens.of(4096, 256, 1));
        TokenShard.write(val, TokenShard.Kind.GPT2, RandomTokens.of(1024, 256, 2));
        var config = new TrainingConfig(
                train.toString(),
                val.toString(),
                2,
                16,
                -1,
                STEPS,
                1e-3f,
                0,
                1.0f,
                "cosine",
                0f,
                1.0f,
                VAL_EVERY,
                2,
                VAL_EVERY,
                8,
                false,
                run,
                STEPS,
                0,
                0,
                false,
                0,
                0,
                null,
                1,
                0);
        var gate = new Gate();
        var log = new ByteArrayOutputStream();
        try (var model = GPT2.randomInit(new GPT2Config(64, 256, 256, LAYERS, HEADS, 24))) {
            var monitor =
                    new RunMonitor(model, MonitorOptions.describe(model, config, "test run"), 2, id -> "t" + id, run);
            try (var server = new MonitorServer(monitor, "127.0.0.1", 0)) {
                var trainer = new Trainer(
                                model,
                                config,
                                new PrintStream(log, true, StandardCharsets.UTF_8),
                                new Trainer.SampleText(0, null))
                        .listen(monitor)
                        .listen(gate);
                // a thread of its own: on the common pool (one thread on two cores) the waiting trainer would starve
                // the
                // HTTP client's handshake with Chromium
                var training = new FutureTask<>(trainer::run);
                Thread.ofPlatform().name("training").daemon().start(training);
                try (var browser =
                        new HeadlessChromium(chromium.get(), server.url(), browserProfile("live"), 1400, 2200)) {
                    // the gate holds the trainer in the step after the released ones: that step is shown already
                    gate.steps.release(VAL_EVERY); // steps 1..5 pass; val and sample at 5; step 6 waits
                    browser.waitFor(
                            "document.querySelectorAll('#samples .sample').length", v -> count(v) == 1, PATIENCE);
                    browser.waitFor(points("chart-loss", 0), v -> count(v) == VAL_EVERY + 1, PATIENCE);

                    gate.steps.release(VAL_EVERY); // steps 6..10 pass; step 11 waits
                    browser.waitFor(points("chart-loss", 0), v -> count(v) == 2 * VAL_EVERY + 1, PATIENCE);
                    for (String chart : List.of("chart-norm", "chart-z", "chart-lr", "chart-ms"))
                        assertEquals(
                                2 * VAL_EVERY + 1,
                                count(browser.evaluate(points(chart, 0))),
                                chart + " grows with the steps");
                    assertEquals(3, count(browser.evaluate(points("chart-loss", 1))), "val loss at steps 0, 5 and 10");
                    assertEquals(
                            LAYERS * HEADS,
                            count(browser.evaluate("document.querySelectorAll('#attention-grid canvas').length")));
                    assertTrue(
                            count(browser.evaluate("llmcMonitor.charts['chart-update'].data.datasets.length"))
                                    >= LAYERS,
                            "update ratios: a line per layer");
                    assertEquals(
                            "step 10",
                            browser.evaluate("document.querySelectorAll('#samples .sample h3')[1].textContent"));
                    browser.evaluate("document.querySelector('#attention-grid figure').click()");
                    browser.waitFor("document.getElementById('attention-dialog').open", Boolean.TRUE::equals, PATIENCE);
                    // the maps are those of the val loss's last batch (batch 1 of 2: tokens from B*T on), row 0
                    assertEquals(
                            "t" + TokenShard.open(val).token(config.batchSize() * config.seqLen()),
                            browser.evaluate(
                                    "Chart.getChart('chart-attention-big').scales.x.ticks.find(t => t.value === 0).label"),
                            "tokens label the axes");
                    screenshot(browser, "ui-attention.png");
                    browser.evaluate("document.getElementById('attention-dialog').close()");
                    screenshot(browser, "ui-live.png");
                    assertEquals(List.of(), browser.evaluate("llmcErrors"));

                    gate.steps.release(STEPS);
                    training.get();
                    browser.waitFor("document.getElementById('status').textContent", "finished"::equals, PATIENCE);
                }
            }
        }

        // the finished run's report: monitor.json and model_00000012.bin -> run/report/index.html
        assertEquals(0, Llmc.execute("report", run.toString()));
        Path index = run.resolve("report/index.html");
        String html = Files.readString(index);
        var resource = Pattern.compile("(?:src|href)=\"([^\"]+)\"").matcher(html);
        while (resource.find()) assertTrue(Files.exists(index.resolveSibling(resource.group(1))), resource.group(1));
        try (var browser =
                new HeadlessChromium(chromium.get(), index.toUri().toString(), browserProfile("report"), 1400, 2200)) {
            browser.waitFor(points("chart-loss", 0), v -> count(v) == STEPS, PATIENCE);
            assertEquals(
                    LAYERS * HEADS,
                    count(browser.evaluate("document.querySelectorAll('#attention-grid canvas').length")));
            assertEquals(3, count(browser.evaluate("document.querySelectorAll('#samples .sample').length")));
            assertEquals(
                    "step 12",
                    browser.evaluate("document.getElementById('attention-caption').textContent.split(':')[0]"));
            assertEquals(List.of(), browser.evaluate("llmcErrors"), "no script error, no file that failed to load");
            screenshot(browser, "ui-report.png");
        }
    }

    private static String points(String chart, int dataset) {
        return "llmcMonitor.charts['%s'].data.datasets[%d].data.length".formatted(chart, dataset);
    }

    private static int count(Object value) {
        return value instanceof Number n ? n.intValue() : -1;
    }

    private static void screenshot(HeadlessChromium browser, String name) throws Exception {
        String folder = System.getProperty("llmc.screenshots");
        if (folder != null) Files.write(Path.of(folder, name), browser.screenshot());
    }
}
