package dev.llmc4j.gpt2.cuda;

import static dev.llmc4j.gpt2.cuda.Device.STREAM;
import static dev.llmc4j.gpt2.cuda.GpuAsserts.assertClose;
import static dev.llmc4j.gpt2.cuda.GpuAsserts.maxAbs;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * Flash attention vs plain attention vs a CPU reference, forward and backward, on shapes with ragged tiles
 * (T not a multiple of 64), several heads and every supported head size. Needs a GPU.
 */
@Tag("gpu")
class FlashAttentionGpuTest {
    static Device dev;

    @BeforeEach
    void requireGpu() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device"); // each test reports the skip
        if (dev == null) dev = new Device();
    }

    @AfterAll
    static void close() {
        if (dev != null) dev.close();
    }

    static List<Arguments> shapes() {
        int[][] shapes = {
            {1, 64, 1, 64}, {2, 100, 2, 64}, {1, 1, 2, 64}, {1, 200, 3, 96}, {2, 130, 2, 128}, {1, 256, 12, 64}
        };
        var args = new ArrayList<Arguments>();
        for (Precision p : new Precision[] {Precision.BF16, Precision.FP16})
            for (int[] s : shapes) args.add(Arguments.of(p, s[0], s[1], s[2], s[3]));
        return args;
    }

    /** Row log-sum-exp of the scaled causal scores, (B, NH, T). */
    static float[] logSumExp(float[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        float[] lse = new float[B * NH * T];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    double max = Double.NEGATIVE_INFINITY;
                    double[] s = new double[t + 1];
                    for (int t2 = 0; t2 <= t; t2++) {
                        double dot = 0;
                        for (int d = 0; d < hs; d++)
                            dot += (double) qkv[(b * T + t) * 3 * C + h * hs + d]
                                    * qkv[(b * T + t2) * 3 * C + C + h * hs + d];
                        s[t2] = dot / Math.sqrt(hs);
                        max = Math.max(max, s[t2]);
                    }
                    double sum = 0;
                    for (double v : s) sum += Math.exp(v - max);
                    lse[(b * NH + h) * T + t] = (float) (max + Math.log(sum));
                }
        return lse;
    }

    @ParameterizedTest(name = "{0} B={1} T={2} NH={3} hs={4}")
    @MethodSource("shapes")
    void flashMatchesPlainAndTheCpu(Precision p, int B, int T, int NH, int hs) {
        int C = NH * hs, BT = B * T, x = p.bytes();
        var rng = new Random(B * 1000 + T * 10 + hs);
        float[] qkv = new float[BT * 3 * C], dout = new float[BT * C];
        for (int i = 0; i < qkv.length; i++) qkv[i] = (float) rng.nextGaussian();
        for (int i = 0; i < dout.length; i++) dout[i] = (float) rng.nextGaussian();
        qkv = Device.round(qkv, p);
        dout = Device.round(dout, p);

        // CPU reference
        float[] out = new float[BT * C], att = new float[B * NH * T * T], dqkv = new float[BT * 3 * C];
        Gpt2Reference.attentionForward(out, att, qkv, B, T, C, NH);
        Gpt2Reference.attentionBackward(dqkv, dout, qkv, att, B, T, C, NH);
        float[] lse = logSumExp(qkv, B, T, C, NH);

        long dQkv = dev.uploadAs(qkv, p), dDout = dev.uploadAs(dout, p);
        // plain
        long pOut = dev.alloc((long) BT * C * x),
                pAtt = dev.alloc((long) B * NH * T * T * 4),
                pDpre = dev.alloc((long) B * NH * T * T * 4);
        long pDqkv = dev.alloc((long) BT * 3 * C * x);
        var kernels = dev.kernels(p);
        kernels.attentionForwardPlain(pOut, pAtt, dQkv, B, T, C, NH, STREAM);
        kernels.attentionBackwardPlain(pDqkv, pDpre, dDout, dQkv, pAtt, B, T, C, NH, STREAM);
        dev.sync();
        // flash
        long fOut = dev.alloc((long) BT * C * x),
                fLse = dev.alloc((long) B * NH * T * 4),
                fD = dev.alloc((long) B * NH * T * 4);
        long fDqkv = dev.alloc((long) BT * 3 * C * x);
        kernels.flashAttentionForward(fOut, fLse, dQkv, B, T, C, NH, STREAM);
        kernels.flashAttentionBackward(fDqkv, fD, dDout, fOut, dQkv, fLse, B, T, C, NH, STREAM);
        dev.sync();

        float[] plainOut = dev.downloadAs(pOut, BT * C, p), flashOut = dev.downloadAs(fOut, BT * C, p);
        float[] plainDqkv = dev.downloadAs(pDqkv, BT * 3 * C, p), flashDqkv = dev.downloadAs(fDqkv, BT * 3 * C, p);
        double outScale = maxAbs(out), gradScale = maxAbs(dqkv);
        // plain: fp32 arithmetic, one rounding at the end
        assertClose("plain out", out, plainOut, 1e-3 * outScale, 2 * Device.eps(p));
        assertClose("plain dqkv", dqkv, plainDqkv, 1e-3 * gradScale, 3 * Device.eps(p));
        // flash: P and dS go through 16-bit on their way into the tensor cores
        assertClose("flash lse", lse, dev.download(fLse, B * NH * T), 1e-3, 1e-3);
        assertClose("flash out", out, flashOut, 2e-2 * outScale, 4 * Device.eps(p));
        assertClose("flash dqkv", dqkv, flashDqkv, 3e-2 * gradScale, 6 * Device.eps(p));
        assertClose("flash vs plain out", plainOut, flashOut, 2e-2 * outScale, 4 * Device.eps(p));

        // deterministic: running the backward again gives the same bits
        long fDqkv2 = dev.alloc((long) BT * 3 * C * x);
        kernels.flashAttentionBackward(fDqkv2, fD, dDout, fOut, dQkv, fLse, B, T, C, NH, STREAM);
        dev.sync();
        assertArrayEquals(flashDqkv, dev.downloadAs(fDqkv2, BT * 3 * C, p));
    }
}
