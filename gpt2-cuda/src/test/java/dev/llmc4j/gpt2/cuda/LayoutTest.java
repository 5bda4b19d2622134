package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.llmc4j.model.GPT2Config;
import java.util.Comparator;
import org.junit.jupiter.api.Test;

/** Sizes and offsets of the device buffers, checked against formulas written out independently. */
class LayoutTest {
    static final GPT2Config D12 = GPT2Config.fromDescriptor("d12");

    @Test
    void parameterLayoutFollowsLlmcOrder() {
        var p = ParameterLayout.of(D12);
        assertEquals(124_475_904L, p.numParameters());
        assertEquals(0, p.offset(ParameterLayout.WTE));
        assertEquals(50304L * 768, p.offset(ParameterLayout.WPE));
        assertEquals(50304L * 768 + 1024 * 768, p.offset(ParameterLayout.LN1W));
        // qkvw starts after wte, wpe, ln1w, ln1b
        long qkvw = 50304L * 768 + 1024 * 768 + 2 * 12 * 768;
        assertEquals(qkvw, p.offset(ParameterLayout.QKVW));
        assertEquals(qkvw + 5L * 3 * 768 * 768, p.layer(ParameterLayout.QKVW, 5));
        assertEquals(p.numParameters() - 2 * 768, p.offset(ParameterLayout.LNFW));
        assertThrows(IllegalArgumentException.class, () -> p.layer(ParameterLayout.WTE, 0));
        // every tensor starts 16-byte aligned in bf16 (cuBLASLt wants aligned matrices): all sizes are multiples of C
        for (int t = 0; t < ParameterLayout.NUM_TENSORS; t++)
            assertEquals(0, p.offset(t) * 2 % 16, GPT2Config.PARAMETER_NAMES[t]);
    }

    @Test
    void weightDecayOnlyOnTwoDimensionalTensors() {
        StringBuilder decayed = new StringBuilder();
        for (int t = 0; t < ParameterLayout.NUM_TENSORS; t++)
            if (ParameterLayout.decays(t))
                decayed.append(GPT2Config.PARAMETER_NAMES[t]).append(' ');
        assertEquals("wte wpe qkvw attprojw fcw fcprojw ", decayed.toString());
    }

    @Test
    void parameterDeviceBytes() {
        var p = ParameterLayout.of(D12);
        long n = p.numParameters();
        // bf16 params + grads, fp32 master + m + v: 16 bytes per parameter (~1.99 GB for d12)
        assertEquals(16 * n, p.deviceBytes(Precision.BF16, true));
        assertEquals(12 * n, p.deviceBytes(Precision.BF16, false));
        // fp32: params + grads + m + v, no separate master
        assertEquals(16 * n, p.deviceBytes(Precision.FP32, true));
        assertFalse(ParameterLayout.keepsMasterWeights(Precision.FP32, true));
        assertTrue(ParameterLayout.keepsMasterWeights(Precision.FP16, true));
    }

    /** Bytes of all tensors without alignment, written out from the list in the Activations record. */
    static long unalignedBytes(GPT2Config c, int B, int T, Precision p, boolean flash, int recompute) {
        long L = c.numLayers(), C = c.channels(), NH = c.numHeads(), Vp = c.paddedVocabSize(), BT = (long) B * T;
        long ln = recompute >= 2 ? 1 : L, gelu = recompute >= 1 ? 1 : L;
        long floatX = BT * C * (1 + ln + 3 * L + L + L + ln + 4 * L + 4 * gelu + L + 1 + 1) // forward
                + BT * Vp // logits
                + BT * C * (1 + 1 + 4 + 3); // dresidual dbtc dbt4c dqkv
        long fp32 = 4 * L * BT
                + 2 * BT
                + BT // LN stats, losses
                + (flash ? L * BT * NH + BT * NH : L * NH * BT * T + NH * BT * T) // lse + D, or att + dpreatt
                + 256L * 8 * C
                + 1025
                + 1; // partials, norm, flag
        long ints = 5 * BT + 1;
        return floatX * p.bytes() + fp32 * 4 + ints * 4;
    }

    @Test
    void activationBytesForD12() {
        int tensors = 0;
        for (int[] bt : new int[][] {{4, 64}, {16, 1024}}) {
            for (int recompute = 0; recompute <= 2; recompute++) {
                for (boolean flash : new boolean[] {true, false}) {
                    var a = Activations.plan(D12, bt[0], bt[1], Precision.BF16, flash, recompute);
                    long expected = unalignedBytes(D12, bt[0], bt[1], Precision.BF16, flash, recompute);
                    tensors = a.tensors().size();
                    assertTrue(a.totalBytes() >= expected, "B,T=" + bt[0] + "," + bt[1]);
                    assertTrue(a.totalBytes() < expected + (long) tensors * Activations.ALIGN + Activations.ALIGN);
                }
            }
        }
        // pinned values (bf16, flash, recompute 1), to notice any change of the layout
        var small = Activations.plan(D12, 4, 64, Precision.BF16, true, 1);
        var large = Activations.plan(D12, 16, 1024, Precision.BF16, true, 1);
        assertEquals(unalignedBytes(D12, 4, 64, Precision.BF16, true, 1), small.totalBytes(), 36L * 256);
        // B=16, T=1024: 160 (B,T,C)-sized bf16 tensors (4.03 GB) + logits (B,T,Vp) bf16 (1.65 GB) + fp32 bits = 5.70 GB
        assertEquals(5_695_083_264L, large.totalBytes());
        // B=4, T=64: 160 x (B,T,C) bf16 = 62.9 MB + logits 25.8 MB + fp32 (partials 6.3 MB, ...) = 95.2 MB
        assertEquals(95_183_616L, small.totalBytes());
    }

    @Test
    void recomputeLevelsShrinkTheRightTensors() {
        var r0 = Activations.plan(D12, 4, 64, Precision.BF16, true, 0);
        var r1 = Activations.plan(D12, 4, 64, Precision.BF16, true, 1);
        var r2 = Activations.plan(D12, 4, 64, Precision.BF16, true, 2);
        long btc = 4L * 64 * 768;
        assertEquals(12 * 4 * btc, r0.fchGelu().elements());
        assertEquals(4 * btc, r1.fchGelu().elements());
        assertEquals(12 * btc, r1.ln1().elements());
        assertEquals(btc, r2.ln1().elements());
        assertEquals(btc, r2.ln2().elements());
        // the statistics are always kept per layer (the backward pass needs them; recompute rewrites the same values)
        assertEquals(12 * 4 * 64, r2.ln1Mean().elements());
        // bytes saved by level 1: 11 layers of (BT, 4C) bf16
        assertEquals(11 * 4 * btc * 2, r0.totalBytes() - r1.totalBytes(), 256 * 2);
    }

    @Test
    void flashKeepsOnlyTheLogSumExp() {
        var flash = Activations.plan(D12, 4, 64, Precision.BF16, true, 1);
        var plain = Activations.plan(D12, 4, 64, Precision.BF16, false, 1);
        assertEquals(12L * 4 * 12 * 64, flash.lse().elements());
        assertNull(flash.att());
        assertNull(flash.dpreatt());
        assertEquals(12L * 4 * 12 * 64 * 64, plain.att().elements());
        assertNull(plain.lse());
        assertNull(plain.attD());
    }

    @Test
    void tensorsAreAlignedAndDoNotOverlap() {
        var a = Activations.plan(D12, 3, 100, Precision.FP16, true, 2);
        var sorted = a.tensors().stream()
                .sorted(Comparator.comparingLong(Activations.DeviceTensor::address))
                .toList();
        long end = 0;
        for (var t : sorted) {
            assertEquals(0, t.address() % Activations.ALIGN, t.name());
            assertTrue(t.address() >= end, t.name() + " overlaps");
            end = t.address() + t.bytes();
        }
        assertTrue(a.totalBytes() >= end);
        assertEquals(2, a.qkv().elementBytes());
        assertEquals(4, a.lse().elementBytes());
        assertThrows(IllegalArgumentException.class, () -> Activations.plan(D12, 1, 1, Precision.BF16, true, 3));
    }

    @Test
    void movedOntoAnAllocationEveryTensorShiftsByTheBaseAndLayersStepByOneLayer() {
        var plan = Activations.plan(D12, 2, 32, Precision.BF16, true, 1);
        long base = 1L << 40;
        var placed = plan.at(base);
        assertEquals(plan.tensors().size(), placed.tensors().size());
        for (int i = 0; i < plan.tensors().size(); i++)
            assertEquals(
                    plan.tensors().get(i).address() + base,
                    placed.tensors().get(i).address());
        assertNull(placed.att());
        long btc = 2L * 32 * 768;
        assertEquals(placed.qkv().address() + 5 * 3 * btc * 2, placed.qkv().layer(5));
        // recompute 1 keeps one fchGelu layer: every layer reads and writes the same slice
        assertEquals(placed.fchGelu().address(), placed.fchGelu().layer(11));
        assertEquals(plan.totalBytes(), placed.totalBytes());
    }

    @Test
    void aLayersSlicesChainThroughTheResidualStream() {
        var flash = Activations.plan(D12, 2, 32, Precision.BF16, true, 2).at(1L << 36);
        var first = flash.layer(0);
        assertEquals(flash.encoded().address(), first.residual());
        assertEquals(flash.residual3().layer(4), flash.layer(5).residual(), "layer 5 reads layer 4's output");
        assertEquals(flash.ln1().address(), flash.layer(7).ln1(), "recompute 2: one ln1 shared by every layer");
        assertEquals(flash.lse().layer(3), flash.layer(3).lse());
        assertEquals(0, first.att());
        var plain = Activations.plan(D12, 2, 32, Precision.FP32, false, 0).at(1L << 36);
        assertEquals(0, plain.layer(1).lse());
        assertEquals(plain.att().layer(1), plain.layer(1).att());
        assertNotEquals(plain.ln1().address(), plain.layer(1).ln1(), "recompute 0: ln1 per layer");
    }
}
