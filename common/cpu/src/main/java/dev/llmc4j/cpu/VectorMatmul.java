package dev.llmc4j.cpu;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import java.util.Arrays;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/**
 * The fast {@link Matmul}: all three products of a Linear layer are one GEMM, {@code C[m, n] += Σ_k A[m, k] B[k, n]}
 * with B's rows contiguous in n, computed by one register-tiled micro-kernel ({@link #kernel}).
 *
 * <pre>
 *   forward  out (BT, OC) = inp (BT, C) · weightᵀ (C, OC)      M=BT  N=OC  K=C   (weightᵀ packed as it goes)
 *       or   outᵀ (OC, BT) = weight (OC, C) · inpᵀ (C, BT)     M=OC  N=BT  K=C   (inpᵀ packed once per call)
 *   dinp     dinp (BT, C) += dout (BT, OC) · weight (OC, C)    M=BT  N=C   K=OC
 *   dweight  dweight (OC, C) += doutᵀ (OC, BT) · inp (BT, C)   M=OC  N=C   K=BT
 * </pre>
 *
 * The forward's B must be contiguous in n, and neither weight nor inp is contiguous in the right direction: one of
 * them is transposed. The first way transposes the weight while packing it and writes out row by row; the second
 * transposes the few positions of a small batch, and then the result, tile by tile ({@link #forward} picks).
 *
 * The micro-kernel keeps a tile of 6 rows x 4 vectors of C in 24 registers (6 x 2 on CPUs with 16 vector
 * registers, AVX2: {@link #kernel6x2}): each step over k loads 4 vectors of
 * B and broadcasts 6 scalars of A to feed 24 independent FMAs. Both operands are first copied into heap arrays in
 * the order the kernel reads them (packed panels, zero-padded to whole tiles), in cache-sized blocks: a panel of
 * B (a block of k x NR) stays in L1-L2 while MC rows of A pass over it. The threads of {@link Parallel} each own a
 * contiguous range of the output, so no two write the same floats. The backward can overwrite dweight and dbias
 * instead of adding to them (BLAS's beta = 0): the first backward of a step then needs no zeroed gradients, and
 * never reads them.
 */
public final class VectorMatmul implements Matmul {

    private static final VectorSpecies<Float> S = VectorMath.SPECIES; // species and lanes: short, as MR and NR
    private static final int W = S.length();
    private static final int MR = 6; // rows of the register tile
    // columns of the register tile: 4 vectors where the CPU has 32 vector registers (AVX-512: 512-bit lanes), 2 where
    // it has 16 (AVX2, 256-bit lanes and narrower): 6 x 4 tiles there would keep 24 sums in 16 registers, spilling
    private static final int VECTORS = W >= 16 ? 4 : 2;
    private static final int NR = VECTORS * W;
    // k per block: the kb x NR panel of B (64 KiB at 512 bits for 256 rows) stays near, in L1-L2, while A passes
    private static final int KB = 256; // the forward's when it transposes positions (the other way: GEMM_KB)
    // gemm's (the backward's and attention's) and the forward's that packs the weight transposed: half as many passes
    // adding tiles into C where K is long (the output layer's dinp, K = the vocabulary), and one block where dweight's
    // K is 512 positions: Llama 3's backward 4% faster alternating in one JVM (d12's 2%), the positions' forward
    // slower with it; Llama 3's output layer backward 110 ms against 115 with 768 or 1,024
    private static final int GEMM_KB = 512;
    private static final int MC = 144; // rows of A packed at once (a multiple of MR): 144 KiB, kept in L2
    private static final int PACKED_B = 1 << 20; // floats of B packed at once (4 MiB, kept in L3)
    private static final int MB = 96; // forward, positions transposed: outputs per tile of outᵀ (a multiple of MR)
    // the same: columns (positions) per packed block of inpᵀ; each block reads all of the weight again (512 against
    // 256, alternating in one JVM: d12 B=1 T=1024's forward 1,237 vs 1,313 ms median, Llama 3's 146 vs 150)
    private static final int NB = 512;
    private static final ByteOrder ORDER = ByteOrder.nativeOrder();
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    @Override
    public void forward(
            MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC) {
        forward(out, inp, weight, bias, BT, C, OC, null);
    }

    /**
     * As {@link #forward}; each thread runs epilogue (if not null) on each block of out it has just written. Of the
     * two ways, the one that moves fewer floats through a transpose: the weight (OC x C) once, or inp and the result
     * (BT x C + BT x OC). Llama 3's output layer at B=4 T=128 (512 positions, C 512, 32k outputs) takes 52 ms the
     * first way and 54 ms the second (59 before its write-back wrote each row's outputs in a row), alternating in
     * one JVM; GPT-2's at B=4 T=64 (256 positions, C 768, 50k outputs) 70 ms the first way and 64 ms the second
     * (before that reordering), the weight there three times the result.
     */
    @Override
    public void forward(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC,
            Epilogue epilogue) {
        if ((long) OC * C <= (long) BT * (C + OC)) {
            // threads split the outputs: each packs its own rows of the weight, transposed, as B panels
            Parallel.forRange(
                    OC,
                    NR,
                    (start, end) ->
                            forwardWeightRows(out, inp, weight, bias, BT, C, OC, (int) start, (int) end, epilogue));
        } else {
            forwardTransposingPositions(out, inp, weight, bias, BT, C, OC, epilogue);
        }
    }

    /**
     * One thread's share of the first way: out[:, start:end] = inp · weight[start:end]ᵀ + bias[start:end]. As many
     * weight rows as fit {@link #PACKED_B} floats at a time are packed transposed (the whole of K, so that each
     * block of out is written once), then MC positions at a time: gemmPacked writes their block of out from its
     * register tiles, the bias is added and the epilogue run while the block is in cache.
     */
    private static void forwardWeightRows(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC,
            int start,
            int end,
            Epilogue epilogue) {
        int columnsAtOnce = Math.max(NR, PACKED_B / C / NR * NR);
        Panels panels = Panels.local();
        for (int n0 = start; n0 < end; n0 += columnsAtOnce) {
            int nc = Math.min(columnsAtOnce, end - n0);
            float[] packed = panels.b(packedSize(C, nc));
            packTransposed(packed, weight, (long) n0 * C, C, C, nc, GEMM_KB, 0, C); // B[k, n] = weight[n0 + n, k]
            for (int m0 = 0; m0 < BT; m0 += MC) {
                int mc = Math.min(MC, BT - m0);
                long block = (long) m0 * OC + n0;
                gemmPacked(
                        panels,
                        out.asSlice(4 * block),
                        OC,
                        inp,
                        (long) m0 * C,
                        C,
                        1,
                        packed,
                        mc,
                        nc,
                        C,
                        GEMM_KB,
                        false);
                if (bias != null) addBias(out, block, OC, bias, n0, mc, nc);
                if (epilogue != null) epilogue.apply(m0, m0 + mc, n0, n0 + nc);
            }
        }
    }

    /**
     * packed[packedIndex(k, n)] = b[from + n*ldb + k] for kStart <= k < kEnd, n < N, and 0 in the last panel's padding
     * columns: B is bᵀ, b holding N rows of K floats (the weight's rows, or positions of inp), transposed into panels
     * of kBlock rows. W x W blocks ({@link VectorMath#loadTransposed}), the ragged rest one by one. Threads may pack
     * disjoint ranges of k into one array.
     */
    private static void packTransposed(
            float[] packed, MemorySegment b, long from, long ldb, int K, int N, int kBlock, int kStart, int kEnd) {
        float[] block = Panels.local().block;
        int kFull = kStart + (kEnd - kStart) / W * W, nFull = N / W * W;
        for (int n = 0; n < nFull; n += W)
            for (int k = kStart; k < kFull; k += W) {
                VectorMath.loadTransposed(block, b, from + n * ldb + k, ldb); // row j: k + j of W columns from n
                for (int j = 0; j < W; j++)
                    FloatVector.fromArray(S, block, j * W).intoArray(packed, packedIndex(k + j, n, K, N, kBlock));
            }
        for (int k = kStart; k < kEnd; k++)
            for (int n = k < kFull ? nFull : 0; n < N; n++)
                packed[packedIndex(k, n, K, N, kBlock)] = b.getAtIndex(FLOAT, from + n * ldb + k);
        for (int k = kStart; k < kEnd; k++)
            for (int n = N; n % NR != 0; n++) packed[packedIndex(k, n, K, N, kBlock)] = 0;
    }

    /** out[m, n0 + n] += bias[n0 + n] for m < rows, n < columns, out's block at float index block (row stride OC). */
    private static void addBias(
            MemorySegment out, long block, int OC, MemorySegment bias, int n0, int rows, int columns) {
        int whole = columns / W * W;
        for (long m = 0; m < rows; m++) {
            long row = block + m * OC;
            for (int n = 0; n < whole; n += W)
                FloatVector.fromMemorySegment(S, out, 4 * (row + n), ORDER)
                        .add(FloatVector.fromMemorySegment(S, bias, 4L * (n0 + n), ORDER))
                        .intoMemorySegment(out, 4 * (row + n), ORDER);
            for (int n = whole; n < columns; n++)
                out.setAtIndex(FLOAT, row + n, out.getAtIndex(FLOAT, row + n) + bias.getAtIndex(FLOAT, n0 + n));
        }
    }

    /** The second way: outᵀ = weight · inpᵀ, NB positions at a time, each tile written back transposed. */
    private static void forwardTransposingPositions(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC,
            Epilogue epilogue) {
        // copy NB positions of inp, transposed (C, NB), into B panels once; then every thread computes outᵀ for
        // its own outputs (weight is A, its rows copied block by block) and writes it back transposed, bias added
        float[] packed = Panels.local().shared(packedSize(C, Math.min(BT, NB)));
        for (int n0 = 0; n0 < BT; n0 += NB) {
            int nb = Math.min(NB, BT - n0);
            long first = n0;
            Parallel.forRange(
                    C, W, (start, end) -> packTransposed(packed, inp, first * C, C, C, nb, KB, (int) start, (int) end));
            Parallel.forRange(
                    OC,
                    MR,
                    (mStart, mEnd) ->
                            forwardOutputs(out, weight, bias, packed, first, nb, C, OC, mStart, mEnd, epilogue));
        }
    }

    /**
     * One thread's share of the forward: outputs [mStart, mEnd) for positions [first, first + nb), whose inpᵀ is
     * packed. Block by block of MB outputs: outᵀ (MB, nb) = weight rows · inpᵀ into the thread's tile, then written
     * back transposed with the bias, then the epilogue. (The tile is off-heap, as every other C of gemmPacked: a
     * heap segment there made addTile's accesses bimorphic, and slower for all of them.)
     */
    private static void forwardOutputs(
            MemorySegment out,
            MemorySegment weight,
            MemorySegment bias,
            float[] packed,
            long first,
            int nb,
            int C,
            int OC,
            long mStart,
            long mEnd,
            Epilogue epilogue) {
        MemorySegment tile = Scratch.local((long) MB * nb);
        Panels panels = Panels.local();
        for (long m0 = mStart; m0 < mEnd; m0 += MB) {
            int mb = (int) Math.min(MB, mEnd - m0);
            gemmPacked(panels, tile, nb, weight, m0 * C, C, 1, packed, mb, nb, C, KB, false); // tile = weight · inpᵀ
            writeTransposed(out, tile, panels.block, bias, first, nb, m0, mb, OC);
            if (epilogue != null) epilogue.apply(first, first + nb, m0, m0 + mb);
        }
    }

    /**
     * out[first + n, m0 + m] = tile[m, n] + bias[m0 + m] for n < nb, m < mb (+ 0 without a bias): W x W blocks
     * ({@link VectorMath#loadTransposed}), the ragged rest one by one.
     */
    private static void writeTransposed(
            MemorySegment out,
            MemorySegment tile,
            float[] block,
            MemorySegment bias,
            long first,
            int nb,
            long m0,
            int mb,
            int OC) {
        int mFull = mb / W * W, nFull = nb / W * W;
        // W positions at a time, all their outputs: each row of out gets mb floats in a row (the other order, W
        // outputs of every position in turn, took the output layer 4 ms more of 55)
        for (int n = 0; n < nFull; n += W)
            for (int m = 0; m < mFull; m += W) {
                var b = bias == null
                        ? FloatVector.zero(S)
                        : FloatVector.fromMemorySegment(S, bias, 4 * (m0 + m), ORDER);
                VectorMath.loadTransposed(block, tile, (long) m * nb + n, nb); // row j: position n + j, W outputs
                for (int j = 0; j < W; j++)
                    FloatVector.fromArray(S, block, j * W)
                            .add(b)
                            .intoMemorySegment(out, 4 * ((first + n + j) * OC + m0 + m), ORDER);
            }
        for (long n = 0; n < nb; n++) {
            long row = (first + n) * OC + m0;
            for (long m = n < nFull ? mFull : 0; m < mb; m++) {
                float b = bias == null ? 0 : bias.getAtIndex(FLOAT, m0 + m);
                out.setAtIndex(FLOAT, row + m, tile.getAtIndex(FLOAT, m * nb + n) + b);
            }
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
            int OC,
            boolean accumulate) {
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
                        OC,
                        true));
        // dweight (+)= doutᵀ · inp and dbias (+)= column sums of dout: threads split the outputs
        Parallel.forRange(OC, MR, (mStart, mEnd) -> {
            gemm(
                    dweight.asSlice(mStart * C * Float.BYTES),
                    C,
                    dout,
                    mStart,
                    1,
                    OC,
                    inp,
                    C,
                    (int) (mEnd - mStart),
                    C,
                    BT,
                    accumulate);
            if (dbias != null) biasGradient(dbias, dout, BT, OC, mStart, mEnd, accumulate);
        });
    }

    /**
     * dbias[o] += Σ_bt dout[bt, o] for mStart <= o < mEnd (= without accumulate): the rows of dout added in vectors,
     * in order, into one sum per output (the baseline's order per output, but reading dout along its rows).
     */
    private static void biasGradient(
            MemorySegment dbias, MemorySegment dout, int BT, int OC, long mStart, long mEnd, boolean accumulate) {
        int n = (int) (mEnd - mStart), full = n - n % W;
        float[] sums = new float[n];
        for (long bt = 0; bt < BT; bt++) {
            long row = bt * OC + mStart;
            for (int o = 0; o < full; o += W)
                FloatVector.fromArray(S, sums, o)
                        .add(FloatVector.fromMemorySegment(S, dout, 4 * (row + o), ORDER))
                        .intoArray(sums, o);
            for (int o = full; o < n; o++) sums[o] += dout.getAtIndex(FLOAT, row + o);
        }
        for (int o = 0; o < n; o++)
            dbias.setAtIndex(FLOAT, mStart + o, (accumulate ? dbias.getAtIndex(FLOAT, mStart + o) : 0) + sums[o]);
    }

    /**
     * C[m, n] (+)= Σ_k A[m, k] B[k, n] for m < M, n < N, k < K, where C[m, n] = c[m*ldc + n],
     * A[m, k] = a[aOffset + m*aRowStride + k*aColStride] and B[k, n] = b[k*ldb + n] (floats); without accumulate,
     * C's old values are neither read nor kept.
     *
     * <p>Blocked as BLAS libraries do: B is copied into a heap array in panels of NR columns ({@link #packB}, zero
     * past N), as many rows and columns at once as fit in {@link #PACKED_B} floats (all N columns where they fit
     * GEMM_KB rows, so that each block of A is copied once, however long K is: the vocabulary's 50,304 in the output
     * layer's dinp), and {@link #gemmPacked} multiplies A by them. The copies cost one read per element of B, and
     * buy the micro-kernel contiguous reads from a Java array, whatever the strides, and no ragged edges: a partial
     * tile is computed whole on the zero padding and only its valid part added to C. The sums over k run in blocks
     * of GEMM_KB in order whatever the chunks, so the result does not depend on them.
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
            int K,
            boolean accumulate) {
        int columnsAtOnce = Math.min(roundUp(N), PACKED_B / GEMM_KB / NR * NR);
        int rowsAtOnce = PACKED_B / columnsAtOnce / GEMM_KB * GEMM_KB;
        Panels panels = Panels.local();
        for (int n0 = 0; n0 < N; n0 += columnsAtOnce) {
            int nc = Math.min(columnsAtOnce, N - n0);
            MemorySegment cBlock = c.asSlice(4L * n0);
            for (int k0 = 0; k0 < K; k0 += rowsAtOnce) {
                int kc = Math.min(rowsAtOnce, K - k0);
                float[] packed = panels.b(packedSize(kc, nc));
                packB(packed, b, n0 + k0 * ldb, ldb, kc, nc, GEMM_KB);
                long aBlock = aOffset + k0 * aColStride;
                boolean add = accumulate || k0 > 0;
                gemmPacked(panels, cBlock, ldc, a, aBlock, aRowStride, aColStride, packed, M, nc, kc, GEMM_KB, add);
            }
        }
    }

    /**
     * Where B[k, n] (K x N) lives in its packed copy: K in blocks of kBlock rows; in each block, the panels of NR
     * columns one after the other, each kb rows of NR floats. A panel (kb x NR) is what the micro-kernel sweeps.
     */
    private static int packedIndex(int k, int n, int K, int N, int kBlock) {
        int k0 = k - k % kBlock, kb = Math.min(kBlock, K - k0);
        return k0 * roundUp(N) + ((n / NR) * kb + k - k0) * NR + n % NR;
    }

    private static int packedSize(int K, int N) {
        return K * roundUp(N);
    }

    private static int roundUp(int N) {
        return (N + NR - 1) / NR * NR;
    }

    /**
     * Copies B[k, n] = b[n0 + k*ldb + n] (k < K, n < N, rows contiguous) into panels, as {@link #packedIndex}: panel
     * after panel, so that the copy writes one contiguous run (a panel's kBlock rows of NR floats) while it reads NR
     * floats from each row. (Row after row instead, writing each row's NR floats into every panel in turn, kept as
     * many streams of writes a panel apart: twice as slow, 11.4 vs 6.2 ms for the output layer's 154 MB of weights,
     * with panels of 256 rows, 64 KiB.)
     */
    private static void packB(float[] packed, MemorySegment b, long n0, long ldb, int K, int N, int kBlock) {
        int fullPanels = N / NR, rest = N % NR;
        for (int k0 = 0; k0 < K; k0 += kBlock) {
            int kEnd = Math.min(K, k0 + kBlock);
            for (int j = 0; j < fullPanels; j++) { // in vectors: cheaper than a bulk copy's call for 64 floats
                int to = packedIndex(k0, j * NR, K, N, kBlock);
                for (int k = k0; k < kEnd; k++, to += NR) {
                    long from = 4 * (n0 + k * ldb + (long) j * NR);
                    for (int v = 0; v < NR; v += W)
                        FloatVector.fromMemorySegment(S, b, from + 4L * v, ORDER)
                                .intoArray(packed, to + v);
                }
            }
            if (rest > 0) {
                int to = packedIndex(k0, fullPanels * NR, K, N, kBlock);
                for (int k = k0; k < kEnd; k++, to += NR) {
                    MemorySegment.copy(b, FLOAT, 4 * (n0 + k * ldb + (long) fullPanels * NR), packed, to, rest);
                    Arrays.fill(packed, to + rest, to + NR, 0f);
                }
            }
        }
    }

    /**
     * C (+)= A · B with B already in panels (K x N, {@link #packedIndex} in blocks of kBlock rows). A is copied block
     * by block (MC rows x kBlock)
     * into a heap array ({@link #packA}), rows past M zero so every panel has MR rows; then each A panel (MR rows)
     * meets each B panel in the micro-kernel, the B panel staying in L1-L2 while the A panels pass. Without
     * accumulate the first block over k stores its tiles in C ({@link #storeTile}) and the next ones add to them.
     */
    static void gemmPacked(
            Panels panels,
            MemorySegment c,
            long ldc,
            MemorySegment a,
            long aOffset,
            long aRowStride,
            long aColStride,
            float[] bPacked,
            int M,
            int N,
            int K,
            int kBlock,
            boolean accumulate) {
        int bPanels = (N + NR - 1) / NR;
        for (int k0 = 0; k0 < K; k0 += kBlock) {
            int kb = Math.min(kBlock, K - k0), bBlock = k0 * roundUp(N);
            boolean add = accumulate || k0 > 0;
            for (int m0 = 0; m0 < M; m0 += MC) {
                int mc = Math.min(MC, M - m0), aPanels = (mc + MR - 1) / MR;
                float[] aPacked = panels.a(aPanels * MR * kb);
                packA(aPacked, a, aOffset + m0 * aRowStride + k0 * aColStride, aRowStride, aColStride, mc, kb);
                boolean rowMajor = aColStride == 1; // packA's order: A[r, k] at r*kb + k, or at k*rows + r
                int aRow = rowMajor ? kb : 1, aStep = rowMajor ? 1 : aPanels * MR, aPanel = rowMajor ? MR * kb : MR;
                for (int j = 0; j < bPanels; j++) {
                    int columns = Math.min(NR, N - j * NR);
                    for (int i = 0; i < aPanels; i++) {
                        microKernel(aPacked, i * aPanel, aRow, aStep, bPacked, bBlock + j * kb * NR, panels.tile, kb);
                        long c0 = (m0 + (long) i * MR) * ldc + (long) j * NR;
                        int rows = Math.min(MR, mc - i * MR);
                        if (add) addTile(c, c0, ldc, panels.tile, rows, columns);
                        else storeTile(c, c0, ldc, panels.tile, rows, columns);
                    }
                }
            }
        }
    }

    /** The register tile that fits the CPU's vector registers: 6 x 4 vectors (AVX-512), else 6 x 2. */
    private static void microKernel(
            float[] aPacked, int a0, int aRow, int aStep, float[] bPacked, int b0, float[] tile, int kb) {
        if (VECTORS == 4) kernel(aPacked, a0, aRow, aStep, bPacked, b0, tile, kb);
        else kernel6x2(aPacked, a0, aRow, aStep, bPacked, b0, tile, kb);
    }

    /**
     * Copies A[m, k] (m < mc, k < kb, from a[a0 + m*aRowStride + k*aColStride]) in the order it is read fastest:
     * rows contiguous (aColStride 1), row after row, packed[m*kb + k]; else (a transposed operand, contiguous in m,
     * as dweight's doutᵀ) column after column, packed[k*rows + m], rows = mc rounded up to whole panels of MR.
     * {@link #kernel} reads either through its row and k steps. The rows from mc up to whole panels are zeros. (A
     * column-major copy is one bulk copy per column; spreading each column down the rows of a row-major one instead
     * wrote at a 1 KiB stride, which thrashed a few sets of L1.)
     */
    private static void packA(
            float[] packed, MemorySegment a, long a0, long aRowStride, long aColStride, int mc, int kb) {
        int rows = (mc + MR - 1) / MR * MR;
        if (aColStride == 1) {
            for (int m = 0; m < mc; m++) MemorySegment.copy(a, FLOAT, 4 * (a0 + m * aRowStride), packed, m * kb, kb);
            Arrays.fill(packed, mc * kb, rows * kb, 0f);
        } else {
            for (int k = 0; k < kb; k++) {
                long column = a0 + k * aColStride;
                if (aRowStride == 1) MemorySegment.copy(a, FLOAT, 4 * column, packed, k * rows, mc);
                else for (int m = 0; m < mc; m++) packed[k * rows + m] = a.getAtIndex(FLOAT, column + m * aRowStride);
                Arrays.fill(packed, k * rows + mc, (k + 1) * rows, 0f);
            }
        }
    }

    /**
     * The micro-kernel: tile (MR x NR) = A panel (6 rows of kb: A[r, k] at aPacked[a0 + r*aRow + k*aStep]) · B
     * panel (kb rows of 4 vectors, from bPacked[b0]). 24 sums stay in registers (of AVX-512's 32): each step over k loads 4 vectors of B and
     * broadcasts 6 scalars of A to feed 24 independent FMAs, so the FMA units, not the loads, set the pace. Written
     * out, not looped over rows, so the sums stay locals, and on Java arrays, not memory segments: the inlined
     * array accesses are small enough that C1 compiles this method too (on segments it gave up, "out of virtual
     * registers", and the method sat in slow, vector-boxing code until C2 got to it, minutes on a busy machine).
     */
    private static void kernel(
            float[] aPacked, int a0, int aRow, int aStep, float[] bPacked, int b0, float[] tile, int kb) {
        int a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow, a4 = a3 + aRow, a5 = a4 + aRow; // the 6 rows of A
        var c00 = FloatVector.zero(S);
        var c01 = FloatVector.zero(S);
        var c02 = FloatVector.zero(S);
        var c03 = FloatVector.zero(S);
        var c10 = FloatVector.zero(S);
        var c11 = FloatVector.zero(S);
        var c12 = FloatVector.zero(S);
        var c13 = FloatVector.zero(S);
        var c20 = FloatVector.zero(S);
        var c21 = FloatVector.zero(S);
        var c22 = FloatVector.zero(S);
        var c23 = FloatVector.zero(S);
        var c30 = FloatVector.zero(S);
        var c31 = FloatVector.zero(S);
        var c32 = FloatVector.zero(S);
        var c33 = FloatVector.zero(S);
        var c40 = FloatVector.zero(S);
        var c41 = FloatVector.zero(S);
        var c42 = FloatVector.zero(S);
        var c43 = FloatVector.zero(S);
        var c50 = FloatVector.zero(S);
        var c51 = FloatVector.zero(S);
        var c52 = FloatVector.zero(S);
        var c53 = FloatVector.zero(S);
        for (int k = 0; k < kb; k++) {
            int bk = b0 + k * NR, ak = k * aStep;
            var b0v = FloatVector.fromArray(S, bPacked, bk);
            var b1v = FloatVector.fromArray(S, bPacked, bk + W);
            var b2v = FloatVector.fromArray(S, bPacked, bk + 2 * W);
            var b3v = FloatVector.fromArray(S, bPacked, bk + 3 * W);
            var x = FloatVector.broadcast(S, aPacked[a0 + ak]);
            c00 = x.fma(b0v, c00);
            c01 = x.fma(b1v, c01);
            c02 = x.fma(b2v, c02);
            c03 = x.fma(b3v, c03);
            x = FloatVector.broadcast(S, aPacked[a1 + ak]);
            c10 = x.fma(b0v, c10);
            c11 = x.fma(b1v, c11);
            c12 = x.fma(b2v, c12);
            c13 = x.fma(b3v, c13);
            x = FloatVector.broadcast(S, aPacked[a2 + ak]);
            c20 = x.fma(b0v, c20);
            c21 = x.fma(b1v, c21);
            c22 = x.fma(b2v, c22);
            c23 = x.fma(b3v, c23);
            x = FloatVector.broadcast(S, aPacked[a3 + ak]);
            c30 = x.fma(b0v, c30);
            c31 = x.fma(b1v, c31);
            c32 = x.fma(b2v, c32);
            c33 = x.fma(b3v, c33);
            x = FloatVector.broadcast(S, aPacked[a4 + ak]);
            c40 = x.fma(b0v, c40);
            c41 = x.fma(b1v, c41);
            c42 = x.fma(b2v, c42);
            c43 = x.fma(b3v, c43);
            x = FloatVector.broadcast(S, aPacked[a5 + ak]);
            c50 = x.fma(b0v, c50);
            c51 = x.fma(b1v, c51);
            c52 = x.fma(b2v, c52);
            c53 = x.fma(b3v, c53);
        }
        // the tile, row by row (6 rows of NR floats), for addTile to add to C
        c00.intoArray(tile, 0);
        c01.intoArray(tile, W);
        c02.intoArray(tile, 2 * W);
        c03.intoArray(tile, 3 * W);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + W);
        c12.intoArray(tile, NR + 2 * W);
        c13.intoArray(tile, NR + 3 * W);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + W);
        c22.intoArray(tile, 2 * NR + 2 * W);
        c23.intoArray(tile, 2 * NR + 3 * W);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + W);
        c32.intoArray(tile, 3 * NR + 2 * W);
        c33.intoArray(tile, 3 * NR + 3 * W);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + W);
        c42.intoArray(tile, 4 * NR + 2 * W);
        c43.intoArray(tile, 4 * NR + 3 * W);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + W);
        c52.intoArray(tile, 5 * NR + 2 * W);
        c53.intoArray(tile, 5 * NR + 3 * W);
    }

    /**
     * The micro-kernel for CPUs with 16 vector registers (AVX2): a 6 x 2-vector tile, 12 sums, 2 loads of B and 6
     * broadcasts of A per step, as {@link #kernel} with half its columns.
     */
    private static void kernel6x2(
            float[] aPacked, int a0, int aRow, int aStep, float[] bPacked, int b0, float[] tile, int kb) {
        int a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow, a4 = a3 + aRow, a5 = a4 + aRow;
        var c00 = FloatVector.zero(S);
        var c01 = FloatVector.zero(S);
        var c10 = FloatVector.zero(S);
        var c11 = FloatVector.zero(S);
        var c20 = FloatVector.zero(S);
        var c21 = FloatVector.zero(S);
        var c30 = FloatVector.zero(S);
        var c31 = FloatVector.zero(S);
        var c40 = FloatVector.zero(S);
        var c41 = FloatVector.zero(S);
        var c50 = FloatVector.zero(S);
        var c51 = FloatVector.zero(S);
        for (int k = 0; k < kb; k++) {
            int bk = b0 + k * NR, ak = k * aStep;
            var b0v = FloatVector.fromArray(S, bPacked, bk);
            var b1v = FloatVector.fromArray(S, bPacked, bk + W);
            var x = FloatVector.broadcast(S, aPacked[a0 + ak]);
            c00 = x.fma(b0v, c00);
            c01 = x.fma(b1v, c01);
            x = FloatVector.broadcast(S, aPacked[a1 + ak]);
            c10 = x.fma(b0v, c10);
            c11 = x.fma(b1v, c11);
            x = FloatVector.broadcast(S, aPacked[a2 + ak]);
            c20 = x.fma(b0v, c20);
            c21 = x.fma(b1v, c21);
            x = FloatVector.broadcast(S, aPacked[a3 + ak]);
            c30 = x.fma(b0v, c30);
            c31 = x.fma(b1v, c31);
            x = FloatVector.broadcast(S, aPacked[a4 + ak]);
            c40 = x.fma(b0v, c40);
            c41 = x.fma(b1v, c41);
            x = FloatVector.broadcast(S, aPacked[a5 + ak]);
            c50 = x.fma(b0v, c50);
            c51 = x.fma(b1v, c51);
        }
        c00.intoArray(tile, 0);
        c01.intoArray(tile, W);
        c10.intoArray(tile, NR);
        c11.intoArray(tile, NR + W);
        c20.intoArray(tile, 2 * NR);
        c21.intoArray(tile, 2 * NR + W);
        c30.intoArray(tile, 3 * NR);
        c31.intoArray(tile, 3 * NR + W);
        c40.intoArray(tile, 4 * NR);
        c41.intoArray(tile, 4 * NR + W);
        c50.intoArray(tile, 5 * NR);
        c51.intoArray(tile, 5 * NR + W);
    }

    /**
     * C[r, x] = tile[r, x] for the tile's valid rows and columns: C's old values are not read, so a gradient that
     * would have been zeroed in DRAM first costs one write instead of a write, a read and a write.
     */
    private static void storeTile(MemorySegment c, long c0, long ldc, float[] tile, int rows, int columns) {
        for (int r = 0; r < rows; r++) {
            long row = c0 + r * ldc;
            if (columns == NR) {
                for (int v = 0; v < NR; v += W)
                    FloatVector.fromArray(S, tile, r * NR + v).intoMemorySegment(c, 4 * (row + v), ORDER);
            } else {
                MemorySegment.copy(tile, r * NR, c, FLOAT, 4 * row, columns);
            }
        }
    }

    /** C[r, x] += tile[r, x] for the tile's valid rows and columns (C at c0, row stride ldc; tile rows NR long). */
    private static void addTile(MemorySegment c, long c0, long ldc, float[] tile, int rows, int columns) {
        for (int r = 0; r < rows; r++) {
            long row = c0 + r * ldc;
            if (columns == NR) {
                for (int v = 0; v < NR; v += W) {
                    long at = 4 * (row + v);
                    FloatVector.fromMemorySegment(S, c, at, ORDER)
                            .add(FloatVector.fromArray(S, tile, r * NR + v))
                            .intoMemorySegment(c, at, ORDER);
                }
            } else {
                for (int x = 0; x < columns; x++)
                    c.setAtIndex(FLOAT, row + x, c.getAtIndex(FLOAT, row + x) + tile[r * NR + x]);
            }
        }
    }

    /**
     * A thread's heap arrays for {@link #gemm}: the packed A block and B panels, the forward's B panels shared with
     * the workers, the kernel's tile and a block to transpose; grown on demand, kept.
     */
    static final class Panels {
        private static final ThreadLocal<Panels> LOCAL = ThreadLocal.withInitial(Panels::new);
        private float[] a = new float[0], b = new float[0], shared = new float[0];
        final float[] tile = new float[MR * NR];
        final float[] block = new float[W * W]; // a square block for VectorMath.loadTransposed

        static Panels local() {
            return LOCAL.get();
        }

        float[] a(int floats) {
            return a = atLeast(a, floats);
        }

        float[] b(int floats) {
            return b = atLeast(b, floats);
        }

        float[] shared(int floats) {
            return shared = atLeast(shared, floats);
        }

        private static float[] atLeast(float[] array, int floats) {
            return array.length < floats ? new float[floats] : array;
        }
    }

    /**
     * A worker's own off-heap buffer, grown on demand and kept: the forward's MB x NB tile of outᵀ, attention's
     * transposed keys or values and its block of scores.
     */
    static final class Scratch {
        private Scratch() {}

        private static final ThreadLocal<MemorySegment> LOCAL = ThreadLocal.withInitial(() -> MemorySegment.NULL);

        static MemorySegment local(long floats) {
            MemorySegment segment = LOCAL.get();
            if (segment.byteSize() < floats * Float.BYTES) {
                segment = Arena.ofAuto().allocate(floats * Float.BYTES, 64);
                LOCAL.set(segment);
            }
            return segment;
        }
    }
}
