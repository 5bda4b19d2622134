package dev.llmc4j.cpu;

import dev.llmc4j.util.LlmcException;
import java.lang.foreign.MemorySegment;
import java.util.List;
import java.util.Locale;

/**
 * The layers GPT-2 and Llama 3 share, as one set of kernels chosen when a model is built: {@link #BASELINE}, the
 * plain loops to read and to test against, or {@link #VECTORIZED}, the same arithmetic with the Vector API (tiled
 * matmul, vectorized softmax, AdamW, residual and attention with an O(T) softmax backward). Tests assert that the
 * two agree to fp32 rounding on ragged shapes.
 *
 * <p>The interface's default methods ARE the baseline (they call the plain loops in {@link Matmul#BASELINE},
 * {@link CausalSelfAttention}, {@link Residual}, {@link SoftmaxCrossEntropy} and {@link AdamW}); a faster set
 * overrides the methods it has a faster version of, so each speedup is one visible override
 * ({@link VectorizedCpuKernels}). A model adds its own layers by extending this interface ({@code GPT2Kernels},
 * {@code Llama3Kernels}), in the same style, and {@link #missingFastVersions()} names what a fast set still runs as
 * the baseline.
 *
 * <p>Shapes use llm.c's letters; every backward ACCUMULATES (+=) into its gradients.
 */
public interface CpuKernels {

    /** The plain loops. */
    CpuKernels BASELINE = new CpuKernels() {};

    /** The Vector API versions. */
    CpuKernels VECTORIZED = new VectorizedCpuKernels();

    /** Which set: what the command line's {@code -Dllmc.kernels=baseline|vectorized} names. */
    enum Choice {
        BASELINE,
        VECTORIZED;

        /** "baseline", or "vectorized" (also "fast", its old name); a one-line error otherwise. */
        public static Choice parse(String name) {
            return switch (name.toLowerCase(Locale.ROOT)) {
                case "baseline" -> BASELINE;
                case "vectorized", "fast" -> VECTORIZED;
                default ->
                    throw new LlmcException("kernels (-Dllmc.kernels): expected baseline or vectorized, found " + name);
            };
        }

        /** The set of this choice among a model's two. */
        public <K extends CpuKernels> K pick(K baseline, K vectorized) {
            return this == BASELINE ? baseline : vectorized;
        }
    }

    /** "baseline" or "vectorized". */
    default String name() {
        return "baseline";
    }

    /**
     * The layers a fast set has no fast version of yet, so it runs their baseline: empty for a set that is fast
     * throughout, and for {@link #BASELINE} itself (which runs the plain loops by choice).
     */
    default List<String> missingFastVersions() {
        return List.of();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Matmul of a Linear layer: inp (BT, C), weight (OC, C), bias (OC) or null, out (BT, OC).

    /** out = inp · weightᵀ + bias */
    default void matmulForward(
            MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC) {
        Matmul.BASELINE.forward(out, inp, weight, bias, BT, C, OC);
    }

    /**
     * dinp += dout · weight; dweight (+)= doutᵀ · inp; dbias (+)= column sums of dout (dbias may be null): added to
     * with accumulate, overwritten without ({@link Matmul#backward}).
     */
    default void matmulBackward(
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
        Matmul.BASELINE.backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, accumulate);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Causal self-attention with NH query heads and NKV key/value heads of size hs (GPT-2: NKV = NH); see
    // CausalSelfAttention for the layout. inp (B,T,(NH+2NKV)*hs), out (B,T,NH*hs), preatt and att (B,NH,T,T).

    default void attentionForward(
            MemorySegment out,
            MemorySegment preatt,
            MemorySegment att,
            MemorySegment inp,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        CausalSelfAttention.forward(out, preatt, att, inp, B, T, NH, NKV, hs);
    }

    default void attentionBackward(
            MemorySegment dinp,
            MemorySegment dpreatt,
            MemorySegment datt,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment att,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        CausalSelfAttention.backward(dinp, dpreatt, datt, dout, inp, att, B, T, NH, NKV, hs);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Residual connection: out (N) = a + b; the gradient flows to both unchanged.

    default void residualForward(MemorySegment out, MemorySegment a, MemorySegment b, long N) {
        Residual.forward(out, a, b, N);
    }

    default void residualBackward(MemorySegment da, MemorySegment db, MemorySegment dout, long N) {
        Residual.backward(da, db, dout, N);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Softmax over the first V of Vp logits per row, cross-entropy, and the backward of the two together.

    /** probs (BT, Vp) = softmax of the first V logits of each row; the padding columns get 0. */
    default void softmaxForward(MemorySegment probs, MemorySegment logits, int BT, int V, int Vp) {
        SoftmaxCrossEntropy.softmaxForward(probs, logits, BT, V, Vp);
    }

    /** losses (BT) = -log probs[target]. */
    default void crossentropyForward(MemorySegment losses, MemorySegment probs, int[] targets, int BT, int Vp) {
        SoftmaxCrossEntropy.crossentropyForward(losses, probs, targets, BT, Vp);
    }

    /** dlogits (BT, Vp) += (probs - onehot(target)) * dloss. */
    default void crossentropySoftmaxBackward(
            MemorySegment dlogits, MemorySegment dlosses, MemorySegment probs, int[] targets, int BT, int V, int Vp) {
        SoftmaxCrossEntropy.crossentropySoftmaxBackward(dlogits, dlosses, probs, targets, BT, V, Vp);
    }

    /** losses (BT) = -log softmax(logits)[target], maxAndSum (BT, 2) each row's max and Σ exp(logit - max). */
    default void softmaxCrossEntropyForward(
            MemorySegment losses, MemorySegment maxAndSum, MemorySegment logits, int[] targets, int BT, int V, int Vp) {
        SoftmaxCrossEntropy.softmaxCrossEntropyForward(losses, maxAndSum, logits, targets, BT, V, Vp);
    }

    /** dlogits (BT, Vp) = (softmax(logits) - onehot(target)) * dloss, from the forward's maxAndSum: overwritten. */
    default void softmaxCrossEntropyBackward(
            MemorySegment dlogits,
            MemorySegment dlosses,
            MemorySegment logits,
            MemorySegment maxAndSum,
            int[] targets,
            int BT,
            int V,
            int Vp) {
        SoftmaxCrossEntropy.softmaxCrossEntropyBackward(dlogits, dlosses, logits, maxAndSum, targets, BT, V, Vp);
    }

    // ------------------------------------------------------------------------------------------------------------
    // AdamW over floats [offset, offset + count) of params, with moments m and v of the same layout.

    default void adamwUpdate(
            MemorySegment params,
            MemorySegment grads,
            MemorySegment m,
            MemorySegment v,
            long offset,
            long count,
            AdamW.Step step) {
        AdamW.update(params, grads, m, v, offset, count, step);
    }
}
