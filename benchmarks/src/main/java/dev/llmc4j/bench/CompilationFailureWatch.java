package dev.llmc4j.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.time.Duration;
import java.util.Set;
import java.util.TreeSet;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedMethod;
import jdk.jfr.consumer.RecordingFile;

/**
 * Names the project's methods that C1 could not compile, through a JFR recording of jdk.Compilation events (all of
 * them: threshold 0) started before the warm-up. Such a method runs in the interpreter, or in C1's profile-free
 * code, whose Vector API calls are plain Java with every vector boxed, until C2 compiles it, and again after each
 * trap in C2's code; a method stuck there ran a Llama 3 SwiGLU backward at 14 ms a call instead of 1.7. The usual
 * cause is a row loop written out too long ("out of virtual registers"); the cure is a smaller method (see the
 * docs' Performance page).
 */
final class CompilationFailureWatch implements AutoCloseable {
    private static final String EVENT = "jdk.Compilation";
    private static final String PROJECT = "dev.llmc4j.";
    private final Recording recording = new Recording();

    CompilationFailureWatch() {
        recording.enable(EVENT).withThreshold(Duration.ZERO).withoutStackTrace();
        recording.start();
    }

    /** Stops the recording; returns the project's methods (class.method) whose C1 compilation failed. */
    Set<String> stop() {
        recording.stop();
        var failed = new TreeSet<String>();
        try {
            var file = Files.createTempFile("compilations", ".jfr");
            try {
                recording.dump(file);
                for (var event : RecordingFile.readAllEvents(file)) {
                    if (!event.getEventType().getName().equals(EVENT)) continue; // a user's profile adds its own
                    boolean c1 = event.getInt("compileLevel") <= 3;
                    RecordedMethod method = event.getValue("method");
                    if (!c1 || event.getBoolean("succeded") || method == null) continue; // (JFR's spelling)
                    String name = method.getType().getName() + "." + method.getName();
                    if (name.startsWith(PROJECT)) failed.add(name);
                }
            } finally {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading the JIT's compilation events", e);
        }
        return failed;
    }

    /** "JIT: C1 compiled every method of the project it tried" or the ones it gave up on. */
    static String summary(Set<String> failed) {
        if (failed.isEmpty()) return "JIT: C1 compiled every method of the project it tried";
        return "JIT: C1 gave up on %d of the project's methods (boxed vector calls until C2 compiles them): %s"
                .formatted(failed.size(), String.join(", ", failed));
    }

    @Override
    public void close() {
        recording.close();
    }
}
