package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.cpu.Parallel;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * A kernel set that runs {@code base}'s kernels except the one layer an {@link Ablation} takes out, whose forward
 * and backward it replaces; {@link GPT2} calls every layer through its kernel set, so the model file stays as it
 * is and the full model runs exactly the arithmetic it always did. Each replacement, forward beside backward:
 *
 * <pre>
 *   NO_POSITION_EMBEDDING  encoder    out = wte[token]            dwte[token] += dout     (dwpe untouched)
 *   NO_LAYERNORM           layernorm  out = inp                   dinp += dout            (dweight, dbias untouched)
 *   NO_RESIDUAL            residual   out = b (the sublayer)      db += dout              (da untouched)
 *   RELU                   GELU       out = max(x, 0)             dinp += (x > 0) * dout
 * </pre>
 *
 * Where the forward no longer reads a tensor its gradient stays zero, so AdamW leaves that tensor as it is (the
 * layernorms' weights and biases are not decayed, being 1-D). Every method of {@link GPT2Kernels} is overridden,
 * the unchanged ones to call {@code base}: an interface default would silently run the baseline loops instead of
 * the vectorized ones (AblationTest checks that none is missed).
 */
final class AblatedKernels implements GPT2Kernels {
    private final GPT2Kernels base;
    private final Ablation ablation;

    AblatedKernels(GPT2Kernels base, Ablation ablation) {
        this.base = base;
        this.ablation = ablation;
    }

    Ablation ablation() {
        return ablation;
    }

    @Override
    public String name() {
        return base.name() + ", " + ablation.label();
    }

    @Override
    public List<String> missingFastVersions() {
        return base.missingFastVersions();
    }

    // ---- the layers an ablation replaces ----

    @Override
    public void encoderForward(
            MemorySegment out, int[] tokens, MemorySegment wte, MemorySegment wpe, int B, int T, int C) {
        if (ablation != Ablation.NO_POSITION_EMBEDDING) {
            base.encoderForward(out, tokens, wte, wpe, B, T, C);
            return;
        }
        for (long bt = 0; bt < (long) B * T; bt++) {
            long token = tokens[(int) bt];
            MemorySegment.copy(wte, token * C * Float.BYTES, out, bt * C * Float.BYTES, (long) C * Float.BYTES);
        }
    }

    @Override
    public void encoderBackward(
            MemorySegment dwte, MemorySegment dwpe, MemorySegment dout, int[] tokens, int B, int T, int C) {
        if (ablation != Ablation.NO_POSITION_EMBEDDING) {
            base.encoderBackward(dwte, dwpe, dout, tokens, B, T, C);
            return;
        }
        for (long bt = 0; bt < (long) B * T; bt++) { // serial: two positions can hold the same token
            long token = tokens[(int) bt];
            for (int i = 0; i < C; i++) add(dwte, token * C + i, get(dout, bt * C + i));
        }
    }

    @Override
    public void layernormForward(
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        if (ablation != Ablation.NO_LAYERNORM) {
            base.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
            return;
        }
        long rows = (long) B * T;
        MemorySegment.copy(inp, 0, out, 0, rows * C * Float.BYTES);
        for (long bt = 0; bt < rows; bt++) { // what an identity "normalisation" keeps: mean 0, rstd 1
            set(mean, bt, 0.0f);
            set(rstd, bt, 1.0f);
        }
    }

    @Override
    public void layernormRecompute(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        if (ablation != Ablation.NO_LAYERNORM) {
            base.layernormRecompute(out, inp, mean, rstd, weight, bias, B, T, C);
            return;
        }
        MemorySegment.copy(inp, 0, out, 0, (long) B * T * C * Float.BYTES);
    }

    @Override
    public void layernormBackward(
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
        if (ablation != Ablation.NO_LAYERNORM) {
            base.layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, T, C);
            return;
        }
        accumulate(dinp, dout, (long) B * T * C);
    }

    /** The fused kernel only while neither of its two pieces is removed; else the two ablated layers in turn. */
    @Override
    public void residualLayernormForward(
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
        if (ablation != Ablation.NO_RESIDUAL && ablation != Ablation.NO_LAYERNORM) {
            base.residualLayernormForward(residual, out, mean, rstd, a, b, weight, bias, B, T, C);
            return;
        }
        residualForward(residual, a, b, (long) B * T * C);
        layernormForward(out, mean, rstd, residual, weight, bias, B, T, C);
    }

    @Override
    public void residualForward(MemorySegment out, MemorySegment a, MemorySegment b, long N) {
        if (ablation != Ablation.NO_RESIDUAL) {
            base.residualForward(out, a, b, N);
            return;
        }
        MemorySegment.copy(b, 0, out, 0, N * Float.BYTES); // a, the stream that skipped the sublayer, is dropped
    }

    @Override
    public void residualBackward(MemorySegment da, MemorySegment db, MemorySegment dout, long N) {
        if (ablation != Ablation.NO_RESIDUAL) {
            base.residualBackward(da, db, dout, N);
            return;
        }
        accumulate(db, dout, N);
    }

    /**
     * The fused kernel unless GELU is the piece removed; else the interface's two layers in turn, the matmul and
     * then this set's (ablated) activation.
     */
    @Override
    public void matmulGeluForward(
            MemorySegment out,
            MemorySegment gelu,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC) {
        if (ablation == Ablation.RELU) GPT2Kernels.super.matmulGeluForward(out, gelu, inp, weight, bias, BT, C, OC);
        else base.matmulGeluForward(out, gelu, inp, weight, bias, BT, C, OC);
    }

    @Override
    public void geluForward(MemorySegment out, MemorySegment inp, long N) {
        if (ablation != Ablation.RELU) {
            base.geluForward(out, inp, N);
            return;
        }
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) set(out, i, Math.max(get(inp, i), 0.0f));
        });
    }

    @Override
    public void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long N) {
        if (ablation != Ablation.RELU) {
            base.geluBackward(dinp, inp, dout, N);
            return;
        }
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) if (get(inp, i) > 0) add(dinp, i, get(dout, i));
        });
    }

    /** into (N) += from: base's residual add with into as its output and first input (element by element, safe). */
    private void accumulate(MemorySegment into, MemorySegment from, long N) {
        base.residualForward(into, into, from, N);
    }

    // ---- every other layer: base's ----

    @Override
    public void matmulForward(
            MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC) {
        base.matmulForward(out, inp, weight, bias, BT, C, OC);
    }

    @Override
    public void matmulBackward(
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
        base.matmulBackward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, accumulate);
    }

    @Override
    public void attentionForward(
            MemorySegment out,
            MemorySegment preatt,
            MemorySegment att,
            MemorySegment inp,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        base.attentionForward(out, preatt, att, inp, B, T, NH, NKV, hs);
    }

    @Override
    public void attentionBackward(
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
        base.attentionBackward(dinp, dpreatt, datt, dout, inp, att, B, T, NH, NKV, hs);
    }

    @Override
    public void softmaxForward(MemorySegment probs, MemorySegment logits, int BT, int V, int Vp) {
        base.softmaxForward(probs, logits, BT, V, Vp);
    }

    @Override
    public void crossentropyForward(MemorySegment losses, MemorySegment probs, int[] targets, int BT, int Vp) {
        base.crossentropyForward(losses, probs, targets, BT, Vp);
    }

    @Override
    public void crossentropySoftmaxBackward(
            MemorySegment dlogits, MemorySegment dlosses, MemorySegment probs, int[] targets, int BT, int V, int Vp) {
        base.crossentropySoftmaxBackward(dlogits, dlosses, probs, targets, BT, V, Vp);
    }

    @Override
    public void softmaxCrossEntropyForward(
            MemorySegment losses, MemorySegment maxAndSum, MemorySegment logits, int[] targets, int BT, int V, int Vp) {
        base.softmaxCrossEntropyForward(losses, maxAndSum, logits, targets, BT, V, Vp);
    }

    @Override
    public void softmaxCrossEntropyBackward(
            MemorySegment dlogits,
            MemorySegment dlosses,
            MemorySegment logits,
            MemorySegment maxAndSum,
            int[] targets,
            int BT,
            int V,
            int Vp) {
        base.softmaxCrossEntropyBackward(dlogits, dlosses, logits, maxAndSum, targets, BT, V, Vp);
    }

    @Override
    public void adamwUpdate(
            MemorySegment params,
            MemorySegment grads,
            MemorySegment m,
            MemorySegment v,
            long offset,
            long count,
            AdamW.Step step) {
        base.adamwUpdate(params, grads, m, v, offset, count, step);
    }
}
