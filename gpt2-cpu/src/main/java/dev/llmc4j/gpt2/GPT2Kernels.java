package dev.llmc4j.gpt2;

import dev.llmc4j.cpu.CpuKernels;
import java.lang.foreign.MemorySegment;

/**
 * The kernels a {@link GPT2} runs, chosen when it is built: the layers it shares with Llama 3 ({@link CpuKernels})
 * and its own, encoder, layernorm and GELU. {@link #BASELINE} runs the plain loops, {@link #VECTORIZED} the Vector
 * API versions of all of them (none is missing).
 *
 * <p>As in {@link CpuKernels}, the default methods are the baseline: here they call GPT2.java's plain layers, which
 * that file shows with their math, each forward beside its backward. {@link GPT2VectorizedKernels} overrides each
 * with its fast version; GPT2KernelsTest compares the two, layer by layer.
 */
public interface GPT2Kernels extends CpuKernels {

    /** The plain loops. */
    GPT2Kernels BASELINE = new GPT2Kernels() {};

    /** The Vector API versions (the default of every command; {@code -Dllmc.kernels=baseline} picks the other). */
    GPT2Kernels VECTORIZED = new GPT2VectorizedKernels();

    static GPT2Kernels of(Choice choice) {
        return choice.pick(BASELINE, VECTORIZED);
    }

    /** out (B,T,C) = wte[token] + wpe[position]; wte (V,C), wpe (maxT,C). */
    default void encoderForward(
            MemorySegment out, int[] tokens, MemorySegment wte, MemorySegment wpe, int B, int T, int C) {
        GPT2.encoderForward(out, tokens, wte, wpe, B, T, C);
    }

    /** dwte[token] += dout; dwpe[position] += dout. */
    default void encoderBackward(
            MemorySegment dwte, MemorySegment dwpe, MemorySegment dout, int[] tokens, int B, int T, int C) {
        GPT2.encoderBackward(dwte, dwpe, dout, tokens, B, T, C);
    }

    /** out (B,T,C) = (inp - mean) * rstd * weight + bias; keeps mean (B,T) and rstd (B,T). */
    default void layernormForward(
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        GPT2.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
    }

    /**
     * residual (B,T,C) = a + b, then out = layernorm(residual) as {@link #layernormForward}: the residual add and
     * the next layernorm in one pass over each row (llm.c's fused residual forward), since both only stream memory.
     */
    default void residualLayernormForward(
            MemorySegment residual,
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment a,
            MemorySegment b,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        residualForward(residual, a, b, (long) B * T * C);
        layernormForward(out, mean, rstd, residual, weight, bias, B, T, C);
    }

    /** The forward's output again from its kept mean and rstd (recompute level 2), bit for bit. */
    default void layernormRecompute(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        GPT2.layernormRecompute(out, inp, mean, rstd, weight, bias, B, T, C);
    }

    /** dinp, dweight, dbias += the layernorm's gradients. */
    default void layernormBackward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dbias,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment mean,
            MemorySegment rstd,
            int B,
            int T,
            int C) {
        GPT2.layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, T, C);
    }

    /**
     * The MLP's first Linear and its activation: out (BT, OC) = inp (BT, C) · weightᵀ + bias, and gelu (BT, OC) =
     * GELU(out). Here the two layers in turn; the fast version applies GELU to each block of out as the matmul
     * writes it, while it is in cache (llm.c's CUDA side fuses bias and GELU into the matmul the same way).
     */
    default void matmulGeluForward(
            MemorySegment out,
            MemorySegment gelu,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC) {
        matmulForward(out, inp, weight, bias, BT, C, OC);
        geluForward(gelu, out, (long) BT * OC);
    }

    /** out (N) = gelu(inp), tanh approximation. */
    default void geluForward(MemorySegment out, MemorySegment inp, long N) {
        GPT2.geluForward(out, inp, N);
    }

    /** dinp (N) += gelu'(inp) * dout. */
    default void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long N) {
        GPT2.geluBackward(dinp, inp, dout, N);
    }
}
