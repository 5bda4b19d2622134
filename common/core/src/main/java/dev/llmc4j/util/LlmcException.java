package dev.llmc4j.util;

/**
 * An error the user can fix (bad input, a missing file, a config that does not fit): the command line prints
 * its message on one line and exits with status 1, without a stack trace. Programming errors stay ordinary
 * exceptions.
 */
public class LlmcException extends RuntimeException {
    public LlmcException(String message) {
        super(message);
    }

    public LlmcException(String message, Throwable cause) {
        super(message, cause);
    }
}
