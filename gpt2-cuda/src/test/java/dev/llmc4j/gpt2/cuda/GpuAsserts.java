package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.fail;

/** |actual - expected| <= atol + rtol * |expected|, reporting the worst element. */
final class GpuAsserts {
    private GpuAsserts() {}

    static void assertClose(String what, float[] expected, float[] actual, double atol, double rtol) {
        if (expected.length > actual.length)
            fail(what + ": expected " + expected.length + " values, got " + actual.length);
        int worst = -1;
        double worstExcess = 0;
        for (int i = 0; i < expected.length; i++) {
            double diff = Math.abs((double) actual[i] - expected[i]);
            double allowed = atol + rtol * Math.abs(expected[i]);
            if (!(diff <= allowed) && (worst < 0 || diff - allowed > worstExcess || Double.isNaN(diff))) {
                worst = i;
                worstExcess = diff - allowed;
            }
        }
        if (worst >= 0)
            fail(what + ": element " + worst + " expected " + expected[worst] + " but was " + actual[worst] + " (atol "
                    + atol + ", rtol " + rtol + ")");
    }

    static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) m = Math.max(m, Math.abs(v));
        return m;
    }
}
