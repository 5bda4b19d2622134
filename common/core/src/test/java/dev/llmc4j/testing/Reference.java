package dev.llmc4j.testing;

import static org.junit.jupiter.api.Assertions.fail;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Assumptions;

/**
 * Runs one of our PyTorch reference scripts (reference/*.py) with /usr/bin/python3 (or -Dllmc.python), two threads,
 * for tests that check what the Java code just wrote. Without torch and numpy the test is skipped with a message, or
 * fails under -Dllmc.requireFixtures=true (CI), like {@link Fixtures}.
 */
public final class Reference {
    private Reference() {}

    public static String python() {
        return System.getProperty("llmc.python", "/usr/bin/python3");
    }

    /** Skips (or fails, in CI) unless the reference's Python has torch and numpy. */
    public static void requireTorch() {
        boolean ok;
        try {
            ok = new ProcessBuilder(python(), "-c", "import torch, numpy")
                            .redirectErrorStream(true)
                            .start()
                            .waitFor()
                    == 0;
        } catch (IOException e) {
            ok = false;
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            ok = false;
        }
        if (!ok) {
            String message = python() + " has no torch/numpy, so the reference cannot run"
                    + " (apt-get install python3-torch libopenblas0-openmp)";
            if (Boolean.getBoolean("llmc.requireFixtures")) fail(message);
            Assumptions.abort(message);
        }
    }

    /** Runs reference/SCRIPT with the arguments; returns its output, failing the test when it exits non-zero. */
    public static String run(String script, String... arguments) {
        requireTorch();
        var command = new ArrayList<>(List.of(
                python(),
                Fixtures.projectRoot().resolve("reference").resolve(script).toString()));
        command.addAll(List.of(arguments));
        try {
            var builder = new ProcessBuilder(command).redirectErrorStream(true);
            builder.environment().put("OMP_NUM_THREADS", "2");
            Process process = builder.start();
            String output = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            int code = process.waitFor();
            if (code != 0) fail(String.join(" ", command) + " exited with " + code + ":\n" + output);
            return output;
        } catch (IOException e) {
            return fail("cannot run " + command + ": " + e.getMessage());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return fail("interrupted");
        }
    }
}
