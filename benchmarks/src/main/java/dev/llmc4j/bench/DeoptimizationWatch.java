package dev.llmc4j.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.util.Comparator;
import java.util.Map;
import java.util.TreeMap;
import jdk.jfr.Recording;
import jdk.jfr.consumer.RecordedMethod;
import jdk.jfr.consumer.RecordingFile;

/**
 * Counts the JIT's deoptimizations while timed code runs, through a JFR recording of jdk.Deoptimization events
 * only. A few during the timed steps are normal; dozens in one method are a storm: C2's compiled loop is thrown
 * away again and again and runs meanwhile in the interpreter or C1, where Vector API calls are plain Java (that
 * made half of the runs 1.5x slower before the kernels were reshaped; see the docs' Performance page).
 */
final class DeoptimizationWatch implements AutoCloseable {
    private static final String EVENT = "jdk.Deoptimization";
    private final Recording recording = new Recording();

    DeoptimizationWatch() {
        recording.enable(EVENT).withoutStackTrace();
        recording.start();
    }

    /** Stops the recording; returns the deoptimizations per method (class.method), most first. */
    Map<String, Integer> stop() {
        recording.stop();
        var perMethod = new TreeMap<String, Integer>();
        try {
            var file = Files.createTempFile("deoptimizations", ".jfr");
            try {
                recording.dump(file);
                for (var event : RecordingFile.readAllEvents(file)) {
                    // a recording the user started (-XX:StartFlightRecording) adds its own events to the dump
                    if (!event.getEventType().getName().equals(EVENT)) continue;
                    RecordedMethod method = event.getValue("method");
                    String name = method == null ? "?" : method.getType().getName() + "." + method.getName();
                    perMethod.merge(name, 1, Integer::sum);
                }
            } finally {
                Files.deleteIfExists(file);
            }
        } catch (IOException e) {
            throw new UncheckedIOException("reading the JIT's deoptimization events", e);
        }
        return perMethod;
    }

    /** "N deoptimizations during the timed steps (most in one method: M, name)" or "... none". */
    static String summary(Map<String, Integer> perMethod) {
        int total = perMethod.values().stream().mapToInt(Integer::intValue).sum();
        if (total == 0) return "JIT: no deoptimizations during the timed steps";
        var most = perMethod.entrySet().stream()
                .max(Comparator.comparingInt(Map.Entry::getValue))
                .orElseThrow();
        return "JIT: %d deoptimizations during the timed steps (most in one method: %d, %s)%s"
                .formatted(
                        total,
                        most.getValue(),
                        most.getKey(),
                        most.getValue() >= 10 ? "; a storm: see the docs' Performance page" : "");
    }

    @Override
    public void close() {
        recording.close();
    }
}
