package dev.llmc4j.cpu;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

/** Our vector exp and tanh against Math's, over their whole useful range. */
class VectorMathTest {

    private static float[] apply(java.util.function.UnaryOperator<FloatVector> f, float[] x) {
        float[] out = new float[x.length];
        for (int i = 0; i < x.length; i += VectorMath.LANES) {
            var mask = VectorMath.SPECIES.indexInRange(i, x.length);
            f.apply(FloatVector.fromArray(VectorMath.SPECIES, x, i, mask)).intoArray(out, i, mask);
        }
        return out;
    }

    /** The in-register transpose moves every float of the block to its mirror place, whatever the lane count. */
    @Test
    void transposeMirrorsTheBlock() {
        int n = VectorMath.LANES;
        float[] block = new float[n * n];
        for (int i = 0; i < block.length; i++) block[i] = i;
        VectorMath.transpose(block);
        for (int r = 0; r < n; r++)
            for (int c = 0; c < n; c++) assertEquals(c * n + r, block[r * n + c], "row " + r + " lane " + c);
    }

    @Test
    void expWithinTwoUlp() {
        float[] x = new float[20001];
        for (int i = 0; i < x.length; i++) x[i] = -87f + 175f * i / (x.length - 1);
        float[] e = apply(VectorMath::exp, x);
        for (int i = 0; i < x.length; i++) {
            double expected = Math.exp(x[i]);
            assertTrue(
                    Math.abs(e[i] - expected) <= 2 * Math.ulp((float) expected),
                    "exp(" + x[i] + ") = " + e[i] + ", expected " + expected);
        }
        assertEquals(1f, apply(VectorMath::exp, new float[] {0f})[0]);
    }

    @Test
    void tanhWithinTwoTenMillionthsAndSaturates() {
        float[] x = new float[20001];
        for (int i = 0; i < x.length; i++) x[i] = -20f + 40f * i / (x.length - 1);
        float[] t = apply(VectorMath::tanh, x);
        for (int i = 0; i < x.length; i++) {
            assertEquals(Math.tanh(x[i]), t[i], 2.5e-7, "tanh(" + x[i] + ")");
        }
        float[] extremes = apply(VectorMath::tanh, new float[] {-1000f, 1000f, Float.MAX_VALUE, -Float.MAX_VALUE});
        assertEquals(-1f, extremes[0]);
        assertEquals(1f, extremes[1]);
        assertEquals(1f, extremes[2]);
        assertEquals(-1f, extremes[3]);
    }
}
