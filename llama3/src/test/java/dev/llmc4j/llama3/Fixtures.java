package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;

/** Where the PyTorch reference's fixtures are (reference/make_llama3_fixtures.sh, run by the Maven build). */
final class Fixtures {
    private Fixtures() {}

    static Path dir() {
        String dir = System.getProperty("llmc.fixtures");
        return Path.of(dir == null ? "target/fixtures" : dir);
    }

    /** The fixture file, or a skipped test naming the command that writes it. */
    static Path require(String name) {
        Path file = dir().resolve(name);
        assumeTrue(Files.isRegularFile(file), () -> "SKIPPED: " + file + " is missing; it needs PyTorch: run "
                + "reference/make_llama3_fixtures.sh " + dir());
        return file;
    }
}
