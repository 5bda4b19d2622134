package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Runs {@code llmc data ...} in-process; never downloads (tinyshakespeare comes from --input). */
class DataCommandTest {
    @TempDir
    Path folder;



    private static Path sharedText() {
        String env = System.getenv("LLMC_TINYSHAKESPEARE");
        if (env != null && !env.isBlank()) return Path.of(env);
        return Path.of(System.getProperty("llmc.root", "."), "..", "shared", "data", "tinyshakespeare.txt").normalize();
    }

    @Test
    void tinyShakespeareFromInput() throws IOException {
        Path text = sharedText();
        assumeTrue(Files.isRegularFile(text), "SKIPPED: tinyshakespeare text not found at " + text + " (set LLMC_TINYSHAKESPEARE)");
        Path out = folder.resolve("ts");
        var result = LlmcRun.of("data", "tinyshakespeare", "--input", text.toString(), "-o", out.toString());
        assertEquals(0, result.exitCode(), result.err());
        assertTrue(result.out().contains("wrote 32,768 tokens"), result.out());
        assertTrue(result.out().contains("wrote 305,260 tokens"), result.out());
        assertEquals(66_560, Files.size(out.resolve("tiny_shakespeare_val.bin")));
        assertEquals(611_544, Files.size(out.resolve("tiny_shakespeare_train.bin")));
        assertTrue(Files.isRegularFile(out.resolve("gpt2_tokenizer.bin")));
    }

    @Test
    void wrongInputIsOneLineError() throws IOException {
        Path wrong = folder.resolve("wrong.txt");
        Files.writeString(wrong, "not shakespeare");
        var result = LlmcRun.of("data", "tinyshakespeare", "--input", wrong.toString(), "-o", folder.resolve("o").toString());
        assertEquals(1, result.exitCode());
        assertTrue(result.err().startsWith("error: ") && result.err().contains("SHA-256"), result.err());
        assertEquals(1, result.err().strip().lines().count(), result.err());
    }

    @Test
    void textWithValFraction() throws IOException {
        Path text = folder.resolve("poem.txt");
        Files.writeString(text, "Hello world\n\n".repeat(50));
        var result = LlmcRun.of("data", "text", text.toString(), "--val-fraction", "0.2", "-o", folder.resolve("p").toString());
        assertEquals(0, result.exitCode(), result.err());
        // 50 sections of 4 tokens + the empty last section's EOT = 201; floor(201 * 0.2) = 40
        assertEquals(1024 + 2 * 40, Files.size(folder.resolve("p/poem_val.bin")));
        assertEquals(1024 + 2 * 161, Files.size(folder.resolve("p/poem_train.bin")));
    }

    @Test
    void helpMentionsTheDefaults() {
        var result = LlmcRun.of("data", "tinyshakespeare", "--help");
        assertEquals(0, result.exitCode());
        assertTrue(result.out().contains("data/tinyshakespeare") && result.out().contains("--input"), result.out());
    }
}
