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
    private static final int KB = 256; // k per block: the KB x NR panel of B (64 KiB at 512 bits) stays near, in L1-L2
    private static final int MB = 96; // rows of A per block (a multiple of MR), kept in L2
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
        Parallel.forRange(
                C,
                NR,
                (nStart, nEnd) -> gemm(
                        dinp.asSlice(nStart * Float.BYTES),
                        C,
                        dout,
                        0,
                        OC,
                        1,
                        weight.asSlice(nStart * Float.BYTES),
                        C,
                        BT,
                        (int) (nEnd - nStart),
                        OC));
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
                for (; m < M; m++) // the last M % MR rows: one row of 4 vectors at a time
                rowTile(c, m * ldc + n0, a, aK + m * aRowStride, aColStride, b, bPanel, ldb, kb);
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
     * Loads and stores are written out (byte offsets) so that they inline and the 8 sums stay in registers (a
     * helper that took the sums as arguments pushes C2 past its inlining budget and boxes every vector). Why not a
     * larger tile: 4 x 4 and 6 x 4 run 1.6-2.3x faster once C2 compiles them, but HotSpot compiles every method
     * with C1 first, and C1 gives up on them ("out of virtual registers", for the on-stack-replacement version at
     * least); with C2 busy the method then stays in C1's limited-profile code, every vector an object, for
     * minutes (measured: a test JVM's d12 step went from seconds to 177 s). 2 x 4 compiles at every tier.
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

    /** One row of 4 vectors: the last M % MR rows of a panel (4 sums in flight, so still not latency-bound). */
    private static void rowTile(
            MemorySegment c,
            long c0,
            MemorySegment a,
            long a0,
            long aColStride,
            MemorySegment b,
            long b0,
            long ldb,
            int kb) {
        var c0v = FloatVector.zero(S);
        var c1v = FloatVector.zero(S);
        var c2v = FloatVector.zero(S);
        var c3v = FloatVector.zero(S);
        for (int k = 0; k < kb; k++) {
            long row = 4 * (b0 + k * ldb);
            var x = FloatVector.broadcast(S, a.getAtIndex(FLOAT, a0 + k * aColStride));
            c0v = x.fma(FloatVector.fromMemorySegment(S, b, row, ORDER), c0v);
            c1v = x.fma(FloatVector.fromMemorySegment(S, b, row + 4 * W, ORDER), c1v);
            c2v = x.fma(FloatVector.fromMemorySegment(S, b, row + 8 * W, ORDER), c2v);
            c3v = x.fma(FloatVector.fromMemorySegment(S, b, row + 12 * W, ORDER), c3v);
        }
        long r = 4 * c0;
        FloatVector.fromMemorySegment(S, c, r, ORDER).add(c0v).intoMemorySegment(c, r, ORDER);
        FloatVector.fromMemorySegment(S, c, r + 4 * W, ORDER).add(c1v).intoMemorySegment(c, r + 4 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r + 8 * W, ORDER).add(c2v).intoMemorySegment(c, r + 8 * W, ORDER);
        FloatVector.fromMemorySegment(S, c, r + 12 * W, ORDER).add(c3v).intoMemorySegment(c, r + 12 * W, ORDER);
    }

    /** One row, one vector: the last N % NR columns. */
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
