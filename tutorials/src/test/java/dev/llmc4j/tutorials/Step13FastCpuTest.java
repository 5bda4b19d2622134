package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.gaussian;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static dev.llmc4j.tutorials.Tensors.segment;
import static dev.llmc4j.tutorials.Tensors.zeros;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.tutorials.step13.VectorDot;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 13: the lesson's Vector API loops equal scalar loops, and common's fast matmul equals its baseline. */
class Step13FastCpuTest {
    final Random random = new Random(13);

    /** Ragged lengths around the vector width W and the 4 W of the four-accumulator loop. */
    static int[] raggedSizes() {
        int w = VectorDot.lanes();
        return new int[] {0, 1, w - 1, w, w + 1, 4 * w - 1, 4 * w, 4 * w + 3, 37, 1000, 1023};
    }

    float[] floats(int n) {
        var values = new float[n];
        for (int i = 0; i < n; i++) values[i] = (float) random.nextGaussian();
        return values;
    }

    /**
     * Summing n products in float, in any order, is within about n·2⁻²⁴·Σ|a·b| of the exact sum: the two versions
     * add in different orders, so they may differ by twice that, never more.
     */
    static double roundingBound(float[] a, float[] b, int n) {
        double magnitude = 0;
        for (int i = 0; i < n; i++) magnitude += Math.abs((double) a[i] * b[i]);
        return 2 * Math.max(n, 1) * 0x1p-24 * magnitude;
    }

    @Test
    void vectorDotAndAxpyEqualScalarLoops() {
        System.out.printf(
                "this CPU: %d float lanes per vector (%d bits), %d threads in Parallel%n",
                VectorDot.lanes(), VectorDot.lanes() * 32, Parallel.threads());
        double worst = 0;
        for (int n : raggedSizes()) {
            float[] a = floats(n), b = floats(n);
            float scalar = VectorDot.scalarDot(a, b, n);
            double bound = roundingBound(a, b, n);
            float one = VectorDot.dot(a, b, n), four = VectorDot.dot4(a, 0, b, 0, n);
            assertTrue(Math.abs(one - scalar) <= bound, "dot n=" + n + ": " + one + " vs " + scalar);
            assertTrue(Math.abs(four - scalar) <= bound, "dot4 n=" + n + ": " + four + " vs " + scalar);
            if (bound > 0) worst = Math.max(worst, Math.max(Math.abs(one - scalar), Math.abs(four - scalar)) / bound);

            // axpy has no sums to reorder, one fma per element: with Math.fma in the scalar loop, equal bit for bit
            float[] y = floats(n), yScalar = y.clone();
            VectorDot.axpy(y, 0.37f, a, n);
            VectorDot.scalarAxpy(yScalar, 0.37f, a, n);
            assertArrayEquals(yScalar, y, "axpy n=" + n);
        }
        System.out.printf(
                "dot, dot4 vs scalar loop on %d ragged sizes: at most %.2f of the rounding bound%n",
                raggedSizes().length, worst);
    }

    @Test
    void vectorMatvecEqualsScalarLoop() {
        for (int n : raggedSizes()) {
            int rows = 5;
            float[] w = floats(rows * n), x = floats(n);
            float[] vector = VectorDot.matvec(w, x, rows, n), scalar = VectorDot.scalarMatvec(w, x, rows, n);
            for (int r = 0; r < rows; r++) {
                float[] row = java.util.Arrays.copyOfRange(w, r * n, r * n + n);
                assertTrue(Math.abs(vector[r] - scalar[r]) <= roundingBound(row, x, n), "matvec n=" + n + " row " + r);
            }
        }
    }

    @Test
    void fastMatmulEqualsBaselineThroughKernels() {
        // past one register tile (6 x 64 at 512 bits) and one cache block each way (256 along k, 96 outputs per
        // forward tile, 144 rows of A), and ragged everywhere
        int BT = 13, C = 300, OC = 150;
        double[] inp = gaussian(random, BT * C, 1), weight = gaussian(random, OC * C, 0.1);
        double[] bias = gaussian(random, OC, 0.1), dout = gaussian(random, BT * OC, 1);
        // a model is built with a kernel set (GPT2.randomInit(config, GPT2Kernels.BASELINE), or VECTORIZED, the
        // default); the set's matmul is Matmul.BASELINE or Matmul.VECTOR, compared here through the sets
        double[][] baseline = run(CpuKernels.BASELINE, inp, weight, bias, dout, BT, C, OC);
        double[][] fast = run(CpuKernels.VECTORIZED, inp, weight, bias, dout, BT, C, OC);
        String[] names = {"out", "dinp", "dweight", "dbias"};
        var line = new StringBuilder("Matmul.VECTOR vs BASELINE (" + BT + "x" + C + " -> " + OC + "):");
        for (int i = 0; i < names.length; i++) {
            double error = relativeError(fast[i], baseline[i]);
            line.append(String.format(" %s %.1e", names[i], error));
            assertTrue(error < 1e-5, names[i] + ": " + error); // fp32 rounding, summed in another order
        }
        System.out.println(line);
    }

    static double[][] run(
            CpuKernels kernels, double[] inp, double[] weight, double[] bias, double[] dout, int BT, int C, int OC) {
        MemorySegment out = zeros(BT * OC), dinp = zeros(BT * C), dweight = zeros(OC * C), dbias = zeros(OC);
        kernels.matmulForward(out, segment(inp), segment(weight), segment(bias), BT, C, OC);
        kernels.matmulBackward(dinp, dweight, dbias, segment(dout), segment(inp), segment(weight), BT, C, OC, true);
        return new double[][] {
            doubles(out, BT * OC), doubles(dinp, BT * C), doubles(dweight, OC * C), doubles(dbias, OC)
        };
    }
}
