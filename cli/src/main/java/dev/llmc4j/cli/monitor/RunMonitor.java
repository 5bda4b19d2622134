package dev.llmc4j.cli.monitor;

import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingListener;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.Callable;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.ThreadPoolExecutor;
import java.util.concurrent.TimeUnit;
import java.util.function.IntFunction;

/**
 * What the page shows of a run, kept as it happens: the step lines, val losses, samples, tensor statistics and the
 * latest attention maps. Every change is an event ({@code step}, {@code val}, {@code sample}, {@code tensors},
 * {@code attention}, {@code end}) that goes to each open page (server-sent events) and into the state a page that
 * opens later starts from. With an output folder the state is also written to {@code monitor.json} at every
 * validation and at the end, which {@code ./llmc report} turns into a static page.
 *
 * <p>What the training thread pays (the rest happens on the monitor's own thread):
 * <ul>
 *   <li>every step: a map of ten numbers handed to the monitor's thread (microseconds);
 *   <li>every {@code every} steps (default {@code -v}): the tensor statistics, two passes over the parameters
 *       ({@link TensorStatistics});
 *   <li>every val step: the attention maps, copied out of the val loss's own last forward (no forward of their own).
 * </ul>
 * The state is confined to one thread, the publisher: it applies each event, writes its JSON for the open pages and
 * the state's JSON for monitor.json and for pages that open, so neither JSON nor a slow page ever holds up the
 * training thread.
 */
public final class RunMonitor implements TrainingListener {

    /** The file in the output folder that keeps the state for {@code ./llmc report}. */
    public static final String STATE_FILE = "monitor.json";

    /** The monitor's time on the training thread: what the run waited for, per part, in nanoseconds. */
    public record Costs(
            long statisticsNanos, int inspectedSteps, long attentionNanos, int attentionMaps, long eventNanos) {
        public long totalNanos() {
            return statisticsNanos + attentionNanos + eventNanos;
        }
    }

    private final Inspectable inspectable; // null: a model that shows only its curves and samples (the GPU model)
    private final TensorStatistics statistics;
    private final int every;
    private final IntFunction<String> tokenText;
    private final Path outputDir;

    // ---- the state: read and written on the publisher thread only ----
    private final Map<String, Object> state = new LinkedHashMap<>();
    private final Map<String, Object> header;
    private final List<Object> steps = new ArrayList<>(), val = new ArrayList<>(), samples = new ArrayList<>();
    private final List<Object> tensors = new ArrayList<>(), activations = new ArrayList<>();
    private final List<BlockingQueue<String>> subscribers = new ArrayList<>();
    private final ExecutorService publisher = singleThread("llmc-monitor");
    // monitor.json is written on a thread of its own: a file written safely (flushed to disk) can take a second on a
    // busy machine, and the events should not wait for it
    private final ExecutorService saver = singleThread("llmc-monitor-save");
    private volatile RuntimeException saveFailure; // a write of monitor.json that failed, reported by finished()

    // ---- the training thread's ----
    private List<Map<String, Object>> pendingActivations;
    private int inspectedStep = -1;
    private long statisticsNanos, attentionNanos, eventNanos;
    private int inspectedSteps, attentionMaps;

    /**
     * @param run       what the page's header says: title, model, numSteps, ...
     * @param every     tensor statistics every this many steps
     * @param tokenText a token's text, for the samples' and maps' labels
     * @param outputDir where monitor.json goes (null: nowhere)
     */
    public RunMonitor(
            TrainableModel model, Map<String, Object> run, int every, IntFunction<String> tokenText, Path outputDir) {
        this.inspectable = model instanceof Inspectable i ? i : null;
        this.statistics = inspectable != null ? new TensorStatistics(inspectable) : null;
        this.every = Math.max(1, every);
        this.tokenText = tokenText;
        this.outputDir = outputDir;
        this.header = new LinkedHashMap<>(run);
        header.put("inspectable", inspectable != null);
        header.put("statisticsEvery", this.every);
        header.put("finished", false);
        state.put("run", header);
        state.put("steps", steps);
        state.put("val", val);
        state.put("tensors", tensors);
        state.put("activations", activations);
        state.put("attention", null);
        state.put("samples", samples);
    }

    /** One thread that runs tasks in order and ends when idle for a while (so a finished monitor holds none). */
    private static ExecutorService singleThread(String name) {
        var executor = new ThreadPoolExecutor(
                1,
                1,
                10,
                TimeUnit.SECONDS,
                new LinkedBlockingQueue<>(),
                Thread.ofPlatform().name(name).daemon().factory());
        executor.allowCoreThreadTimeOut(true);
        return executor;
    }

    // ---- the listener: the Trainer's thread ----

    @Override
    public boolean inspects(int step) {
        return statistics != null && step % every == 0;
    }

    @Override
    public void beforeUpdate(int step) {
        long start = System.nanoTime();
        statistics.beforeUpdate(inspectable.parameters(), inspectable.gradients());
        pendingActivations = statistics.activations();
        inspectedStep = step;
        statisticsNanos += System.nanoTime() - start;
    }

    @Override
    public void stepDone(StepLog log) {
        long start = System.nanoTime();
        var point = new LinkedHashMap<String, Object>();
        point.put("step", log.step());
        point.put("numSteps", log.numSteps());
        point.put("loss", log.loss());
        point.put("lossZ", log.lossZ());
        point.put("norm", log.norm());
        point.put("normZ", log.normZ());
        point.put("lr", log.learningRate());
        point.put("ms", log.millis());
        point.put("tokensPerSecond", log.tokensPerSecond() < 0 ? null : log.tokensPerSecond());
        point.put("skipped", log.skipped());
        publish("step", point, steps);
        long afterEvent = System.nanoTime();
        eventNanos += afterEvent - start;
        if (log.step() == inspectedStep) {
            var stats = statistics.afterUpdate(inspectable.parameters());
            publish("tensors", Map.of("step", log.step(), "stats", stats), tensors);
            publish("activations", Map.of("step", log.step(), "stats", pendingActivations), activations);
            inspectedStep = -1;
            inspectedSteps++;
            statisticsNanos += System.nanoTime() - afterEvent;
        }
    }

    @Override
    public void validated(int step, float valLoss) {
        long start = System.nanoTime();
        publish("val", Map.of("step", step, "loss", valLoss), val);
        save();
        long afterEvent = System.nanoTime();
        eventNanos += afterEvent - start;
        // the maps of the val loss's last forward; none without a val loss (no val data: the last forward was not
        // over val tokens)
        if (inspectable != null && !Float.isNaN(valLoss)) {
            var maps = AttentionMaps.ofLastForward(inspectable, step, tokenText);
            if (maps != null) {
                publish("attention", maps, null);
                attentionMaps++;
            }
            attentionNanos += System.nanoTime() - afterEvent;
        }
    }

    @Override
    public void sampled(int step, String text) {
        long start = System.nanoTime();
        publish("sample", Map.of("step", step, "text", text), samples);
        eventNanos += System.nanoTime() - start;
    }

    @Override
    public void finished(Trainer.Result result) {
        publisher.execute(() -> header.put("finished", true));
        publish("end", Map.of("averageStepMillis", result.averageStepMillis()), null);
        save();
        onPublisher(() -> null); // every event applied, the last save handed on
        try {
            saver.submit(
                            () -> { // and written: a write that failed on the way fails the run here
                                if (saveFailure != null) throw saveFailure;
                            })
                    .get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (ExecutionException e) {
            throw new LlmcException(
                    "--ui: cannot write " + STATE_FILE + ": " + e.getCause().getMessage(), e);
        }
    }

    /** The monitor's time on the training thread so far. */
    public Costs costs() {
        return new Costs(statisticsNanos, inspectedSteps, attentionNanos, attentionMaps, eventNanos);
    }

    /**
     * Hands an event to the publisher, which adds it to the state (to {@code list}, or as the latest of its kind) and
     * sends it to every open page. The data must not change afterwards: it now belongs to the publisher.
     */
    private void publish(String event, Map<String, Object> data, List<Object> list) {
        publisher.execute(() -> {
            if (list != null) list.add(data);
            else if (state.containsKey(event)) state.put(event, data);
            if (subscribers.isEmpty()) return;
            String frame = "event: " + event + "\ndata: " + JsonText.of(data) + "\n\n";
            for (var queue : subscribers) queue.offer(frame); // unbounded queues: never blocks
        });
    }

    /** The state as JSON, then written to monitor.json on the saver's thread. */
    private void save() {
        if (outputDir == null) return;
        publisher.execute(() -> {
            byte[] json = JsonText.of(state).getBytes(StandardCharsets.UTF_8);
            saver.execute(() -> {
                try {
                    AtomicFiles.write(outputDir.resolve(STATE_FILE), json);
                } catch (RuntimeException e) {
                    saveFailure = e;
                }
            });
        });
    }

    // ---- the pages: the server's threads ----

    /** The whole state as JSON, after every event handed over so far: what a page starts from. */
    public String snapshot() {
        return onPublisher(() -> JsonText.of(state));
    }

    /** A page's event stream: the state now, then every later event, with nothing lost in between. */
    String subscribe(BlockingQueue<String> queue) {
        return onPublisher(() -> {
            subscribers.add(queue);
            return "event: state\ndata: " + JsonText.of(state) + "\n\n";
        });
    }

    void unsubscribe(BlockingQueue<String> queue) {
        publisher.execute(() -> subscribers.remove(queue));
    }

    /** Runs work on the publisher after everything handed to it before, and waits for its result. */
    private <T> T onPublisher(Callable<T> work) {
        try {
            return publisher.submit(work).get();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the monitor", e);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException runtime) throw runtime;
            throw new IllegalStateException(e.getCause());
        }
    }
}
