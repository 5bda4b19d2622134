package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.util.LlmcException;

/**
 * Host-side facts about the flash-attention kernels (attention_flash.cu): supported head sizes and the
 * dynamic shared memory each kernel carves up. The byte counts repeat the kernels' carving order; the kernels
 * {@code __trap()} if handed less, so a mismatch fails loudly instead of corrupting memory.
 */
public final class FlashAttention {
    private FlashAttention() {}

    /** Query and key tile edge (FA_BR = FA_BC in the kernels). */
    public static final int TILE = 64;
    /** Threads per block: 4 warps x 16 rows. */
    public static final int THREADS = 128;

    static final int WARPS = 4;
    static final int WMMA = 16;

    /** The head sizes the kernels are compiled for. */
    static final int[] HEAD_SIZES = {64, 96, 128};

    public static boolean supportsHeadSize(int headSize) {
        for (int supported : HEAD_SIZES) if (headSize == supported) return true;
        return false;
    }

    static void checkHeadSize(int headSize) {
        if (!supportsHeadSize(headSize))
            throw new LlmcException("flash attention supports head sizes 64, 96 and 128, not " + headSize
                    + ": use --attention plain for this model");
    }

    private static int scratchWidth(int headSize) {
        return Math.max(headSize, TILE);
    }

    /** Forward: Q, K, V tiles (floatX) + per warp: scores (fp32), P (floatX), O (fp32), 64 floats of row stats. */
    public static int forwardSharedBytes(int headSize, int elementBytes) {
        int tiles = 3 * TILE * headSize * elementBytes;
        int perWarp = WMMA * scratchWidth(headSize) * 4 + WMMA * TILE * elementBytes + WMMA * headSize * 4 + 64 * 4;
        return tiles + WARPS * perWarp;
    }

    /** dK/dV: K, V, Q, dO tiles + lse, D rows + per warp: S^T (fp32), dP^T (fp32), P^T and dS^T (floatX). */
    public static int backwardDkDvSharedBytes(int headSize, int elementBytes) {
        int tiles = 4 * TILE * headSize * elementBytes + 2 * TILE * 4;
        int perWarp = WMMA * scratchWidth(headSize) * 4 + WMMA * TILE * 4 + 2 * WMMA * TILE * elementBytes;
        return tiles + WARPS * perWarp;
    }

    /** dQ: Q, dO, K, V tiles + lse, D rows + per warp: S (fp32), dP (fp32), dS (floatX). */
    public static int backwardDqSharedBytes(int headSize, int elementBytes) {
        int tiles = 4 * TILE * headSize * elementBytes + 2 * TILE * 4;
        int perWarp = WMMA * scratchWidth(headSize) * 4 + WMMA * TILE * 4 + WMMA * TILE * elementBytes;
        return tiles + WARPS * perWarp;
    }
}
