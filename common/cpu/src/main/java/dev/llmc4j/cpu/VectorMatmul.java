package dev.llmc4j.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast {@link Matmul}: all three products of a Linear layer are one GEMM, {@code C[m, n] += Σ_k A[m, k] B[k, n]}
 * with B's rows contiguous in n, computed by one register-tiled micro-kernel ({@link #kernel}).
 *
 * <pre>
 *   forward  outᵀ (OC, BT) = weight (OC, C) · inpᵀ (C, BT)     M=OC  N=BT  K=C   (inpᵀ packed once per call)
 *   dinp     dinp (BT, C) += dout (BT, OC) · weight (OC, C)    M=BT  N=C   K=OC
 *   dweight  dweight (OC, C) += doutᵀ (OC, BT) · inp (BT, C)   M=OC  N=C   K=BT
 * </pre>
 *
 * The micro-kernel keeps a tile of 2 rows x 4 vectors of C in 8 registers: each step over k loads 4 vectors of
 * B and broadcasts 2 scalars of A to feed 8 independent FMAs. Cache blocking keeps the B panel it sweeps in L1
 * (KB x 4 vectors) and the A block in L2; the threads of {@link Parallel} each own a contiguous range of the
 * output, so no two write the same floats. Shapes that are not multiples of the tile finish with narrower tiles
 * and scalar loops.
 */
public final class VectorMatmul implements Matmul {

    private static final VectorSpecies<Float> S = VectorMath.SPECIES; // species and lanes: short, as MR and NR
    private static final int W = S.length();
    private static final int MR = 2; // rows of the register tile
    private static final int NR = 4 * W; // columns of the register tile (4 vectors)
    private static final int KB = 128; // k per block: a KB x NR panel of B is 32 KiB at 512 bits, in L1
    private static final int MB = 64; // rows of A per block, kept in L2
    private static final int NB = 256; // forward: columns (positions) per packed block of inpᵀ
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    @Override
    public void forward(
            MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC) {
        // pack NB positions of inp transposed (C, NB), then every thread computes outᵀ for its own outputs
        MemorySegment packed = Scratch.shared((long) C * Math.min(BT, NB));
        for (int n0 = 0; n0 < BT; n0 += NB) {
            int nb = Math.min(NB, BT - n0);
            long first = n0;
            Parallel.forRange(C, (start, end) -> {
                for (long i = start; i < end; i++)
                    for (long n = 0; n < nb; n++)
                        packed.setAtIndex(FLOAT, i * nb + n, inp.getAtIndex(FLOAT, (first + n) * C + i));
            });
            Parallel.forRange(OC, MR, (mStart, mEnd) -> {
                MemorySegment tile = Scratch.local((long) MB * nb); // outᵀ block (MB, nb), then written transposed
                for (long m0 = mStart; m0 < mEnd; m0 += MB) {
                    int mb = (int) Math.min(MB, mEnd - m0);
                    tile.asSlice(0, (long) mb * nb * Float.BYTES).fill((byte) 0);
                    gemm(tile, nb, weight, m0 * C, C, 1, packed, nb, mb, nb, C);
                    for (long n = 0; n < nb; n++) {
                        for (long m = 0; m < mb; m++) {
                            float b = bias == null ? 0 : bias.getAtIndex(FLOAT, m0 + m);
                            out.setAtIndex(FLOAT, (first + n) * OC + m0 + m, tile.getAtIndex(FLOAT, m * nb + n) + b);
                        }
                    }
                }
            });
        }
    }

    @Override
    public void backward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dbias,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            int BT,
            int C,
            int OC) {
        // dinp += dout · weight: threads split the columns (channels), so each reads only its half of weight
        Parallel.forRange(C, NR, (nStart, nEnd) -> {
            for (long m0 = 0; m0 < BT; m0 += 256) {
                int mb = (int) Math.min(256, BT - m0);
                gemm(
                        dinp.asSlice((m0 * C + nStart) * Float.BYTES),
                        C,
                        dout,
                        m0 * OC,
                        OC,
                        1,
                        weight.asSlice(nStart * Float.BYTES),
                        C,
                        mb,
                        (int) (nEnd - nStart),
                        OC);
            }
        });
        // dweight += doutᵀ · inp and dbias += column sums of dout: threads split the outputs
        Parallel.forRange(OC, MR, (mStart, mEnd) -> {
            for (long m0 = mStart; m0 < mEnd; m0 += MB) {
                int mb = (int) Math.min(MB, mEnd - m0);
                gemm(dweight.asSlice(m0 * C * Float.BYTES), C, dout, m0, 1, OC, inp, C, mb, C, BT);
            }
            if (dbias != null) {
                for (long o = mStart; o < mEnd; o++) {
                    float sum = 0;
                    for (long bt = 0; bt < BT; bt++) sum += dout.getAtIndex(FLOAT, bt * OC + o);
                    dbias.setAtIndex(FLOAT, o, dbias.getAtIndex(FLOAT, o) + sum);
                }
            }
        });
    }

    /**
     * C[m, n] += Σ_k A[m, k] B[k, n] for m < M, n < N, k < K, where C[m, n] = c[m*ldc + n],
     * A[m, k] = a[aOffset + m*aRowStride + k*aColStride] and B[k, n] = b[k*ldb + n] (floats).
     */
    static void gemm(
            MemorySegment c,
            long ldc,
            MemorySegment a,
            long aOffset,
            long aRowStride,
            long aColStride,
            MemorySegment b,
            long ldb,
            int M,
            int N,
            int K) {
        int nFull = N - N % NR;
        for (int k0 = 0; k0 < K; k0 += KB) {
            int kb = Math.min(KB, K - k0);
            long aK = aOffset + k0 * aColStride;
            for (int n0 = 0; n0 < nFull; n0 += NR) { // the B panel (kb, NR) stays in L1 while the rows sweep it
                long bPanel = (long) k0 * ldb + n0;
                int m = 0;
                for (; m + MR <= M; m += MR)
                    kernel(c, m * ldc + n0, ldc, a, aK + m * aRowStride, aRowStride, aColStride, b, bPanel, ldb, kb);
                for (; m < M; m++)
                    for (int v = 0; v < NR; v += W)
                        rowVector(c, m * ldc + n0 + v, a, aK + m * aRowStride, aColStride, b, bPanel + v, ldb, kb);
            }
            int n = nFull;
            for (; n + W <= N; n += W)
                for (int m = 0; m < M; m++)
                    rowVector(c, m * ldc + n, a, aK + m * aRowStride, aColStride, b, (long) k0 * ldb + n, ldb, kb);
            for (; n < N; n++) {
                for (int m = 0; m < M; m++) {
                    float sum = 0;
                    for (int k = 0; k < kb; k++)
                        sum += a.getAtIndex(FLOAT, aK + m * aRowStride + k * aColStride)
                                * b.getAtIndex(FLOAT, (long) (k0 + k) * ldb + n);
                    c.setAtIndex(FLOAT, m * ldc + n, c.getAtIndex(FLOAT, m * ldc + n) + sum);
                }
            }
        }
    }

    /**
     * The micro-kernel: a 2 x 4-vector tile of C (at c0, row stride ldc) += A (2 rows from a0) · B panel (from b0).
     * Loads and stores are written out (byte offsets) so that they inline and the 8 sums stay in registers; 2 rows
     * (not 4) keep the method small enough for C1, which compiles it first, so that it reaches C2 at all.
     */
    private static void kernel(
            MemorySegment c,
            long c0,
            long ldc,
            MemorySegment a,
            long a0,
            long aRowStride,
            long aColStride,
            MemorySegment b,
            long b0,
            long ldb,
            int kb) {
        var c00 = FloatVector.zero(S);
        var c01 = FloatVector.zero(S);
        var c02 = FloatVector.zero(S);
        var c03 = FloatVector.zero(S);
        var c10 = FloatVector.zero(S);
        var c11 = FloatVector.zero(S);
        var c12 = FloatVector.zero(S);
        var c13 = FloatVector.zero(S);
        long a1 = a0 + aRowStride;
        for (int k = 0; k < kb; k++) {
            long row = 4 * (b0 + k * ldb), ak = k * aColStride;
            var b0v = FloatVector.fromMemorySegment(S, b, row, ORDER);
            var b1v = FloatVector.fromMemorySegment(S, b, row + 4 * W, ORDER);
            var b2v = FloatVector.fromMemorySegment(S, b, row + 8 * W, ORDER);
            var b3v = FloatVector.fromMemorySegment(S, b, row + 12 * W, ORDER);
            var x = FloatVector.broadcast(S, a.getAtIndex(FLOAT, a0 + ak));
            c00 = x.fma(b0v, c00);
            c01 = x.fma(b1v, c01);
            c02 = x.fma(b2v, c02);
            c03 = x.fma(b3v, c03);
            x = FloatVector.broadcast(S, a.getAtIndex(FLOAT, a1 + ak));
            c10 = x.fma(b0v, c10);
            c11 = x.fma(b1v, c11);
            c12 = x.fma(b2v, c12);
            c13 = x.fma(b3v, c13);
        }
        // C += the tile; written out too: a call that took the sums as arguments would box them
        long r0 = 4 * c0, r1 = r0 + 4 * ldc;
        FloatVector.fromMemorySegment(S, c, r0, ORDER).add(c00).intoMemorySegment(c, r0, ORDER);
        FloatVector.fromMemorySegment(S, c, r0 + 4 * W, ORDER).add(c01).intoMemorySegment(c, r0 + 4 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r0 + 8 * W, ORDER).add(c02).intoMemorySegment(c, r0 + 8 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r0 + 12 * W, ORDER).add(c03).intoMemorySegment(c, r0 + 12 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r1, ORDER).add(c10).intoMemorySegment(c, r1, ORDER);
        FloatVector.fromMemorySegment(S, c, r1 + 4 * W, ORDER).add(c11).intoMemorySegment(c, r1 + 4 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r1 + 8 * W, ORDER).add(c12).intoMemorySegment(c, r1 + 8 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r1 + 12 * W, ORDER).add(c13).intoMemorySegment(c, r1 + 12 * W, ORDER);
    }

    /** One row, one vector: the edges the 4 x 4 tile does not cover. */
    private static void rowVector(
            MemorySegment c,
            long c0,
            MemorySegment a,
            long a0,
            long aColStride,
            MemorySegment b,
            long b0,
            long ldb,
            int kb) {
        var acc = FloatVector.zero(S);
        for (int k = 0; k < kb; k++)
            acc = FloatVector.broadcast(S, a.getAtIndex(FLOAT, a0 + k * aColStride))
                    .fma(FloatVector.fromMemorySegment(S, b, (b0 + k * ldb) * 4L, ORDER), acc);
        FloatVector.fromMemorySegment(S, c, (c0) * 4L, ORDER).add(acc).intoMemorySegment(c, (c0) * 4L, ORDER);
    }

    /** Scratch buffers per thread, grown on demand and kept (a few MiB at most: NB positions, one MB x NB tile). */
    static final class Scratch {
        private Scratch() {}

        private static final ThreadLocal<MemorySegment> SHARED = ThreadLocal.withInitial(() -> MemorySegment.NULL);
        private static final ThreadLocal<MemorySegment> LOCAL = ThreadLocal.withInitial(() -> MemorySegment.NULL);

        /** The calling thread's buffer that it fills for the workers of the parallel loop it then starts. */
        static MemorySegment shared(long floats) {
            return grow(SHARED, floats);
        }

        /** A worker's own buffer. */
        static MemorySegment local(long floats) {
            return grow(LOCAL, floats);
        }

        private static MemorySegment grow(ThreadLocal<MemorySegment> holder, long floats) {
            MemorySegment segment = holder.get();
            if (segment.byteSize() < floats * Float.BYTES) {
                segment = Arena.ofAuto().allocate(floats * Float.BYTES, 64);
                holder.set(segment);
            }
            return segment;
        }
    }
}
