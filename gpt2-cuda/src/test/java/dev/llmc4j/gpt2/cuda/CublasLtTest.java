package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The row-major to column-major bookkeeping, checked by running each {@link CublasLt.Gemm} through a tiny
 * column-major GEMM written here the way the cuBLAS documentation defines it.
 */
class CublasLtTest {

    /** D (m x n, col-major, ldd) = op(X) op(Y) (+ beta D), with cuBLAS's conventions. */
    static void columnMajorGemm(CublasLt.Gemm g, float[] first, float[] second, float[] d, boolean accumulate) {
        for (int col = 0; col < g.n(); col++) {
            for (int row = 0; row < g.m(); row++) {
                double sum = 0;
                for (int i = 0; i < g.k(); i++) {
                    // op(first)[row, i]
                    float a = g.opFirst() == CublasLt.OP_N
                            ? first[(int) (i * g.ldFirst() + row)]
                            : first[(int) (row * g.ldFirst() + i)];
                    // op(second)[i, col]
                    float b = g.opSecond() == CublasLt.OP_N
                            ? second[(int) (col * g.ldSecond() + i)]
                            : second[(int) (i * g.ldSecond() + col)];
                    sum += (double) a * b;
                }
                int idx = (int) (col * g.ldD() + row);
                d[idx] = (float) (sum + (accumulate ? d[idx] : 0));
            }
        }
    }

    static float[] random(Random rng, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = rng.nextFloat() * 2 - 1;
        return a;
    }

    @Test
    void linearForwardIsInpTimesWeightTransposed() {
        var rng = new Random(1);
        int rows = 5, in = 7, out = 3;
        float[] inp = random(rng, rows * in), w = random(rng, out * in), y = new float[rows * out];
        var g = CublasLt.linearForward(rows, in, out);
        // operands swap: first = weight (the row-major right-hand factor), second = inp
        columnMajorGemm(g, w, inp, y, false);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double e = 0;
                for (int i = 0; i < in; i++) e += inp[r * in + i] * w[o * in + i];
                assertEquals(e, y[r * out + o], 1e-5, "y[" + r + "," + o + "]");
            }
        assertEquals(CublasLt.OP_T, g.opFirst());
        assertEquals(CublasLt.OP_N, g.opSecond());
        assertEquals(out, g.m()); // the bias epilogue adds a vector of length m: one per output channel
    }

    @Test
    void linearBackwardInputAndWeight() {
        var rng = new Random(2);
        int rows = 6, in = 4, out = 5;
        float[] inp = random(rng, rows * in), w = random(rng, out * in), dout = random(rng, rows * out);
        float[] dinp = new float[rows * in];
        columnMajorGemm(CublasLt.linearBackwardInput(rows, in, out), w, dout, dinp, false);
        for (int r = 0; r < rows; r++)
            for (int i = 0; i < in; i++) {
                double e = 0;
                for (int o = 0; o < out; o++) e += dout[r * out + o] * w[o * in + i];
                assertEquals(e, dinp[r * in + i], 1e-5);
            }
        float[] dw = random(rng, out * in), before = dw.clone();
        columnMajorGemm(CublasLt.linearBackwardWeight(rows, in, out), inp, dout, dw, true); // accumulates
        for (int o = 0; o < out; o++)
            for (int i = 0; i < in; i++) {
                double e = before[o * in + i];
                for (int r = 0; r < rows; r++) e += dout[r * out + o] * inp[r * in + i];
                assertEquals(e, dw[o * in + i], 1e-5);
            }
    }

    @Test
    void generalRowMajorWithAllTransposeCombinations() {
        var rng = new Random(3);
        int M = 4, N = 3, K = 5;
        for (boolean ta : new boolean[] {false, true})
            for (boolean tb : new boolean[] {false, true}) {
                float[] a = random(rng, M * K), b = random(rng, K * N), d = new float[M * N];
                var g = CublasLt.rowMajor(ta, tb, M, N, K);
                // the layouts describe the stored operands: rows*cols elements, ld = rows (column-major)
                assertEquals(g.firstRows(), g.ldFirst());
                assertEquals(g.secondRows(), g.ldSecond());
                assertEquals((long) K * N, g.firstRows() * g.firstCols());
                assertEquals((long) M * K, g.secondRows() * g.secondCols());
                columnMajorGemm(g, b, a, d, false);
                for (int r = 0; r < M; r++)
                    for (int c = 0; c < N; c++) {
                        double e = 0;
                        for (int i = 0; i < K; i++) {
                            float av = ta ? a[i * M + r] : a[r * K + i];
                            float bv = tb ? b[c * K + i] : b[i * N + c];
                            e += av * bv;
                        }
                        assertEquals(e, d[r * N + c], 1e-5, "ta=" + ta + " tb=" + tb);
                    }
            }
    }

    @Test
    void librarySearchOrder() {
        List<String> c = NativeLibraries.candidates(
                "/opt/my/libcublasLt.so.12",
                List.of("libcublasLt.so.13", "libcublasLt.so.12"),
                List.of("/usr/local/cuda/lib64", "", "/usr/lib/x86_64-linux-gnu"));
        assertEquals(
                List.of(
                        "/opt/my/libcublasLt.so.12",
                        "libcublasLt.so.13",
                        "libcublasLt.so.12",
                        "/usr/local/cuda/lib64/libcublasLt.so.13",
                        "/usr/local/cuda/lib64/libcublasLt.so.12",
                        "/usr/lib/x86_64-linux-gnu/libcublasLt.so.13",
                        "/usr/lib/x86_64-linux-gnu/libcublasLt.so.12"),
                c);
        assertEquals(
                "libcuda.so.1",
                NativeLibraries.candidates(null, List.of("libcuda.so.1"), List.of())
                        .getFirst());
        assertTrue(CublasLt.libraryCandidates().contains("/usr/local/cuda/lib64/libcublasLt.so.12"));
    }
}
