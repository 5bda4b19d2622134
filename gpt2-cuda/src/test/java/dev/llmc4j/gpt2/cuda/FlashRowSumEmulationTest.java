package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Why attention_flash.cu adds up P in fp32 for the row sum (FlashAttention-2's rule): an emulation, on the CPU, of the
 * forward kernel's online softmax (64-key tiles, running max and sum, fp32 arithmetic) on FlashAttentionGpuTest's own
 * data. The saved lse = m + log(l) is all the backward pass recomputes P from; summing P after rounding it to bf16
 * (what the matmul sees) puts that rounding into lse. The test's tolerance for lse is 1e-3 + 1e-3 |lse|.
 */
class FlashRowSumEmulationTest {
    static final int TILE = FlashAttention.TILE;

    /** The worst |lse - exact| / (1e-3 + 1e-3 |exact|) over all rows, with P summed as rounded or in fp32. */
    static double worstFractionOfTolerance(Precision p, int B, int T, int NH, int hs, boolean sumRoundedP) {
        int C = NH * hs;
        var rng = new Random(B * 1000 + T * 10 + hs); // FlashAttentionGpuTest's data for this shape
        float[] qkv = new float[B * T * 3 * C];
        for (int i = 0; i < qkv.length; i++) qkv[i] = (float) rng.nextGaussian();
        qkv = Device.round(qkv, p);
        float[] exact = FlashAttentionGpuTest.logSumExp(qkv, B, T, C, NH);
        float scale = (float) (1.0 / Math.sqrt(hs));
        double worst = 0;
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    float m = Float.NEGATIVE_INFINITY, l = 0;
                    for (int k0 = 0; k0 <= t; k0 += TILE) {
                        int k1 = Math.min(k0 + TILE, t + 1);
                        float[] s = new float[k1 - k0];
                        float tileMax = Float.NEGATIVE_INFINITY;
                        for (int k = k0; k < k1; k++) {
                            float dot = 0;
                            for (int d = 0; d < hs; d++)
                                dot += qkv[(b * T + t) * 3 * C + h * hs + d]
                                        * qkv[(b * T + k) * 3 * C + C + h * hs + d];
                            s[k - k0] = dot * scale;
                            tileMax = Math.max(tileMax, s[k - k0]);
                        }
                        float mNew = Math.max(m, tileMax), tileSum = 0;
                        for (float v : s) {
                            float prob = (float) Math.exp(v - mNew);
                            tileSum += sumRoundedP ? Device.round(prob, p) : prob;
                        }
                        l = l * (float) Math.exp(m - mNew) + tileSum;
                        m = mNew;
                    }
                    double lse = m + Math.log(l), ref = exact[(b * NH + h) * T + t];
                    worst = Math.max(worst, Math.abs(lse - ref) / (1e-3 + 1e-3 * Math.abs(ref)));
                }
        return worst;
    }

    @Test
    void summingPInFp32KeepsTheLogSumExpFarInsideTheTestsTolerance() {
        for (int hs : new int[] {64, 128}) {
            int T = hs == 64 ? 100 : 130;
            double fp32 = worstFractionOfTolerance(Precision.BF16, 2, T, 2, hs, false);
            double rounded = worstFractionOfTolerance(Precision.BF16, 2, T, 2, hs, true);
            System.out.printf(
                    "hs=%d: lse error with P summed in fp32 %.3f%% of the tolerance, rounded to bf16 %.1f%%%n",
                    hs, 100 * fp32, 100 * rounded);
            assertTrue(fp32 < 0.1, "fp32 row sum uses " + fp32 + " of the tolerance");
            assertTrue(fp32 < rounded, "fp32 " + fp32 + " vs rounded " + rounded);
        }
    }
}
