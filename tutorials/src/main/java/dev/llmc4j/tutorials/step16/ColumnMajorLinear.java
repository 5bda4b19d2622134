package dev.llmc4j.tutorials.step16;

/**
 * Step 16, part 3: the one idea behind every cuBLASLt call in gpt2-cuda. cuBLAS is column-major (Fortran's
 * order); our tensors are row-major. A row-major (r x c) array, read column-major, is the (c x r) transpose; so
 * instead of out = inp W^T we ask cuBLAS for out^T = W inp^T, which lands in memory as row-major out.
 *
 * <pre>
 *   row-major:      out (rows, outCh) = inp (rows, inCh) · W^T          W stored (outCh, inCh), like nn.Linear
 *   column-major:   out^T (outCh, rows) = op(W) (outCh, inCh) · inp^T (inCh, rows)
 *     first  = W:   stored bytes read column-major are (inCh x outCh), so op = T, ld = inCh
 *     second = inp: stored bytes read column-major are inp^T (inCh x rows), op = N, ld = inCh
 *     D      = out: read column-major (outCh x rows), ld = outCh;  m = outCh, n = rows, k = inCh
 * </pre>
 * The bias epilogue adds a vector of length m to every column of D: with m = outCh, one bias per output channel.
 */
public final class ColumnMajorLinear {
    private ColumnMajorLinear() {}

    /** cublasOperation_t: CUBLAS_OP_N = 0 (as stored), CUBLAS_OP_T = 1 (transposed). */
    public static final int OP_N = 0, OP_T = 1;

    /** D (m x n, ldD) = op(first) (m x k) · op(second) (k x n), every matrix column-major with its leading dimension. */
    public record Call(int opFirst, int opSecond, long m, long n, long k, long ldFirst, long ldSecond, long ldD) {}

    // tag::linear[]
    /** The column-major call for out = inp · W^T (+ bias), from the derivation above. */
    public static Call linearForward(long rows, long inChannels, long outChannels) {
        return new Call(OP_T, OP_N, outChannels, rows, inChannels, inChannels, inChannels, outChannels);
    }
    // end::linear[]

    /** Runs the call the way cuBLAS defines it (column-major, op applied), in plain loops: the meaning of a Call. */
    public static float[] run(Call c, float[] first, float[] second, float[] bias) {
        float[] d = new float[(int) (c.n() * c.ldD())];
        for (int col = 0; col < c.n(); col++)
            for (int row = 0; row < c.m(); row++) {
                double sum = bias == null ? 0 : bias[row];
                for (int i = 0; i < c.k(); i++) {
                    float x = c.opFirst() == OP_N
                            ? first[(int) (i * c.ldFirst() + row)]
                            : first[(int) (row * c.ldFirst() + i)];
                    float y = c.opSecond() == OP_N
                            ? second[(int) (col * c.ldSecond() + i)]
                            : second[(int) (i * c.ldSecond() + col)];
                    sum += (double) x * y;
                }
                d[(int) (col * c.ldD() + row)] = (float) sum;
            }
        return d;
    }
}
