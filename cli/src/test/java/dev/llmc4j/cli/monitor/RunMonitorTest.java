package dev.llmc4j.cli.monitor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cli.Llmc;
import dev.llmc4j.format.Json;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.train.TrainingListener.StepLog;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import picocli.CommandLine;

/** What the monitor records: tensor statistics that are what they claim, a run it does not change, its JSON, reports. */
class RunMonitorTest {

    @TempDir
    Path folder;

    static final GPT2Config TINY = new GPT2Config(32, 128, 128, 2, 2, 16);

    /** Vocabulary 4100: wte (4100 x 16 floats) spans two of TensorStatistics' 64K-float blocks, the second ragged. */
    @ParameterizedTest(name = "vocabulary {0}")
    @ValueSource(ints = {128, 4100})
    @SuppressWarnings("unchecked")
    void updateAndGradientRatiosAreThoseOfTheTensors(int vocabulary) {
        var config = new GPT2Config(32, vocabulary, vocabulary, 2, 2, 16);
        try (var model = GPT2.randomInit(config)) {
            var monitor = new RunMonitor(model, Map.of(), 1, String::valueOf, null);
            int[] tokens = RandomTokens.of(2 * 8 + 1, 128, 3);
            model.zeroGrad();
            model.forward(Arrays.copyOf(tokens, 16), Arrays.copyOfRange(tokens, 1, 17), 2, 8);
            model.backward(1);
            float[] before = model.parameters().toArray(ValueLayout.JAVA_FLOAT);
            float[] gradients = model.gradients().toArray(ValueLayout.JAVA_FLOAT);
            assertTrue(monitor.inspects(1));
            monitor.beforeUpdate(1);
            model.update(1e-2f, 0.9f, 0.95f, 1e-8f, 0f, 1f, 1);
            monitor.stepDone(new StepLog(1, 1, 4f, Double.NaN, 1f, Double.NaN, 1e-2f, 1, -1, false));
            float[] after = model.parameters().toArray(ValueLayout.JAVA_FLOAT);

            var state = (Map<String, Object>) Json.parse(monitor.snapshot());
            var stats = (List<Map<String, Object>>)
                    ((Map<String, Object>) ((List<?>) state.get("tensors")).getFirst()).get("stats");
            var tensors = model.parameterTensors();
            assertEquals(tensors.size(), stats.size());
            assertEquals(4 + 12 * config.numLayers(), tensors.size(), "wte, wpe, lnfw, lnfb and 12 tensors per layer");
            for (int i = 0; i < tensors.size(); i++) {
                Inspectable.TensorSlice t = tensors.get(i);
                double w = 0, g = 0, dw = 0;
                for (long j = t.offset(); j < t.offset() + t.count(); j++) {
                    int k = (int) j;
                    w += (double) before[k] * before[k];
                    g += (double) gradients[k] * gradients[k];
                    dw += (double) (after[k] - before[k]) * (after[k] - before[k]);
                }
                double weightsAfter = 0;
                for (long j = t.offset(); j < t.offset() + t.count(); j++)
                    weightsAfter += (double) after[(int) j] * after[(int) j];
                var row = stats.get(i);
                assertEquals(t.name(), row.get("name"));
                assertEquals((long) t.layer(), row.get("layer"));
                if (w > 0)
                    assertEquals(
                            Math.sqrt(g / w),
                            ((Number) row.get("grad")).doubleValue(),
                            1e-5 * Math.sqrt(g / w),
                            t.name());
                assertEquals(
                        Math.sqrt(dw / weightsAfter),
                        ((Number) row.get("update")).doubleValue(),
                        1e-4 * Math.sqrt(dw / weightsAfter) + 1e-12,
                        t.name());
            }
            var activations =
                    (List<?>) ((Map<String, Object>) ((List<?>) state.get("activations")).getFirst()).get("stats");
            assertEquals(4 * config.numLayers(), activations.size(), "attproj, fch, fcproj, residual per layer");
        }
    }

    @Test
    void bothCpuModelsShowTheirTensorsAndAttention() {
        int[] tokens = RandomTokens.of(10, 40, 5);
        try (var gpt2 = GPT2.randomInit(TINY);
                var llama = Llama3.randomInit(
                        new Llama3Config(16, 40, 2, 4, 2, 16, 1.0f, 8, 1e-5f, 10000f, false, 3, 2), 42)) {
            assertEquals(
                    3 + 6 * 2, llama.parameterTensors().size(), "wte, lm_head, lnfw and 6 per layer: no zero biases");
            for (Inspectable model : List.<Inspectable>of(gpt2, llama)) {
                float[][][] maps = model.attention(tokens);
                assertEquals(2, maps.length);
                assertEquals(model.numHeads(), maps[0].length);
                for (float[] map : maps[1]) {
                    for (int query = 0; query < tokens.length; query++) {
                        double sum = 0;
                        for (int key = 0; key < tokens.length; key++) {
                            float p = map[query * tokens.length + key];
                            if (key > query) assertEquals(0f, p, "causal: no attention to later tokens");
                            sum += p;
                        }
                        assertEquals(1.0, sum, 1e-5, "each query's probabilities sum to 1");
                    }
                }
                // the maps of a longer batch's first sequence, over its first tokens, are those of a forward over
                // just those tokens: causal attention does not look ahead (the monitor takes them from the val loss)
                int[] batch = RandomTokens.of(2 * 12, 40, 6);
                System.arraycopy(tokens, 0, batch, 0, tokens.length);
                model.forward(batch, null, 2, 12);
                assertEquals(12, model.lastBatch().seqLen());
                assertEquals(2, model.lastBatch().batchSize());
                float[][][] fromBatch = model.firstSequenceAttention(tokens.length);
                for (int l = 0; l < maps.length; l++)
                    for (int h = 0; h < maps[l].length; h++)
                        for (int i = 0; i < maps[l][h].length; i++)
                            assertEquals(maps[l][h][i], fromBatch[l][h][i], 1e-6, "layer " + l + " head " + h);
                long covered = model.parameterTensors().stream()
                        .mapToLong(Inspectable.TensorSlice::count)
                        .sum();
                assertTrue(covered <= ((TrainableModel) model).numParameters());
            }
        }
    }

    @Test
    void watchingDoesNotChangeTheRun() throws Exception {
        Path train = folder.resolve("train.bin"), val = folder.resolve("val.bin");
        TokenShard.write(train, TokenShard.Kind.GPT2, RandomTokens.of(2048, 128, 1));
        TokenShard.write(val, TokenShard.Kind.GPT2, RandomTokens.of(512, 128, 2));
        var config = new TrainingConfig(
                train.toString(),
                val.toString(),
                2,
                8,
                -1,
                6,
                1e-3f,
                0,
                1.0f,
                "cosine",
                0f,
                1.0f,
                2,
                2,
                3,
                4,
                false,
                folder.resolve("run"),
                0,
                0,
                0,
                false,
                0,
                0,
                null,
                1,
                0);
        var quiet = new PrintStream(OutputStream.nullOutputStream());
        Trainer.Result plain, watched;
        RunMonitor.Costs costs;
        try (var model = GPT2.randomInit(TINY)) {
            plain = new Trainer(model, config, quiet, new Trainer.SampleText(0, null)).run();
        }
        try (var model = GPT2.randomInit(TINY)) {
            var monitor = new RunMonitor(model, Map.of(), 1, String::valueOf, config.outputDir());
            watched = new Trainer(model, config, quiet, new Trainer.SampleText(0, null))
                    .listen(monitor)
                    .run();
            costs = monitor.costs();
        }
        assertEquals(
                plain.trainLosses(), watched.trainLosses(), "statistics every step and attention maps change nothing");
        assertEquals(6, costs.inspectedSteps(), "statistics at every step (every = 1)");
        assertEquals(4, costs.attentionMaps(), "maps at the val steps 0, 2, 4 and 6");
        assertTrue(costs.totalNanos() > 0);
        assertTrue(
                MonitorOptions.costLine(costs, 1_000_000_000L).matches("monitor: [0-9.]+% of the run's 1\\.0 s .*"),
                MonitorOptions.costLine(costs, 1_000_000_000L));
        assertEquals(plain.valLosses(), watched.valLosses());
        assertTrue(Files.readString(folder.resolve("run/monitor.json")).contains("\"finished\":true"));
    }

    @Test
    void onlyRankZeroServesThePage() {
        var options = new MonitorOptions();
        new CommandLine(options).parseArgs("--ui", "0");
        var rank1 = new TrainingConfig(
                "t.bin", "v.bin", 2, 8, -1, 6, 1e-3f, 0, 1.0f, "cosine", 0f, 1.0f, 2, 2, 3, 4, false, null, 0, 0, 0,
                false, 0, 0, null, 2, 1);
        assertNull(options.open(null, rank1, "rank 1", String::valueOf, System.out));
    }

    @Test
    void jsonOfNumbersStringsAndArrays() {
        var value = new LinkedHashMap<String, Object>();
        value.put("a", Double.NaN);
        value.put("b", new int[] {1, 2});
        value.put("c", "x</script>\n");
        value.put("d", 0.125f);
        value.put("e", new float[] {0.5f, Float.POSITIVE_INFINITY});
        value.put("f", List.of(true, 3L));
        String json = JsonText.of(value);
        assertEquals(
                "{\"a\":null,\"b\":[1,2],\"c\":\"x\\u003c/script>\\n\",\"d\":0.125,\"e\":[0.5,null],\"f\":[true,3]}",
                json);
        assertEquals("x</script>\n", ((Map<?, ?>) Json.parse(json)).get("c"));
    }

    @Test
    @SuppressWarnings("unchecked")
    void reportOfARunWithoutUiReadsMainLog() throws Exception {
        Path run = Files.createDirectories(folder.resolve("run"));
        Files.writeString(
                run.resolve("main.log"),
                "s:0 tel:4.8000\ns:1 trl:4.7000 lr:0.000300 norm:1.50\n"
                        + "s:2 trl:4.6000 lr:0.000300 norm:1.25\ns:2 tel:4.5000\n");
        var state = ReportCommand.fromLog(run.resolve("main.log"), "run");
        assertEquals(2, ((List<?>) state.get("steps")).size());
        assertEquals(2, ((List<?>) state.get("val")).size());
        assertEquals(0, Llmc.execute("report", run.toString()));
        String stateJs = Files.readString(run.resolve("report/state.js"));
        assertTrue(stateJs.startsWith("window.LLMC_STATE = {"));
        var parsed = (Map<String, Object>)
                Json.parse(stateJs.substring("window.LLMC_STATE = ".length(), stateJs.length() - 2));
        assertEquals(4.6, ((Map<String, Object>) ((List<?>) parsed.get("steps")).get(1)).get("loss"));
        for (String file : MonitorAssets.FILES)
            assertTrue(Files.size(run.resolve("report").resolve(file)) > 0, file);
        assertEquals(1, Llmc.execute("report", folder.resolve("missing").toString()), "a user error, one line");
    }
}
