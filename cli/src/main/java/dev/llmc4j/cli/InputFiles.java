package dev.llmc4j.cli;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;

/** Command-line inputs that may be globs: {@code corpus/*.txt} expands to its matches in the folder, sorted. */
final class InputFiles {
    private InputFiles() {}

    static List<Path> expand(List<String> inputs) {
        var files = new ArrayList<Path>();
        for (String input : inputs) {
            if (!input.contains("*") && !input.contains("?") && !input.contains("[")) {
                files.add(Path.of(input));
                continue;
            }
            Path pattern = Path.of(input);
            Path folder = pattern.getParent() != null ? pattern.getParent() : Path.of(".");
            var matcher = FileSystems.getDefault().getPathMatcher("glob:" + pattern.getFileName());
            try (Stream<Path> entries = Files.list(folder)) {
                List<Path> matches = entries.filter(p -> Files.isRegularFile(p) && matcher.matches(p.getFileName()))
                        .sorted()
                        .toList();
                if (matches.isEmpty()) throw new LlmcException("no files match " + input);
                files.addAll(matches);
            } catch (IOException e) {
                throw new LlmcException("cannot list " + folder + " for " + input + ": " + e.getMessage(), e);
            }
        }
        return files;
    }
}
