package dev.llmc4j.train;

import java.io.PrintStream;

/**
 * A live progress bar under the step lines, drawn only on an interactive terminal (never into a pipe or a
 * log): {@code [#########...........]  120/400  ETA 3m12s}. Each new log line first clears it.
 */
final class ProgressLine {
    private static final int WIDTH = 30;
    private final PrintStream out;
    private final int total;
    private final boolean interactive;
    private boolean shown;

    ProgressLine(PrintStream out, int total) {
        this.out = out;
        this.total = total;
        var console = System.console();
        this.interactive = out == System.out && console != null && console.isTerminal();
    }

    void show(int done, double millisPerStep) {
        if (!interactive) return;
        int filled = (int) ((long) WIDTH * done / Math.max(1, total));
        long etaSeconds = (long) ((total - done) * millisPerStep / 1000);
        out.printf(
                "[%s%s] %d/%d  ETA %dm%02ds",
                "#".repeat(filled), ".".repeat(WIDTH - filled), done, total, etaSeconds / 60, etaSeconds % 60);
        out.flush();
        shown = true;
    }

    void clear() {
        if (!shown) return;
        out.print("\r\033[K");
        shown = false;
    }
}
