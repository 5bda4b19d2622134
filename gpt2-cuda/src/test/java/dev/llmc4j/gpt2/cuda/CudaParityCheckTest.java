package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.model.GPT2Config;
import java.lang.foreign.MemorySegment;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The tolerance arithmetic of {@link CudaParityCheck} on synthetic tensors: no GPU needed. */
class CudaParityCheckTest {

    static CudaParityCheck.TensorComparison compare(float[] ours, float[] reference, CudaParityCheck.Rule rule) {
        return CudaParityCheck.compare(
                "t", ours, 0, 0, MemorySegment.ofArray(reference), 0, 0, 1, reference.length, rule);
    }

    @Test
    void sixteenBitTolerancesAreLlmcTestGpt2Cu() {
        var t = CudaParityCheck.tolerances(Precision.BF16);
        assertEquals(new CudaParityCheck.Rule.Elementwise(25.0, 0), t.logits());
        assertEquals(16, t.gradients().size());
        // wte 5e-1, wpe 4e-3, qkvb 3.5e-2, fcprojb 1e-2, lnfb 2e-2; all with 0.079 |ref|
        assertEquals(
                new CudaParityCheck.Rule.Elementwise(5e-1, 0.079), t.gradients().get(0));
        assertEquals(
                new CudaParityCheck.Rule.Elementwise(4e-3, 0.079), t.gradients().get(1));
        assertEquals(
                new CudaParityCheck.Rule.Elementwise(3.5e-2, 0.079),
                t.gradients().get(5));
        assertEquals(
                new CudaParityCheck.Rule.Elementwise(1e-2, 0.079), t.gradients().get(13));
        assertEquals(
                new CudaParityCheck.Rule.Elementwise(2e-2, 0.079), t.gradients().get(15));
        assertEquals(0.05, t.loss());
        assertEquals(0.05, t.stepLoss());
        assertEquals(t, CudaParityCheck.tolerances(Precision.FP16));
        assertEquals(GPT2Config.PARAMETER_NAMES.length, CudaParityCheck.GRADIENT_THRESHOLDS_16BIT.length);
    }

    @Test
    void fp32UsesTheCpuRule() {
        var t = CudaParityCheck.tolerances(Precision.FP32);
        assertEquals(new CudaParityCheck.Rule.RelativeNorm(1e-5), t.logits());
        assertTrue(t.gradients().stream().allMatch(r -> r.equals(new CudaParityCheck.Rule.RelativeNorm(1e-5))));
        assertEquals(1e-4, t.loss());
        assertEquals(1e-4, t.stepLoss());
    }

    @Test
    void elementwiseToleranceGrowsWithTheReference() {
        // thr 0.02 + 0.079 |ref|: allowed 0.099 at 1, 0.178 at -2, 0.81 at 10
        float[] reference = {1, -2, 10};
        float[] ours = {1.1f, -2.2f, 10.8f}; // off by 0.1 (> 0.099), 0.2 (> 0.178), 0.8 (< 0.81)
        var rule = new CudaParityCheck.Rule.Elementwise(0.02, 0.079);
        var c = compare(ours, reference, rule);
        assertEquals(2, c.elementsOutside());
        assertFalse(c.ok());
        assertEquals(0.8, c.maxAbsDiff(), 1e-5);

        float[] close = {1.09f, -2.17f, 10.8f};
        var ok = compare(close, reference, rule);
        assertEquals(0, ok.elementsOutside());
        assertTrue(ok.ok());
    }

    @Test
    void bf16RoundingOfEveryGradientPassesTheSixteenBitRule() {
        // bf16 keeps 8 significant bits: a relative error of at most 2^-9, far inside 0.079 |ref|
        var random = new Random(7);
        float[] reference = new float[4096];
        float[] rounded = new float[reference.length];
        for (int i = 0; i < reference.length; i++) {
            reference[i] = (float) (random.nextGaussian() * 3);
            rounded[i] = BFloat16.toFloat(BFloat16.fromFloat(reference[i]));
        }
        for (var rule : CudaParityCheck.tolerances(Precision.BF16).gradients())
            assertTrue(compare(rounded, reference, rule).ok(), rule.toString());
        // but not the fp32 rule: its relative error is about 1e-3
        assertFalse(compare(
                        rounded,
                        reference,
                        CudaParityCheck.tolerances(Precision.FP32).gradients().get(0))
                .ok());
    }

    @Test
    void relativeNormRule() {
        float[] reference = {3, 4}; // ||ref|| = 5
        var rule = new CudaParityCheck.Rule.RelativeNorm(1e-5);
        var tiny = compare(new float[] {3, 4.00004f}, reference, rule); // relative error 8e-6
        assertTrue(tiny.ok(), "relative error " + tiny.relativeError());
        var large = compare(new float[] {3, 4.001f}, reference, rule); // 2e-4
        assertFalse(large.ok());
        assertEquals(2e-4, large.relativeError(), 1e-6);
    }

    @Test
    void logitsCompareOnlyTheRealVocabularyColumns() {
        // ours (2 rows, Vp = 4) with padding columns full of garbage; the reference (2 rows, V = 3)
        float[] ours = {1, 2, 3, 1e9f, 4, 5, 6, -1e9f};
        float[] reference = {1, 2, 3, 4, 5, 30.5f};
        var c = CudaParityCheck.compare(
                "logits",
                ours,
                0,
                4,
                MemorySegment.ofArray(reference),
                0,
                3,
                2,
                3,
                CudaParityCheck.tolerances(Precision.BF16).logits());
        assertEquals(24.5, c.maxAbsDiff(), 1e-6);
        assertTrue(c.ok(), "24.5 is inside llm.c's 25");
        reference[5] = 31.5f; // 25.5 off
        var bad = CudaParityCheck.compare(
                "logits",
                ours,
                0,
                4,
                MemorySegment.ofArray(reference),
                0,
                3,
                2,
                3,
                CudaParityCheck.tolerances(Precision.BF16).logits());
        assertFalse(bad.ok());
        assertEquals(1, bad.elementsOutside());
    }

    @Test
    void offsetsSelectOneTensorOfTheParameterVector() {
        float[] ours = {9, 9, 1, 2, 9};
        float[] reference = {0, 0, 1, 2, 0};
        var c = CudaParityCheck.compare(
                "t",
                ours,
                2,
                0,
                MemorySegment.ofArray(reference),
                2,
                0,
                1,
                2,
                new CudaParityCheck.Rule.RelativeNorm(0));
        assertEquals(0, c.maxAbsDiff());
        assertTrue(c.ok());
    }

    @Test
    void nanAlwaysFails() {
        float[] reference = {1, 2};
        var c = compare(new float[] {1, Float.NaN}, reference, new CudaParityCheck.Rule.Elementwise(1e9, 1));
        assertFalse(c.ok());
        assertEquals(Double.POSITIVE_INFINITY, c.relativeError());
        assertFalse(compare(new float[] {Float.NaN, 2}, reference, new CudaParityCheck.Rule.RelativeNorm(1e9))
                .ok());
    }

    @Test
    void stepLossesWithinTheTolerance() {
        assertTrue(CudaParityCheck.lossOk(5.27f, 5.30f, 0.05));
        assertFalse(CudaParityCheck.lossOk(5.27f, 5.33f, 0.05));
        assertFalse(CudaParityCheck.lossOk(Float.NaN, 5.27f, 0.05));
    }

    @Test
    void linesHaveTheCpuChecksShape() {
        var ok = new CudaParityCheck.TensorComparison("dwte", 0.125, 1.5e-3, 0, true);
        assertEquals("dwte      max |diff| 1.250e-01  relative error 1.500e-03  OK", CudaParityCheck.line(ok));
        var bad = new CudaParityCheck.TensorComparison("dwpe", 0.5, 0.25, 3, false);
        assertEquals(
                "dwpe      max |diff| 5.000e-01  relative error 2.500e-01  NOT OK (3 elements outside thr + 0.079|ref|)",
                CudaParityCheck.line(bad));
    }

    @Test
    void llmcLossListBelongsToGpt2SmallAtB4T64() {
        var small = new GPT2Config(1024, 50257, 50304, 12, 12, 768);
        assertTrue(CudaParityCheck.isLlmcGpt2Small(small, 4, 64));
        assertFalse(CudaParityCheck.isLlmcGpt2Small(small, 1, 64));
        assertFalse(CudaParityCheck.isLlmcGpt2Small(new GPT2Config(64, 250, 256, 2, 2, 128), 4, 64));
        assertEquals(10, CudaParityCheck.LLMC_CUDA_STEP_LOSSES.length);
    }
}
