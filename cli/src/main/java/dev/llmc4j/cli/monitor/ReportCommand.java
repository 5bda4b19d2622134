package dev.llmc4j.cli.monitor;

import dev.llmc4j.format.Json;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Checkpoint;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.OutlierDetector;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.IntFunction;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code ./llmc report DIR}: the --ui page of a finished run as static files, to share or put in the docs. The
 * curves come from the run's monitor.json (written by --ui: with the z-scores, skipped steps, tensor statistics and
 * samples) or else from main.log; the attention maps from the latest model checkpoint in the folder.
 */
@Command(
        name = "report",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Write the --ui page of a finished run as static HTML (DIR/report/index.html): curves from",
            "DIR/monitor.json (runs with --ui) or DIR/main.log, attention maps from the latest",
            "DIR/model_########.bin."
        })
public final class ReportCommand implements Callable<Integer> {

    @Parameters(paramLabel = "DIR", description = "the run's output folder (-o of ./llmc train)")
    Path runDir;

    @Option(
            names = {"-o", "--output"},
            paramLabel = "DIR",
            description = "where the page goes (default: DIR/report)")
    Path output;

    @Option(
            names = {"-j", "--val-data"},
            paramLabel = "GLOB",
            defaultValue = "data/tinyshakespeare/tiny_shakespeare_val.bin",
            description = "the attention maps' sequence, when monitor.json has none (default: ${DEFAULT-VALUE})")
    String valPattern;

    @Option(
            names = "--tokenizer",
            paramLabel = "FILE",
            description = "gpt2_tokenizer.bin for the maps' labels, when monitor.json has none (default: next to -j)")
    Path tokenizer;

    private static final Pattern MODEL_FILE = Pattern.compile("model_(\\d{8})\\.bin");

    @Override
    public Integer call() {
        if (!Files.isDirectory(runDir))
            throw new LlmcException("report: no folder " + runDir + " (expected the -o folder of a run)");
        Path stateFile = runDir.resolve(RunMonitor.STATE_FILE), log = runDir.resolve("main.log");
        Map<String, Object> state;
        if (Files.exists(stateFile)) {
            state = readState(stateFile);
        } else if (Files.exists(log)) {
            state = fromLog(log, runDir.getFileName().toString());
        } else {
            throw new LlmcException("report: neither %s nor main.log in %s (expected the -o folder of a run)"
                    .formatted(RunMonitor.STATE_FILE, runDir));
        }
        Path checkpoint = latestCheckpoint(runDir);
        if (checkpoint != null) state.put("attention", attention(checkpoint, state.get("attention")));
        Path index = StaticReport.write(output != null ? output : runDir.resolve("report"), JsonText.of(state));
        System.out.println("report: " + index
                + (checkpoint != null
                        ? " (attention maps of " + checkpoint.getFileName() + ")"
                        : " (no model_########.bin: no attention maps)"));
        return 0;
    }

    @SuppressWarnings("unchecked")
    private static Map<String, Object> readState(Path file) {
        try {
            String text = Files.readString(file, StandardCharsets.UTF_8);
            return new LinkedHashMap<>((Map<String, Object>) Json.parse(text));
        } catch (IOException | Json.JsonException | ClassCastException e) {
            throw new LlmcException("report: cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static final Pattern TRAIN_LINE = Pattern.compile("s:(\\d+) trl:(\\S+) lr:(\\S+) norm:(\\S+)");
    private static final Pattern VAL_LINE = Pattern.compile("s:(\\d+) tel:(\\S+)");

    /** The state from llm.c's main.log: train loss, lr, norm and val loss; the z-scores computed again from them. */
    static Map<String, Object> fromLog(Path log, String title) {
        var steps = new ArrayList<Object>();
        var val = new ArrayList<Object>();
        var lossOutliers = new OutlierDetector();
        var normOutliers = new OutlierDetector();
        List<String> lines;
        try {
            lines = Files.readAllLines(log, StandardCharsets.UTF_8);
        } catch (IOException e) {
            throw new LlmcException("report: cannot read " + log + ": " + e.getMessage(), e);
        }
        for (String line : lines) {
            var train = TRAIN_LINE.matcher(line);
            var validation = VAL_LINE.matcher(line);
            if (train.matches()) {
                double loss = Double.parseDouble(train.group(2)), norm = Double.parseDouble(train.group(4));
                var point = new LinkedHashMap<String, Object>();
                point.put("step", Integer.parseInt(train.group(1)));
                point.put("loss", loss);
                point.put("lossZ", lossOutliers.update(loss));
                point.put("norm", norm);
                point.put("normZ", normOutliers.update(norm));
                point.put("lr", Double.parseDouble(train.group(3)));
                point.put("skipped", false);
                steps.add(point);
            } else if (validation.matches()) {
                val.add(Map.of(
                        "step",
                        Integer.parseInt(validation.group(1)),
                        "loss",
                        Double.parseDouble(validation.group(2))));
            }
        }
        var run = new LinkedHashMap<String, Object>();
        run.put("title", title + " (from main.log)");
        run.put("finished", true);
        var state = new LinkedHashMap<String, Object>();
        state.put("run", run);
        state.put("steps", steps);
        state.put("val", val);
        state.put("tensors", List.of());
        state.put("activations", List.of());
        state.put("attention", null);
        state.put("samples", List.of());
        return state;
    }

    /** The model_########.bin of the highest step, or null. */
    static Path latestCheckpoint(Path dir) {
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(
                            f -> MODEL_FILE.matcher(f.getFileName().toString()).matches())
                    .max((a, b) ->
                            a.getFileName().toString().compareTo(b.getFileName().toString()))
                    .orElse(null);
        } catch (IOException e) {
            throw new LlmcException("report: cannot list " + dir + ": " + e.getMessage(), e);
        }
    }

    /** The maps of the checkpoint's model over the run's sequence (from its last maps, else the val data). */
    @SuppressWarnings("unchecked")
    private Map<String, Object> attention(Path checkpoint, Object previous) {
        var matcher = MODEL_FILE.matcher(checkpoint.getFileName().toString());
        int step = matcher.matches() ? Integer.parseInt(matcher.group(1)) : 0;
        try (TrainableModel model = load(checkpoint)) {
            int[] ids;
            IntFunction<String> text;
            if (previous instanceof Map<?, ?> last
                    && last.get("ids") instanceof List<?> lastIds
                    && last.get("tokens") instanceof List<?> lastTokens) {
                ids = lastIds.stream().mapToInt(id -> ((Number) id).intValue()).toArray();
                var texts = new HashMap<Integer, String>();
                for (int i = 0; i < ids.length; i++) texts.put(ids[i], (String) lastTokens.get(i));
                text = texts::get;
            } else {
                ids = AttentionMaps.firstTokens(valPattern, Math.min(AttentionMaps.SEQUENCE_LENGTH, model.maxSeqLen()));
                Path tokenizerFile = tokenizer != null
                        ? tokenizer
                        : Path.of(valPattern).toAbsolutePath().resolveSibling("gpt2_tokenizer.bin");
                text = MonitorOptions.gpt2TokenText(tokenizerFile);
            }
            return AttentionMaps.of((Inspectable) model, step, ids, text);
        }
    }

    /** A GPT-2 or Llama 3 checkpoint, told apart by the magic number in its first four bytes. */
    private static TrainableModel load(Path checkpoint) {
        int magic;
        try (InputStream in = Files.newInputStream(checkpoint)) {
            byte[] first = in.readNBytes(4);
            if (first.length < 4)
                throw new LlmcException("report: " + checkpoint + " is shorter than a checkpoint header");
            magic = (first[0] & 0xff) | (first[1] & 0xff) << 8 | (first[2] & 0xff) << 16 | (first[3] & 0xff) << 24;
        } catch (IOException e) {
            throw new LlmcException("report: cannot read " + checkpoint + ": " + e.getMessage(), e);
        }
        return switch (magic) {
            case GPT2Checkpoint.MAGIC -> GPT2.fromCheckpoint(checkpoint);
            case Llama3Checkpoint.MAGIC -> Llama3.fromCheckpoint(checkpoint);
            default ->
                throw new LlmcException("report: %s: header[0] (magic): expected %d (GPT-2) or %d (Llama 3), found %d"
                        .formatted(checkpoint, GPT2Checkpoint.MAGIC, Llama3Checkpoint.MAGIC, magic));
        };
    }
}
