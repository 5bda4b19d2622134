package dev.llmc4j.train;

import java.io.PrintStream;

/**
 * One training step of a parity check (`./llmc test-gpt2`, CPU or GPU) against a {@link DebugState}'s recorded
 * losses: our loss, the expected one (NaN when there is none to compare with) and the verdict.
 */
public record ParityStep(int step, float loss, float expected, boolean ok) {

    /** A step compared with {@code reference}'s loss, printed as llm.c's test prints it. */
    public static ParityStep compared(
            PrintStream out, int step, float loss, float expected, boolean ok, String reference, double ms) {
        out.printf(
                "step %d: loss %.6f (%s %.6f, |diff| %.2e, %s) (took %.1f ms)%n",
                step, loss, reference, expected, Math.abs(loss - expected), ok ? "OK" : "NOT OK", ms);
        return new ParityStep(step, loss, expected, ok);
    }

    /** A step with nothing to compare with: printed, always ok. */
    public static ParityStep uncompared(PrintStream out, int step, float loss, double ms) {
        out.printf("step %d: loss %.6f (took %.1f ms)%n", step, loss, ms);
        return new ParityStep(step, loss, Float.NaN, true);
    }
}
