package dev.llmc4j.format;

import dev.llmc4j.util.LlmcException;
import java.nio.file.Path;

/** A file that is not what its header or its name promises. The message names the file, the field, expected and found. */
public final class FileFormatException extends LlmcException {
    public FileFormatException(Path file, String field, Object expected, Object found) {
        super("%s: %s: expected %s, found %s".formatted(file, field, expected, found));
    }

    public FileFormatException(Path file, String message) {
        super(file + ": " + message);
    }
}
