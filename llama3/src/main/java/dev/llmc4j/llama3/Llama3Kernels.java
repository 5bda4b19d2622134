package dev.llmc4j.llama3;

import dev.llmc4j.cpu.CpuKernels;
import java.lang.foreign.MemorySegment;

/**
 * The kernels a {@link Llama3} runs, chosen when it is built: the layers it shares with GPT-2 ({@link CpuKernels})
 * and its own, token embedding, RMSNorm, RoPE and SwiGLU. As in {@link CpuKernels}, the default methods are the
 * baseline (here: Llama3.java's plain loops, each forward beside its backward) and a faster set overrides what it
 * has a faster version of.
 *
 * <p>{@link #VECTORIZED} ({@link Llama3VectorizedKernels}): the shared vectorized kernels (matmul, softmax, AdamW,
 * residual, attention with grouped-query heads) and Llama 3's RMSNorm, RoPE and SwiGLU; the token embedding keeps
 * the baseline ({@link #missingFastVersions()}). Llama3KernelsTest compares each fast version with the baseline.
 */
public interface Llama3Kernels extends CpuKernels {

    /** The plain loops. */
    Llama3Kernels BASELINE = new Llama3Kernels() {};

    /** The Vector API kernels. */
    Llama3Kernels VECTORIZED = new Llama3VectorizedKernels();

    static Llama3Kernels of(Choice choice) {
        return choice.pick(BASELINE, VECTORIZED);
    }

    /** out (rows, C) = wte[token]. */
    default void embeddingForward(MemorySegment out, int[] tokens, MemorySegment wte, long rows, int C) {
        Llama3.embeddingForward(out, tokens, wte, rows, C);
    }

    /** dwte[token] += dout. */
    default void embeddingBackward(MemorySegment dwte, MemorySegment dout, int[] tokens, long rows, int C) {
        Llama3.embeddingBackward(dwte, dout, tokens, rows, C);
    }

    /** out (rows, C) = inp * rstd * weight; keeps rstd (rows) unless it is null (inference). */
    default void rmsnormForward(
            MemorySegment out,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            long rows,
            int C,
            float eps) {
        Llama3.rmsnormForward(out, rstd, inp, weight, rows, C, eps);
    }

    /** dinp, dweight += the RMSNorm's gradients. */
    default void rmsnormBackward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment rstd,
            long rows,
            int C) {
        Llama3.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, rows, C);
    }

    /** Rotates the first rotatedHeads heads of each qkv row in place; inverse rotates back (RoPE's backward). */
    default void rope(
            MemorySegment qkv,
            float[] cos,
            float[] sin,
            long rows,
            int T,
            int startPosition,
            int rotatedHeads,
            int hd,
            int qkvRows,
            boolean inverse) {
        Llama3.rope(qkv, cos, sin, rows, T, startPosition, rotatedHeads, hd, qkvRows, inverse);
    }

    /** out (rows, H) = silu(gate) * up. */
    default void swigluForward(MemorySegment out, MemorySegment fch, long rows, int H) {
        Llama3.swigluForward(out, fch, rows, H);
    }

    /** dfch (rows, 2H) += the gradients of up and gate. */
    default void swigluBackward(MemorySegment dfch, MemorySegment fch, MemorySegment dout, long rows, int H) {
        Llama3.swigluBackward(dfch, fch, dout, rows, H);
    }
}
