package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The command line as a user meets it: exit codes, one-line errors, and a README that tells the truth. */
class CommandLineTest {

    @TempDir
    Path dir;

    @Test
    void initWritesACheckpoint() {
        Path file = dir.resolve("tiny.bin");
        var result = LlmcRun.of("init", "--layers", "1", "--heads", "2", "--channels", "16", "-o", file.toString());
        assertEquals(0, result.exitCode(), result.err());
        try (var arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            assertEquals(GPT2Config.of(1, 2, 16), checkpoint.config());
            assertEquals(3, checkpoint.version());
        }
        var bf16 = LlmcRun.of(
                "init",
                "--layers",
                "1",
                "--heads",
                "2",
                "--channels",
                "16",
                "--bf16",
                "-o",
                dir.resolve("tiny5.bin").toString());
        assertEquals(0, bf16.exitCode(), bf16.err());
    }

    @Test
    void userErrorsAreOneLineWithoutAStackTrace() {
        var missing = LlmcRun.of(
                "test-gpt2",
                "--model",
                dir.resolve("nope.bin").toString(),
                "--state",
                dir.resolve("state.bin").toString());
        assertEquals(1, missing.exitCode());
        assertTrue(missing.err().startsWith("error: "), missing.err());
        assertTrue(missing.err().contains("nope.bin"), missing.err());
        assertEquals(1, missing.err().strip().lines().count(), missing.err());
        assertFalse(missing.err().contains("\tat "), "no stack trace: " + missing.err());

        var noData = LlmcRun.of(
                "train",
                "--layers",
                "1",
                "--heads",
                "2",
                "--channels",
                "16",
                "-i",
                dir.resolve("none_train.bin").toString(),
                "-j",
                dir.resolve("none_val.bin").toString());
        assertEquals(1, noData.exitCode());
        assertTrue(
                noData.err().contains("none_train.bin") && noData.err().contains("llmc data tinyshakespeare"),
                noData.err());

        var badDescriptor =
                LlmcRun.of("init", "-e", "d13", "-o", dir.resolve("x.bin").toString());
        assertEquals(1, badDescriptor.exitCode());
        assertTrue(badDescriptor.err().contains("d13"), badDescriptor.err());
    }

    @Test
    void sampleKeepsTheWeightsInBf16OnRequest() {
        Path file = dir.resolve("small.bin");
        assertEquals(
                0,
                LlmcRun.of("init", "--layers", "1", "--heads", "2", "--channels", "16", "-o", file.toString())
                        .exitCode());
        var bf16 = LlmcRun.of("sample", "-e", file.toString(), "-g", "3", "--weights", "bf16");
        assertEquals(0, bf16.exitCode(), bf16.err());
        assertTrue(bf16.err().contains("3 tokens") && bf16.err().contains("bf16 weights"), bf16.err());
        var unknown = LlmcRun.of("sample", "-e", file.toString(), "--weights", "fp8");
        assertTrue(unknown.exitCode() != 0 && unknown.err().contains("fp8"), unknown.err());
        var withoutCache = LlmcRun.of("sample", "-e", file.toString(), "--weights", "bf16", "--no-kv-cache");
        assertEquals(1, withoutCache.exitCode());
        assertTrue(withoutCache.err().contains("--no-kv-cache"), withoutCache.err());
    }

    @Test
    void corruptCheckpointNamesFileFieldExpectedAndFound() throws Exception {
        Path file = dir.resolve("bad.bin");
        assertEquals(
                0,
                LlmcRun.of("init", "--layers", "1", "--heads", "2", "--channels", "16", "-o", file.toString())
                        .exitCode());
        byte[] bytes = Files.readAllBytes(file);
        bytes[0] = 1; // wrong magic
        Files.write(file, bytes);
        var result = LlmcRun.of("sample", "-e", file.toString(), "-g", "3");
        assertEquals(1, result.exitCode());
        assertTrue(
                result.err().contains("bad.bin")
                        && result.err().contains("magic")
                        && result.err().contains("20240326"),
                result.err());
    }

    @Test
    void llmcShortFlagsParse() {
        var command = new CommandLine(new TrainCommand());
        command.parseArgs(
                "-e", "d6", "-b", "8", "-t", "256", "-d", "4096", "-x", "10", "-l", "6e-4", "-u", "5", "-q", "0.1",
                "-k", "wsd", "-c", "0.1", "-v", "5", "-m", "2", "-s", "5", "-g", "32", "-a", "0", "-o", "out", "-n",
                "5", "-nk", "2", "-nm", "10", "-y", "0", "-sl", "3", "-sg", "3");
        TrainCommand train = command.getCommand();
        assertEquals(2, train.training.checkpointsKeep);
        assertEquals(10, train.training.majorCheckpointEvery);
        assertEquals(3f, train.training.skipLossZ);
        assertEquals(4096, train.training.totalBatchTokens);
        assertEquals("wsd", train.training.schedule);
    }

    /** Every ./llmc command the README shows exists, with every option it uses. */
    @Test
    void readmeCommandsExist() throws Exception {
        Path readme = Path.of(System.getProperty("llmc.root", "..")).resolve("README.md");
        var commandLine = new CommandLine(new Llmc());
        var pattern = Pattern.compile("\\./llmc ([a-z][a-z0-9-]*)((?: [a-z0-9-]+)?)([^`|\\n]*)");
        int checked = 0;
        for (String line : Files.readAllLines(readme)) {
            var matcher = pattern.matcher(line);
            while (matcher.find()) {
                String name = matcher.group(1);
                if (name.equals("COMMAND")) continue;
                var sub = commandLine.getSubcommands().get(name);
                assertTrue(sub != null, "README mentions ./llmc " + name + " but there is no such command");
                String second = matcher.group(2).strip();
                if (!second.isEmpty() && !sub.getSubcommands().isEmpty() && !second.startsWith("-")) {
                    var nested = sub.getSubcommands().get(second);
                    assertTrue(
                            nested != null,
                            "README mentions ./llmc " + name + " " + second + " but there is no such command");
                    sub = nested;
                }
                for (var token : matcher.group(3).split("[\\s\\[\\]]+")) {
                    if (token.startsWith("-") && !token.equals("-") && !token.equals("...")) {
                        assertTrue(
                                sub.getCommandSpec().findOption(token) != null,
                                "README uses option " + token + " of ./llmc " + name + ", which does not exist");
                    }
                }
                checked++;
            }
        }
        assertTrue(checked >= 5, "README commands checked: " + checked);
    }
}
