package dev.llmc4j.cli.monitor;

import dev.llmc4j.util.AtomicFiles;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;

/**
 * The live page as files, for a finished run: the same page and Chart.js, with the state in {@code state.js}
 * (a script, not a JSON file the page fetches: browsers do not let a page opened from a file read files).
 */
public final class StaticReport {
    private StaticReport() {}

    /** Writes the page for {@code stateJson} (a {@link RunMonitor} snapshot) into a folder; returns its index.html. */
    public static Path write(Path folder, String stateJson) {
        for (String name : MonitorAssets.FILES) AtomicFiles.write(folder.resolve(name), MonitorAssets.read(name));
        String script = "window.LLMC_STATE = " + stateJson + ";\n";
        AtomicFiles.write(folder.resolve("state.js"), script.getBytes(StandardCharsets.UTF_8));
        return folder.resolve("index.html");
    }
}
