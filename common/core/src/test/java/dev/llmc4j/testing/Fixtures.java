package dev.llmc4j.testing;

import static org.junit.jupiter.api.Assertions.fail;

import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Assumptions;

/**
 * Files written by our PyTorch reference (reference/make_fixtures.sh), found in {@code -Dllmc.fixtures} (the
 * build sets it to target/fixtures at the project root). Without them a test is skipped with a message naming
 * the command that makes them; with {@code -Dllmc.requireFixtures=true} (CI) it fails instead, so a missing
 * fixture can never pass silently.
 */
public final class Fixtures {
    private Fixtures() {}

    public static Path directory() {
        String configured = System.getProperty("llmc.fixtures");
        return Path.of(configured != null ? configured : "target/fixtures").toAbsolutePath();
    }

    /** The project root (where pom.xml and reference/ are). */
    public static Path projectRoot() {
        String configured = System.getProperty("llmc.root");
        return Path.of(configured != null ? configured : "..").toAbsolutePath().normalize();
    }

    /** A fixture file that must exist, else the test is skipped (or fails under -Dllmc.requireFixtures=true). */
    public static Path require(String fileName, String makeCommand) {
        Path file = directory().resolve(fileName);
        if (!Files.isRegularFile(file)) {
            String message = "fixture " + file + " is missing; make it with: " + makeCommand
                    + " (needs /usr/bin/python3 with torch: apt-get install python3-torch libopenblas0-openmp)";
            if (Boolean.getBoolean("llmc.requireFixtures")) fail(message);
            Assumptions.abort(message);
        }
        return file;
    }
}
