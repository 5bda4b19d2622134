package dev.llmc4j.cli.monitor;

import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingListener;
import dev.llmc4j.util.AtomicFiles;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.function.IntFunction;

/**
 * What the page shows of a run, kept as it happens: the step lines, val losses, samples, tensor statistics and the
 * latest attention maps. Every change is an event ({@code step}, {@code val}, {@code sample}, {@code tensors},
 * {@code attention}, {@code end}) that goes to each open page (server-sent events) and into the state a page that
 * opens later starts from. With an output folder the state is also written to {@code monitor.json} at every
 * validation and at the end, which {@code ./llmc report} turns into a static page.
 *
 * <p>Cost: the step lines are a few numbers; the tensor statistics (a pass over the parameters and a copy) and the
 * attention maps (one batch-1 forward of {@link AttentionMaps#SEQUENCE_LENGTH} tokens) only every {@code every}
 * steps and at the val steps.
 */
public final class RunMonitor implements TrainingListener {

    /** The file in the output folder that keeps the state for {@code ./llmc report}. */
    public static final String STATE_FILE = "monitor.json";

    private final TrainableModel model;
    private final Inspectable inspectable; // null: a model that shows only its curves and samples (the GPU model)
    private final TensorStatistics statistics;
    private final int every;
    private final int[] attentionIds;
    private final IntFunction<String> tokenText;
    private final Path outputDir;

    private final Map<String, Object> state = new LinkedHashMap<>();
    private final Map<String, Object> header;
    private final List<Object> steps = new ArrayList<>(), val = new ArrayList<>(), samples = new ArrayList<>();
    private final List<Object> tensors = new ArrayList<>(), activations = new ArrayList<>();
    private final List<BlockingQueue<String>> subscribers = new CopyOnWriteArrayList<>();
    // monitor.json is written on a thread of its own: a file written safely (flushed to disk) can take a second on a
    // busy machine, and the training thread should not wait for it
    private final ExecutorService saver =
            Executors.newSingleThreadExecutor(Thread.ofPlatform().daemon().factory());
    private List<Map<String, Object>> pendingActivations;
    private int inspectedStep = -1;

    /**
     * @param run        what the page's header says: title, model, numSteps, ...
     * @param every      tensor statistics every this many steps
     * @param valPattern the val data, whose first tokens the attention maps are drawn for (null: no maps)
     * @param tokenText  a token's text, for the samples' and maps' labels
     * @param outputDir  where monitor.json goes (null: nowhere)
     */
    public RunMonitor(
            TrainableModel model,
            Map<String, Object> run,
            int every,
            String valPattern,
            IntFunction<String> tokenText,
            Path outputDir) {
        this.model = model;
        this.inspectable = model instanceof Inspectable i ? i : null;
        this.statistics = inspectable != null ? new TensorStatistics(inspectable) : null;
        this.every = Math.max(1, every);
        int mapLength = Math.min(AttentionMaps.SEQUENCE_LENGTH, model.maxSeqLen());
        this.attentionIds =
                inspectable != null && valPattern != null ? AttentionMaps.firstTokens(valPattern, mapLength) : null;
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

    // ---- the listener: the Trainer's thread ----

    @Override
    public boolean inspects(int step) {
        return statistics != null && step % every == 0;
    }

    @Override
    public void beforeUpdate(int step) {
        statistics.beforeUpdate(inspectable.parameters(), inspectable.gradients());
        pendingActivations = statistics.activations();
        inspectedStep = step;
    }

    @Override
    public void stepDone(StepLog log) {
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
        if (log.step() == inspectedStep) {
            var stats = statistics.afterUpdate(inspectable.parameters());
            publish("tensors", Map.of("step", log.step(), "stats", stats), tensors);
            publish("activations", Map.of("step", log.step(), "stats", pendingActivations), activations);
            inspectedStep = -1;
        }
    }

    @Override
    public void validated(int step, float valLoss) {
        publish("val", Map.of("step", step, "loss", valLoss), val);
        if (attentionIds != null)
            publish("attention", AttentionMaps.of(inspectable, step, attentionIds, tokenText), null);
        save();
    }

    @Override
    public void sampled(int step, String text) {
        publish("sample", Map.of("step", step, "text", text), samples);
    }

    @Override
    public void finished(Trainer.Result result) {
        synchronized (this) {
            header.put("finished", true);
        }
        publish("end", Map.of("averageStepMillis", result.averageStepMillis()), null);
        save();
        saver.close(); // waits for the last write
    }

    /** Adds an event to the state (to {@code list}, or as the latest of its kind) and sends it to every open page. */
    private void publish(String event, Map<String, Object> data, List<Object> list) {
        String frame;
        synchronized (this) {
            if (list != null) list.add(data);
            else if (state.containsKey(event)) state.put(event, data);
            frame = "event: " + event + "\ndata: " + JsonText.of(data) + "\n\n";
        }
        for (var queue : subscribers) queue.offer(frame); // unbounded queues: never blocks the training thread
    }

    // ---- the pages: the server's threads ----

    /** The whole state as JSON: what a page starts from. */
    public synchronized String snapshot() {
        return JsonText.of(state);
    }

    /** A page's event stream: the state now, then every later event, with nothing lost in between. */
    synchronized String subscribe(BlockingQueue<String> queue) {
        subscribers.add(queue);
        return "event: state\ndata: " + snapshot() + "\n\n";
    }

    void unsubscribe(BlockingQueue<String> queue) {
        subscribers.remove(queue);
    }

    private void save() {
        if (outputDir == null) return;
        byte[] state = snapshot().getBytes(StandardCharsets.UTF_8);
        saver.execute(() -> AtomicFiles.write(outputDir.resolve(STATE_FILE), state));
    }
}
