package dev.llmc4j.gpt2.cuda;

import static dev.llmc4j.gpt2.cuda.Launch.Dim3;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * One typed Java method per kernel of src/main/cuda, as llm.c's host launchers in {@code llmc/*.cuh}: each takes
 * device pointers ({@code long}), sizes and a stream, picks its kernel for this instance's {@link Precision}
 * ("floatX") and computes its own grid and block. Nothing outside this class names a kernel or writes launch
 * geometry. Pointers marked X hold floatX, f32 hold fp32. {@link #kernelNames()} lists every name a launcher can
 * use; {@link KernelModule} checks them against the fatbin's kernels.txt when it loads.
 *
 * <pre>
 *   var kernels = new CudaKernels(module, Precision.BF16);
 *   kernels.layernormForward(out, mean, rstd, inp, weight, bias, B * T, C, stream);
 * </pre>
 */
public final class CudaKernels {
    /** Threads per block of the row kernels (one warp per row) and the column sums. */
    static final int BLOCK = 256;

    private final KernelModule module;
    private final Precision precision;
    private final String suffix;

    public CudaKernels(KernelModule module, Precision precision) {
        this.module = module;
        this.precision = precision;
        this.suffix = "_" + precision.suffix();
    }

    public Precision precision() {
        return precision;
    }

    /** Every kernel name the launchers can use, for every precision: what kernels.txt must list. */
    public static List<String> kernelNames() {
        var names = new ArrayList<String>();
        names.add("sum_partials");
        for (Precision p : Precision.values()) {
            for (String base : PER_PRECISION) names.add(base + "_" + p.suffix());
            if (!p.supportsFlashAttention()) continue;
            names.add("convert_f32_to_" + p.suffix());
            names.add("convert_" + p.suffix() + "_to_f32");
            names.add(flashPreprocess(p));
            for (int hs : FlashAttention.HEAD_SIZES) {
                names.add(flashForward(p, hs));
                names.add(flashBackwardDkDv(p, hs));
                names.add(flashBackwardDq(p, hs));
            }
        }
        return names;
    }

    /** The kernels compiled for each of bf16, fp16 and fp32, without the "_bf16" suffix. */
    private static final List<String> PER_PRECISION = List.of(
            "encoder_forward",
            "encoder_backward_wte",
            "encoder_backward_wpe",
            "layernorm_forward",
            "fused_residual_layernorm_forward",
            "layernorm_backward_input",
            "layernorm_backward_params_partial",
            "gelu_forward",
            "gelu_backward_inplace",
            "bias_backward_partial",
            "column_sum_finish",
            "fused_classifier",
            "attention_forward_plain",
            "attention_backward_plain_rows",
            "attention_backward_plain_cols",
            "norm_squared_partial",
            "check_finite",
            "scale_inplace",
            "adamw_update");

    static String flashForward(Precision p, int hs) {
        return "flash_attention_forward_" + p.suffix() + "_hs" + hs;
    }

    static String flashBackwardDkDv(Precision p, int hs) {
        return "flash_attention_backward_dkdv_" + p.suffix() + "_hs" + hs;
    }

    static String flashBackwardDq(Precision p, int hs) {
        return "flash_attention_backward_dq_" + p.suffix() + "_hs" + hs;
    }

    static String flashPreprocess(Precision p) {
        return "flash_attention_backward_preprocess_" + p.suffix();
    }

    private void launch(String kernel, Dim3 grid, Dim3 block, int sharedBytes, MemorySegment stream, Object... args) {
        module.launch(kernel, grid, block, sharedBytes, stream, args);
    }

    /** Grid and block of an element-wise (grid-stride) kernel over n elements. */
    private void elementwise(String kernel, long n, MemorySegment stream, Object... args) {
        launch(
                kernel + suffix,
                Launch.gridStride(n, Launch.ELEMENTWISE_BLOCK),
                Dim3.of(Launch.ELEMENTWISE_BLOCK),
                0,
                stream,
                args);
    }

    /** Grid and block of a row kernel: one warp per row. */
    private void warpPerRow(String kernel, long rows, MemorySegment stream, Object... args) {
        launch(kernel + suffix, Launch.warpPerRow(rows, BLOCK), Dim3.of(BLOCK), 0, stream, args);
    }

    // ---- conversions (16-bit precisions only) ------------------------------------------------------------------

    /** out (n) X = round to nearest even of inp (n) f32. */
    public void convertFromFloat(long out, long inp, long n, MemorySegment stream) {
        elementwise("convert_f32_to", n, stream, out, inp, n);
    }

    /** out (n) f32 = inp (n) X widened. */
    public void convertToFloat(long out, long inp, long n, MemorySegment stream) {
        launch(
                "convert" + suffix + "_to_f32",
                Launch.gridStride(n, Launch.ELEMENTWISE_BLOCK),
                Dim3.of(Launch.ELEMENTWISE_BLOCK),
                0,
                stream,
                out,
                inp,
                n);
    }

    // ---- encoder ------------------------------------------------------------------------------------------------

    /** out (B, T, C) X = wte[inputs[b, t]] + wpe[t]; inputs (B, T) int, wte (V, C) X, wpe (maxT, C) X. */
    public void encoderForward(long out, long inputs, long wte, long wpe, int B, int T, int C, MemorySegment stream) {
        elementwise("encoder_forward", (long) B * T * C, stream, out, inputs, wte, wpe, B, T, C);
    }

    /**
     * dwte (V, C) X += dout of every position of each token: one block row per bucket (a token and its positions,
     * see {@link EncoderBuckets}), so no two blocks write one row and nothing needs atomics.
     */
    public void encoderBackwardWte(
            long dwte,
            long dout,
            long bucketTokens,
            long bucketStarts,
            long bucketPositions,
            int numBuckets,
            int C,
            MemorySegment stream) {
        launch(
                "encoder_backward_wte" + suffix,
                Dim3.of(Launch.ceilDivInt(C, BLOCK), numBuckets),
                Dim3.of(BLOCK),
                0,
                stream,
                dwte,
                dout,
                bucketTokens,
                bucketStarts,
                bucketPositions,
                numBuckets,
                C);
    }

    /** dwpe (T, C) X += the sum over b of dout (B, T, C) X. */
    public void encoderBackwardWpe(long dwpe, long dout, int B, int T, int C, MemorySegment stream) {
        launch(
                "encoder_backward_wpe" + suffix,
                Launch.gridStride((long) T * C, BLOCK),
                Dim3.of(BLOCK),
                0,
                stream,
                dwpe,
                dout,
                B,
                T,
                C);
    }

    // ---- LayerNorm ----------------------------------------------------------------------------------------------

    /** out (rows, C) X = LayerNorm(inp) * weight + bias; mean, rstd (rows) f32 kept for the backward pass. */
    public void layernormForward(
            long out, long mean, long rstd, long inp, long weight, long bias, int rows, int C, MemorySegment stream) {
        warpPerRow("layernorm_forward", rows, stream, out, mean, rstd, inp, weight, bias, rows, C);
    }

    /** residual (rows, C) X = a + b (rounded), then out = LayerNorm(residual) as {@link #layernormForward}. */
    public void fusedResidualLayernormForward(
            long residual,
            long out,
            long mean,
            long rstd,
            long a,
            long b,
            long weight,
            long bias,
            int rows,
            int C,
            MemorySegment stream) {
        warpPerRow(
                "fused_residual_layernorm_forward",
                rows,
                stream,
                residual,
                out,
                mean,
                rstd,
                a,
                b,
                weight,
                bias,
                rows,
                C);
    }

    /**
     * dinp (rows, C) X += LayerNorm backward of dout; dweight, dbias (C) X += their column sums, made
     * deterministic by fixed row chunks: {@code partials} (f32, at least 2 * rowChunks(rows) * C) is scratch.
     */
    public void layernormBackward(
            long dinp,
            long dweight,
            long dbias,
            long partials,
            long dout,
            long inp,
            long weight,
            long mean,
            long rstd,
            int rows,
            int C,
            MemorySegment stream) {
        warpPerRow("layernorm_backward_input", rows, stream, dinp, dout, inp, weight, mean, rstd, rows, C);
        int chunkRows = Launch.rowsPerChunk(rows), chunks = Launch.rowChunks(rows);
        launch(
                "layernorm_backward_params_partial" + suffix,
                Dim3.of(Launch.ceilDivInt(C, BLOCK), chunks),
                Dim3.of(BLOCK),
                0,
                stream,
                partials,
                dout,
                inp,
                mean,
                rstd,
                rows,
                C,
                chunkRows);
        columnSumFinish(dweight, partials, chunks, C, stream);
        columnSumFinish(dbias, partials + (long) chunks * C * 4, chunks, C, stream);
    }

    /** out (width) X += the sum of {@code chunks} rows of partials (chunks, width) f32, in a fixed order. */
    private void columnSumFinish(long out, long partials, int chunks, int width, MemorySegment stream) {
        launch(
                "column_sum_finish" + suffix,
                Dim3.of(Launch.ceilDivInt(width, BLOCK)),
                Dim3.of(BLOCK),
                0,
                stream,
                out,
                partials,
                chunks,
                width);
    }

    // ---- matmul helpers, GELU -----------------------------------------------------------------------------------

    /** dbias (OC) X += column sums of dout (rows, OC) X, deterministic; partials (rowChunks(rows), OC) f32 scratch. */
    public void biasBackward(long dbias, long partials, long dout, int rows, int OC, MemorySegment stream) {
        int chunkRows = Launch.rowsPerChunk(rows), chunks = Launch.rowChunks(rows);
        launch(
                "bias_backward_partial" + suffix,
                Dim3.of(Launch.ceilDivInt(OC, BLOCK), chunks),
                Dim3.of(BLOCK),
                0,
                stream,
                partials,
                dout,
                rows,
                OC,
                chunkRows);
        columnSumFinish(dbias, partials, chunks, OC, stream);
    }

    /** out (n) X = GELU(inp), tanh approximation. */
    public void geluForward(long out, long inp, long n, MemorySegment stream) {
        elementwise("gelu_forward", n, stream, out, inp, n);
    }

    /** dinout (n) X = GELU'(inp) * dinout, in place. */
    public void geluBackwardInplace(long dinout, long inp, long n, MemorySegment stream) {
        elementwise("gelu_backward_inplace", n, stream, dinout, inp, n);
    }

    // ---- loss -------------------------------------------------------------------------------------------------

    /**
     * losses (N) f32 = cross-entropy of softmax(logits (N, Vp) X) at targets (N) int, one block per row; with
     * {@code writeDlogits} the logits are replaced by (softmax - onehot) * dloss (padding columns 0).
     */
    public void fusedClassifier(
            long logits,
            long losses,
            long targets,
            float dloss,
            int N,
            int V,
            int Vp,
            boolean writeDlogits,
            MemorySegment stream) {
        launch(
                "fused_classifier" + suffix,
                Dim3.of(N),
                Dim3.of(1024),
                0,
                stream,
                logits,
                losses,
                targets,
                dloss,
                N,
                V,
                Vp,
                writeDlogits ? 1 : 0);
    }

    // ---- attention ----------------------------------------------------------------------------------------------

    /** Plain attention: att (B, NH, T, T) f32 = causal softmax(q k^T / sqrt(hs)); out (B, T, C) X = att v. */
    public void attentionForwardPlain(long out, long att, long qkv, int B, int T, int C, int NH, MemorySegment stream) {
        warpPerRow("attention_forward_plain", (long) B * NH * T, stream, out, att, qkv, B, T, C, NH);
    }

    /** Plain attention's backward: dqkv (B, T, 3C) X from dout (B, T, C) X; dpreatt (B, NH, T, T) f32 scratch. */
    public void attentionBackwardPlain(
            long dqkv, long dpreatt, long dout, long qkv, long att, int B, int T, int C, int NH, MemorySegment stream) {
        long rows = (long) B * NH * T;
        warpPerRow("attention_backward_plain_rows", rows, stream, dqkv, dpreatt, dout, qkv, att, B, T, C, NH);
        warpPerRow("attention_backward_plain_cols", rows, stream, dqkv, dpreatt, dout, qkv, att, B, T, C, NH);
    }

    /** Flash attention (16-bit only): out (B, T, C) X and lse (B, NH, T) f32, tiles of 64 in shared memory. */
    public void flashAttentionForward(long out, long lse, long qkv, int B, int T, int C, int NH, MemorySegment stream) {
        int hs = C / NH;
        launch(
                flashForward(precision, hs),
                Launch.flashAttention(B, T, NH),
                Dim3.of(FlashAttention.THREADS),
                FlashAttention.forwardSharedBytes(hs, precision.bytes()),
                stream,
                out,
                lse,
                qkv,
                B,
                T,
                C,
                NH);
    }

    /**
     * Flash attention's backward: D (B, NH, T) f32 = rowsum(dout * out), then dK, dV and dQ into dqkv (B, T, 3C) X,
     * recomputing the probabilities from qkv and lse.
     */
    public void flashAttentionBackward(
            long dqkv,
            long D,
            long dout,
            long out,
            long qkv,
            long lse,
            int B,
            int T,
            int C,
            int NH,
            MemorySegment stream) {
        int hs = C / NH, x = precision.bytes();
        launch(
                flashPreprocess(precision),
                Launch.warpPerRow((long) B * NH * T, BLOCK),
                Dim3.of(BLOCK),
                0,
                stream,
                D,
                dout,
                out,
                B,
                T,
                C,
                NH);
        launch(
                flashBackwardDkDv(precision, hs),
                Launch.flashAttention(B, T, NH),
                Dim3.of(FlashAttention.THREADS),
                FlashAttention.backwardDkDvSharedBytes(hs, x),
                stream,
                dqkv,
                dout,
                qkv,
                lse,
                D,
                B,
                T,
                C,
                NH);
        launch(
                flashBackwardDq(precision, hs),
                Launch.flashAttention(B, T, NH),
                Dim3.of(FlashAttention.THREADS),
                FlashAttention.backwardDqSharedBytes(hs, x),
                stream,
                dqkv,
                dout,
                qkv,
                lse,
                D,
                B,
                T,
                C,
                NH);
    }

    // ---- norms, loss scaling, AdamW -------------------------------------------------------------------------------

    /**
     * The squared L2 norm of values (n) X into {@code partials + NORM_BLOCKS * 4}, in two deterministic stages:
     * NORM_BLOCKS partial sums (partials (NORM_BLOCKS + 1) f32), then their sum.
     */
    public void normSquared(long partials, long values, long n, MemorySegment stream) {
        normSquaredPartials(partials, values, n, stream);
        sumPartials(partials + Launch.NORM_BLOCKS * 4L, partials, Launch.NORM_BLOCKS, stream);
    }

    /** Stage 1 of {@link #normSquared}: partials (NORM_BLOCKS) f32. */
    public void normSquaredPartials(long partials, long values, long n, MemorySegment stream) {
        launch(
                "norm_squared_partial" + suffix,
                Dim3.of(Launch.NORM_BLOCKS),
                Dim3.of(Launch.NORM_BLOCK),
                0,
                stream,
                partials,
                values,
                n);
    }

    /** out (1) f32 = the sum of partials (count) f32, one block, a fixed order. */
    public void sumPartials(long out, long partials, int count, MemorySegment stream) {
        launch("sum_partials", Dim3.of(1), Dim3.of(1024), 0, stream, out, partials, count);
    }

    /** flag (1) int = 1 if any of values (n) X is inf or NaN (the flag must be zeroed first). */
    public void checkFinite(long flag, long values, long n, MemorySegment stream) {
        elementwise("check_finite", n, stream, flag, values, n);
    }

    /** values (n) X *= factor, in place. */
    public void scaleInplace(long values, long n, float factor, MemorySegment stream) {
        elementwise("scale_inplace", n, stream, values, n, factor);
    }

    /**
     * AdamW on n parameters X (master f32, or 0 to update the floatX values directly) with gradients X times
     * {@code gradScale}; m, v f32. 16-bit parameters are rounded stochastically from {@code seed} and each element's
     * index in its tensor ({@code firstIndex} + i), so a piece launched alone rounds as the whole tensor would.
     */
    public void adamwUpdate(
            long params,
            long master,
            long grads,
            long m,
            long v,
            long n,
            float learningRate,
            float beta1,
            float beta2,
            float beta1Correction,
            float beta2Correction,
            float eps,
            float weightDecay,
            float gradScale,
            int seed,
            long firstIndex,
            MemorySegment stream) {
        elementwise(
                "adamw_update",
                n,
                stream,
                params,
                master,
                grads,
                m,
                v,
                n,
                learningRate,
                beta1,
                beta2,
                beta1Correction,
                beta2Correction,
                eps,
                weightDecay,
                gradScale,
                seed,
                firstIndex);
    }
}
