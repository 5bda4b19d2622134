package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.train.MemoryEstimate;
import dev.llmc4j.train.Trainer;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/**
 * Issue 13 through the command line, as a hostile user meets it: option values checked at parse time (exit code
 * 2), resume state checked against its data, NaN never trained on in silence nor written, a run that cannot fit
 * refused before it allocates, a bad token anywhere in a shard refused at the start, and the temporaries of an
 * interrupted checkpoint cleaned up. Every error is one line, and nothing is left half-written.
 */
class ReliabilityTest {

    @TempDir
    Path dir;

    /** A 1-layer GPT-2 (GPT-2's vocabulary) on tiny random shards, B=1, T=8: a step takes milliseconds. */
    private List<String> tinyRun(String... more) throws IOException {
        var args = new ArrayList<>(List.of("--layers", "1", "--heads", "2", "--channels", "16"));
        args.addAll(List.of(more));
        return run(args);
    }

    /** As {@link #tinyRun}, the model from {@code model} (-e FILE or -e DESCRIPTOR) and -b, -t, ... in {@code more}. */
    private List<String> run(List<String> modelAndMore) throws IOException {
        Path train = dir.resolve("data_train.bin"), val = dir.resolve("data_val.bin");
        if (!Files.exists(train)) {
            TokenShard.write(train, TokenShard.Kind.GPT2, RandomTokens.of(400, 50257, 1));
            TokenShard.write(val, TokenShard.Kind.GPT2, RandomTokens.of(100, 50257, 2));
        }
        var args = new ArrayList<>(List.of(
                "train", "-i", train.toString(), "-j", val.toString(), "-v", "100", "-m", "2", "-s", "0", "-g", "0"));
        if (!modelAndMore.contains("-b")) args.addAll(List.of("-b", "1"));
        if (!modelAndMore.contains("-t")) args.addAll(List.of("-t", "8"));
        args.addAll(modelAndMore);
        return args;
    }

    private static LlmcRun llmc(List<String> args) {
        return LlmcRun.of(args.toArray(String[]::new));
    }

    /** One line on stderr, starting "error: ", no stack trace, naming every given word. */
    private static void assertOneErrorLine(LlmcRun result, int exitCode, String... words) {
        assertEquals(exitCode, result.exitCode(), result.err() + result.out());
        String err = result.err().strip();
        assertEquals(1, err.lines().count(), "one line:\n" + err);
        assertTrue(err.startsWith("error: "), err);
        assertFalse(err.contains("\tat "), err);
        for (String word : words) assertTrue(err.contains(word), "'" + word + "' in: " + err);
    }

    private static List<String> listing(Path folder) throws IOException {
        if (!Files.isDirectory(folder)) return List.of();
        try (Stream<Path> files = Files.list(folder)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    // ---- 3. option values ----

    @Test
    void everyNumericOptionOfEveryCommandHasARange() {
        var root = new CommandLine(new Llmc());
        assertEquals(List.of(), OptionChecks.numericOptionsWithoutRange(root));
    }

    @Test
    void badOptionValuesAreUsageErrorsBeforeAnythingRuns() throws IOException {
        assertOneErrorLine(llmc(tinyRun("-b", "0")), 2, "--batch-size", "0");
        assertOneErrorLine(llmc(tinyRun("-t", "0")), 2, "--seq-len", "0");
        assertOneErrorLine(llmc(tinyRun("-x", "-5")), 2, "--steps", "-5");
        assertOneErrorLine(llmc(tinyRun("-l", "NaN")), 2, "--lr", "NaN");
        assertOneErrorLine(llmc(tinyRun("-l", "Infinity")), 2, "--lr", "Infinity");
        assertOneErrorLine(llmc(tinyRun("-b", "1048576", "-t", "1048576")), 2, "-b * -t");
        assertOneErrorLine(llmc(tinyRun("-d", "12")), 2, "--total-batch", "12");
        Path model = dir.resolve("m.bin");
        for (String temperature : new String[] {"NaN", "Infinity", "0", "-1"}) {
            assertOneErrorLine(
                    LlmcRun.of("sample", "-e", model.toString(), "--temperature", temperature),
                    2,
                    "--temperature",
                    temperature);
            assertOneErrorLine(
                    LlmcRun.of(
                            "llama3",
                            "sample",
                            "-e",
                            model.toString(),
                            "--temperature",
                            temperature.equals("0") ? "-0.5" : temperature),
                    2,
                    "--temperature");
        }
        // a parameter count past any machine (and past a long's bytes) never reaches the allocator
        assertOneErrorLine(
                LlmcRun.of("init", "--layers", "1024", "--heads", "1", "--channels", "1048576", "-o", model.toString()),
                2,
                "parameters");
        assertOneErrorLine(
                LlmcRun.of("llama3", "init", "--max-seq-len", "2147483647", "-o", model.toString()),
                2,
                "--max-seq-len");
        assertOneErrorLine(
                LlmcRun.of("llama3", "init", "--ffn-multiplier", "1e30", "-o", model.toString()),
                2,
                "--ffn-multiplier");
        assertOneErrorLine(LlmcRun.of("data", "text", "--val-fraction", "1", "x.txt"), 2, "--val-fraction");
        assertFalse(Files.exists(model), "nothing written");
    }

    // ---- 4. NaN ----

    /** A tiny checkpoint with NaN in wpe, which every sequence reads (written by hand: our writer refuses such a file). */
    private Path nanCheckpoint() throws IOException {
        Path file = dir.resolve("nan.bin");
        assertEquals(
                0,
                LlmcRun.of("init", "--layers", "1", "--heads", "2", "--channels", "16", "-o", file.toString())
                        .exitCode());
        byte[] bytes = Files.readAllBytes(file);
        long wpe = 50304L * 16; // wte is (Vp, C) = (50304, 16); wpe element 5 is position 0, channel 5
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putFloat((int) (1024 + 4 * (wpe + 5)), Float.NaN);
        Files.write(file, bytes);
        return file;
    }

    @Test
    void nonFiniteLossSkipsTheUpdateAndStopsAfterAFewInARow() throws IOException {
        Path out = dir.resolve("out");
        var args = run(List.of("-e", nanCheckpoint().toString(), "-x", "20", "-o", out.toString()));
        var result = llmc(args);
        assertOneErrorLine(result, 1, "not finite for " + Trainer.MAX_NON_FINITE_STEPS + " steps in a row", "-l");
        assertEquals(
                Trainer.MAX_NON_FINITE_STEPS,
                result.out()
                        .lines()
                        .filter(l -> l.contains("update skipped (non-finite"))
                        .count(),
                result.out());
        assertTrue(
                listing(out).stream().noneMatch(name -> name.startsWith("model_") || name.endsWith(".tmp")),
                listing(out).toString());
    }

    @Test
    void aCheckpointIsNeverWrittenWithNonFiniteValues() throws IOException {
        Path out = dir.resolve("out");
        var args = run(List.of("-e", nanCheckpoint().toString(), "-x", "3", "-n", "1", "-o", out.toString()));
        assertOneErrorLine(llmc(args), 1, "model_00000001.bin", "tensor wpe", "NaN");
        assertTrue(
                listing(out).stream()
                        .noneMatch(name -> name.startsWith("model_")
                                || name.startsWith("state_")
                                || name.startsWith("DONE_")
                                || name.endsWith(".tmp")),
                listing(out).toString());
    }

    @Test
    void sampleRefusesANonFiniteCheckpointNamingTheTensor() throws IOException {
        Path file = nanCheckpoint();
        assertOneErrorLine(
                LlmcRun.of("sample", "-e", file.toString(), "-g", "2"), 1, "nan.bin", "tensor wpe", "element 5");
    }

    // ---- 5. memory ----

    @Test
    void aRunThatCannotFitIsRefusedBeforeItAllocates() throws IOException {
        long peakBefore = MemoryEstimate.peakResidentBytes().orElse(0);
        var args = run(List.of("-e", "d48", "-b", "4096", "-t", "1024", "-x", "1"));
        var result = llmc(args);
        assertOneErrorLine(
                result,
                1,
                "per rank",
                "parameters",
                "activations",
                "available",
                "lower -b (now 4096) or -t (now 1024)");
        long grown = MemoryEstimate.peakResidentBytes().orElse(0) - peakBefore;
        assertTrue(grown < 512L << 20, "refused before any large allocation, but the peak grew by " + grown + " bytes");
    }

    @Test
    void theRunHeaderAndTheHelpShowTheEstimate() throws IOException {
        var result = llmc(tinyRun("-x", "1"));
        assertEquals(0, result.exitCode(), result.err());
        String header = result.out()
                .lines()
                .filter(l -> l.contains("memory per rank"))
                .findFirst()
                .orElseThrow();
        assertTrue(
                header.contains("parameters") && header.contains("activations") && header.contains("JVM now"), header);
        String help = LlmcRun.of("train", "--help").out();
        assertTrue(help.contains("memory per rank (d12, -r 1, T=1024)") && help.contains("per sequence of B"), help);
        assertTrue(help.contains("memory per rank (d12, -r 1, B=4)"), help);
        assertTrue(LlmcRun.of("llama3", "train", "--help").out().contains("memory per rank (the default shape"));
    }

    // ---- 6. shards ----

    @Test
    void aBadTokenAnywhereInAShardFailsAtTheStart() throws IOException {
        Path train = dir.resolve("bad_train.bin");
        int[] tokens = RandomTokens.of(5000, 50257, 3);
        tokens[4990] = 60000; // a one-step run never reads this far
        TokenShard.write(train, TokenShard.Kind.GPT2, tokens);
        var args = tinyRun("-x", "1");
        args.set(args.indexOf("-i") + 1, train.toString());
        assertOneErrorLine(llmc(args), 1, "bad_train.bin", "token at position 4990", "60000");
    }

    // ---- 2. resume state ----

    @Test
    void aDamagedStateFileIsRefusedOnResumeNamingTheField() throws IOException {
        Path out = dir.resolve("out");
        assertEquals(
                0, llmc(tinyRun("-x", "2", "-n", "2", "-o", out.toString())).exitCode());
        Path state = out.resolve("state_00000002_00000.bin");
        byte[] bytes = Files.readAllBytes(state);
        long numParameters;
        try (var arena = java.lang.foreign.Arena.ofConfined()) {
            numParameters = GPT2Checkpoint.open(out.resolve("model_00000002.bin"), arena)
                    .numParameters();
        }
        int shardOrder = (int) (1024 + 8 * numParameters + 8); // the first shard-order entry of the loader tail
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(shardOrder, 7);
        Files.write(state, bytes);
        var before = listing(out);
        assertOneErrorLine(
                llmc(tinyRun("-x", "4", "-n", "1", "-y", "1", "-o", out.toString())),
                1,
                "state_00000002_00000.bin",
                "shard order[0]",
                "found 7");
        assertEquals(before, listing(out), "nothing written");
    }

    // ---- 7. leftovers ----

    @Test
    void staleTemporariesOfThisRunAreRemovedOnStartAndResume() throws IOException {
        Path out = Files.createDirectories(dir.resolve("out"));
        List<String> ours =
                List.of(".model_00000005.bin8123.tmp", ".state_00000005_00000.bin77.tmp", ".DONE_00000005123.tmp");
        List<String> notOurs = List.of(".state_00000005_00001.bin9.tmp", "notes.tmp", ".model_00000005.bin");
        for (String name : Stream.concat(ours.stream(), notOurs.stream()).toList())
            Files.write(out.resolve(name), new byte[100]);
        var fresh = llmc(tinyRun("-x", "1", "-n", "1", "-o", out.toString()));
        assertEquals(0, fresh.exitCode(), fresh.err());
        for (String name : ours) assertFalse(Files.exists(out.resolve(name)), name);
        for (String name : notOurs) assertTrue(Files.exists(out.resolve(name)), name);
        assertTrue(fresh.out().contains("removed a stale temporary file"), fresh.out());

        Files.write(out.resolve(".model_00000002.bin5.tmp"), new byte[100]);
        var resumed = llmc(tinyRun("-x", "2", "-n", "1", "-y", "1", "-o", out.toString()));
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertFalse(Files.exists(out.resolve(".model_00000002.bin5.tmp")));
    }
}
