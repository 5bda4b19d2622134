package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.data.EvalFile;
import dev.llmc4j.format.Json;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.testing.Fixtures;
import dev.llmc4j.testing.Reference;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.train.HellaSwagEval;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@code llmc data hellaswag}, {@code llmc eval hellaswag} and {@code train -h 1} against reference/hellaswag_reference.py,
 * which restates llm.c's dev/data/hellaswag.py: the eval file byte for byte, and the accuracy and per-example
 * completion losses of PyTorch's evaluation (GPT-2 and Llama 3 fixtures).
 */
class HellaSwagCommandTest {
    static final String MAKE_FIXTURES = "reference/make_fixtures.sh target/fixtures";
    static final String MAKE_LLAMA3_FIXTURES = "reference/make_llama3_fixtures.sh target/fixtures";

    @TempDir
    Path folder;

    /** Made examples: HellaSwag's own first val example, and text with accents, digits, quotes, tabs and an empty ending. */
    private Path madeJsonl() throws IOException {
        var lines = List.of(
                "{\"ind\": 24, \"activity_label\": \"Roof shingle removal\", \"ctx_a\": \"A man is sitting on a roof.\", "
                        + "\"ctx_b\": \"he\", \"ctx\": \"A man is sitting on a roof. he\", \"split\": \"val\", "
                        + "\"split_type\": \"indomain\", \"label\": 3, \"endings\": [\"is using wrap to wrap a pair of skis.\", "
                        + "\"is ripping level tiles off.\", \"is holding a rubik's cube.\", \"starts pulling up roofing on a roof.\"], "
                        + "\"source_id\": \"activitynet~v_-JhWjGDPHMY\"}",
                "{\"ctx\": \"Caf\\u00e9 owners in Z\\u00fcrich \\u2014 na\\u00efve? They've said 42 times: \\\"don't_go\\\"\", "
                        + "\"label\": 0, \"endings\": [\"yes, 3.14 it's   fine!\", \"\\u00fcber cool\\tthings\", \"\", "
                        + "\"\\u00e9migr\\u00e9s' ___ ok\"]}",
                "",
                "{\"ctx\": \"The cat sat on the mat and then\", \"label\": 1, \"endings\": [\"it flew to the moon.\", "
                        + "\"it fell asleep in the sun.\", \"the mat sang a song.\", \"nothing happened at all, ever.\"]}",
                "{\"ctx\": \"How to bake bread: first,\", \"label\": 2, \"endings\": [\"paint the oven blue.\", "
                        + "\"throw the flour away.\", \"mix flour, water, yeast and salt.\", \"sing to the dough.\"]}",
                "{\"ctx\": \"She opened the door and\", \"label\": 0, \"endings\": [\"walked into the room.\", "
                        + "\"the door opened her.\", \"42 42 42 42\", \"purple!\"]}");
        Path jsonl = folder.resolve("examples.jsonl");
        Files.write(jsonl, lines, StandardCharsets.UTF_8);
        return jsonl;
    }

    /** jtokkit's copy of tiktoken's GPT-2 ranks, for the reference's plain-Python encoder (tiktoken is not installed). */
    private Path ranks() throws IOException {
        Path file = folder.resolve("r50k_base.tiktoken");
        try (InputStream in =
                GPT2Tokenizer.class.getClassLoader().getResourceAsStream("com/knuddels/jtokkit/r50k_base.tiktoken")) {
            Files.copy(in, file);
        }
        return file;
    }

    private Path writeWithLlmc(Path jsonl) {
        Path out = folder.resolve("llmc.bin");
        var run = LlmcRun.of("data", "hellaswag", "--input", jsonl.toString(), "-o", out.toString());
        assertEquals(0, run.exitCode(), run.err());
        assertTrue(run.out().contains("wrote 5 examples"), run.out());
        return out;
    }

    @Test
    void evalFileEqualsWhatLlmcsScriptWrites() throws IOException {
        Path jsonl = madeJsonl();
        Path ours = writeWithLlmc(jsonl);
        Path theirs = folder.resolve("reference.bin");
        Reference.run(
                "hellaswag_reference.py",
                "--input",
                jsonl.toString(),
                "--output",
                theirs.toString(),
                "--ranks",
                ranks().toString());
        assertEquals(-1L, Files.mismatch(ours, theirs), "first differing byte");
        var examples = EvalFile.read(ours);
        assertEquals(5, examples.size());
        assertEquals(3, examples.getFirst().label());
        assertEquals(List.of(220), toList(examples.get(1).completions()[2])); // " " + "" is one space token
    }

    @Test
    void dataHellaswagNeedsInput() {
        var run = LlmcRun.of("data", "hellaswag");
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("--input"), run.err());
        var bad = LlmcRun.of(
                "data", "hellaswag", "--input", folder.resolve("missing.jsonl").toString());
        assertTrue(bad.err().contains("not found") && bad.err().lines().count() == 1, bad.err());
    }

    @Test
    void badLinesAreOneLineErrors() throws IOException {
        Path jsonl = folder.resolve("bad.jsonl");
        Files.writeString(jsonl, "{\"ctx\": \"a\", \"label\": 7, \"endings\": [\"b\", \"c\", \"d\", \"e\"]}\n");
        var run = LlmcRun.of(
                "data",
                "hellaswag",
                "--input",
                jsonl.toString(),
                "-o",
                folder.resolve("o.bin").toString());
        assertEquals(1, run.exitCode());
        assertTrue(run.err().contains("line 1") && run.err().contains("label"), run.err());
    }

    @Test
    void gpt2AccuracyAndLossesEqualPyTorchs() throws IOException {
        Path model = Fixtures.require("gpt2_small.bin", MAKE_FIXTURES);
        Path safetensors = Fixtures.require("gpt2_small.safetensors", MAKE_FIXTURES);
        Path evalFile = writeWithLlmc(madeJsonl());
        var reference = evaluateWithReference(evalFile, "--gpt2-safetensors", safetensors.toString(), "--heads", "4");
        compare(
                reference,
                LlmcRun.of(
                        "eval",
                        "hellaswag",
                        "-e",
                        model.toString(),
                        "-f",
                        evalFile.toString(),
                        "-b",
                        "8",
                        "--verbose"));
    }

    @Test
    void llama3AccuracyAndLossesEqualPyTorchs() {
        Path model = Fixtures.require("llama3_small.bin", MAKE_LLAMA3_FIXTURES);
        // the small Llama 3 has V = 512: made token ids, 9 examples (two batches of 8 rows and one short one)
        var random = new Random(7);
        var examples = new ArrayList<EvalFile.Example>();
        for (int i = 0; i < 9; i++) {
            int[][] endings = new int[4][];
            for (int c = 0; c < 4; c++)
                endings[c] = random.ints(1 + random.nextInt(6), 0, 512).toArray();
            examples.add(new EvalFile.Example(
                    i,
                    random.nextInt(4),
                    random.ints(1 + random.nextInt(20), 0, 512).toArray(),
                    endings));
        }
        Path evalFile = folder.resolve("made_llama3.bin");
        EvalFile.write(evalFile, examples);
        assertEquals(examples.size(), EvalFile.read(evalFile).size());
        var reference = evaluateWithReference(evalFile, "--llama3-model", model.toString());
        compare(
                reference,
                LlmcRun.of(
                        "eval",
                        "hellaswag",
                        "-e",
                        model.toString(),
                        "-f",
                        evalFile.toString(),
                        "-b",
                        "8",
                        "-t",
                        "32",
                        "--verbose"));
    }

    @SuppressWarnings("unchecked")
    private Map<String, Object> evaluateWithReference(Path evalFile, String... model) {
        Path json = folder.resolve("reference.json");
        var arguments = new ArrayList<>(List.of("--evaluate", evalFile.toString(), "--json", json.toString()));
        arguments.addAll(List.of(model));
        Reference.run("hellaswag_reference.py", arguments.toArray(String[]::new));
        try {
            return (Map<String, Object>) Json.parse(Files.readString(json));
        } catch (IOException e) {
            throw new AssertionError(e);
        }
    }

    private static final Pattern EXAMPLE_LINE =
            Pattern.compile("(\\d+): losses (\\S+) (\\S+) (\\S+) (\\S+) predicted (\\d) label (\\d)");

    @SuppressWarnings("unchecked")
    private static void compare(Map<String, Object> reference, LlmcRun run) {
        assertEquals(0, run.exitCode(), run.err());
        var losses = (List<List<Object>>) reference.get("losses");
        var predictions = (List<Object>) reference.get("predictions");
        int seen = 0;
        for (String line : run.out().lines().toList()) {
            Matcher m = EXAMPLE_LINE.matcher(line);
            if (!m.matches()) continue;
            int index = Integer.parseInt(m.group(1));
            for (int c = 0; c < 4; c++) {
                double expected = ((Number) losses.get(index).get(c)).doubleValue();
                double ours = Double.parseDouble(m.group(2 + c));
                assertEquals(
                        expected,
                        ours,
                        1e-5 * Math.max(1, Math.abs(expected)),
                        "example " + index + " completion " + c);
            }
            assertEquals(
                    ((Number) predictions.get(index)).intValue(),
                    Integer.parseInt(m.group(6)),
                    "prediction of " + index);
            seen++;
        }
        assertEquals(losses.size(), seen, run.out());
        String summary = "HellaSwag: " + reference.get("correct") + "/" + reference.get("total") + " = ";
        assertTrue(run.out().contains(summary), summary + " in\n" + run.out());
    }

    @Test
    void trainWithHellaswagLogsEvalLinesAsLlmc() throws IOException {
        Path model = Fixtures.require("gpt2_small.bin", MAKE_FIXTURES);
        Path evalFile = writeWithLlmc(madeJsonl());
        Path data = writeShard(folder.resolve("tokens.bin"));
        Path out = folder.resolve("run");
        var run = LlmcRun.of(
                "train",
                "-e",
                model.toString(),
                "-i",
                data.toString(),
                "-j",
                data.toString(),
                "-b",
                "4",
                "-t",
                "64",
                "-x",
                "3",
                "-v",
                "2",
                "-m",
                "1",
                "-s",
                "0",
                "-h",
                "1",
                "--hellaswag-file",
                evalFile.toString(),
                "-n",
                "3",
                "-o",
                out.toString());
        assertEquals(0, run.exitCode(), run.err() + run.out());
        List<String> evalLines = Files.readAllLines(out.resolve("main.log")).stream()
                .filter(l -> l.contains(" eval:"))
                .toList();
        // llm.c: at val steps after 0 (step 2) and at the last step (3)
        assertEquals(2, evalLines.size(), evalLines.toString());
        assertTrue(
                evalLines.get(0).matches("s:2 eval:\\d\\.\\d{4}")
                        && evalLines.get(1).startsWith("s:3 eval:"),
                evalLines.toString());
        // the last eval is that of the final model: the same as evaluating its checkpoint
        try (var trained = GPT2.fromCheckpoint(out.resolve("model_00000003.bin"))) {
            var result = HellaSwagEval.run(trained, EvalFile.read(evalFile), 4, 64, 0, 1);
            assertEquals("s:3 eval:%.4f".formatted((float) result.correct() / result.total()), evalLines.get(1));
        }
        var missing = LlmcRun.of(
                "train",
                "-e",
                model.toString(),
                "-i",
                data.toString(),
                "-j",
                data.toString(),
                "-b",
                "4",
                "-t",
                "64",
                "-x",
                "1",
                "-s",
                "0",
                "-h",
                "1",
                "--hellaswag-file",
                folder.resolve("none.bin").toString());
        assertEquals(0, missing.exitCode(), missing.err());
        assertTrue(missing.out().contains("HellaSwag eval not found"), missing.out());
    }

    /** A GPT-2 token shard of 2,000 made tokens (llm.c format). */
    private static Path writeShard(Path file) {
        int[] tokens = new Random(3).ints(2000, 0, 50257).toArray();
        TokenShard.write(file, TokenShard.Kind.GPT2, tokens);
        return file;
    }

    private static List<Integer> toList(int[] values) {
        return Arrays.stream(values).boxed().toList();
    }
}
