package dev.llmc4j.gpt2.cuda;

import static dev.llmc4j.gpt2.cuda.Device.STREAM;
import static dev.llmc4j.gpt2.cuda.GpuAsserts.assertClose;
import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

/** Each kernel against a small CPU reference, in every storage precision. Needs a GPU. */
@Tag("gpu")
class KernelsGpuTest {
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

    static float[] random(Random rng, int n, float scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) rng.nextGaussian() * scale;
        return a;
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void encoderForwardAndBackward(Precision p) {
        var rng = new Random(1);
        int B = 2, T = 5, C = 64, V = 10;
        int[] tokens = new int[B * T];
        for (int i = 0; i < tokens.length; i++) tokens[i] = rng.nextInt(4) * 2; // repeats, and unused rows
        float[] wte = Device.round(random(rng, V * C, 1), p), wpe = Device.round(random(rng, T * C, 1), p);
        long out = dev.alloc((long) B * T * C * p.bytes());
        long tok = dev.uploadInts(tokens), dWte = dev.uploadAs(wte, p), dWpe = dev.uploadAs(wpe, p);
        dev.kernels(p).encoderForward(out, tok, dWte, dWpe, B, T, C, STREAM);
        dev.sync();
        float[] expected = new float[B * T * C];
        for (int bt = 0; bt < B * T; bt++)
            for (int c = 0; c < C; c++)
                expected[bt * C + c] = Device.round(wte[tokens[bt] * C + c] + wpe[(bt % T) * C + c], p);
        assertClose("encoded", expected, dev.downloadAs(out, B * T * C, p), 0, 0);

        // backward accumulates into existing gradients
        float[] dout = Device.round(random(rng, B * T * C, 1), p);
        float[] gWte = Device.round(random(rng, V * C, 1), p), gWpe = Device.round(random(rng, T * C, 1), p);
        long dDout = dev.uploadAs(dout, p), dgWte = dev.uploadAs(gWte, p), dgWpe = dev.uploadAs(gWpe, p);
        var buckets = EncoderBuckets.of(tokens, B * T);
        dev.kernels(p)
                .encoderBackwardWte(
                        dgWte,
                        dDout,
                        dev.uploadInts(buckets.tokens()),
                        dev.uploadInts(buckets.starts()),
                        dev.uploadInts(buckets.positions()),
                        buckets.numBuckets(),
                        C,
                        STREAM);
        dev.kernels(p).encoderBackwardWpe(dgWpe, dDout, B, T, C, STREAM);
        dev.sync();
        float[] eWte = gWte.clone(), eWpe = gWpe.clone();
        for (int bt = 0; bt < B * T; bt++)
            for (int c = 0; c < C; c++) {
                eWte[tokens[bt] * C + c] += dout[bt * C + c];
                eWpe[(bt % T) * C + c] += dout[bt * C + c];
            }
        assertClose("dwte", eWte, dev.downloadAs(dgWte, V * C, p), 1e-5, Device.eps(p));
        assertClose("dwpe", eWpe, dev.downloadAs(dgWpe, T * C, p), 1e-5, Device.eps(p));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void layernormForwardAndFusedResidual(Precision p) {
        var rng = new Random(2);
        int N = 7, C = 100; // C not a multiple of 32: lanes see different channel counts
        float[] x = Device.round(random(rng, N * C, 2), p), params = Device.round(random(rng, 2 * C, 1), p);
        float[] out = new float[N * C], mean = new float[N], rstd = new float[N];
        Gpt2Reference.layernorm(out, mean, rstd, x, params, 0, C, N, C);
        long dOut = dev.alloc((long) N * C * p.bytes()), dMean = dev.alloc(N * 4L), dRstd = dev.alloc(N * 4L);
        long dx = dev.uploadAs(x, p), dParams = dev.uploadAs(params, p);
        dev.kernels(p).layernormForward(dOut, dMean, dRstd, dx, dParams, dParams + (long) C * p.bytes(), N, C, STREAM);
        dev.sync();
        assertClose("ln out", out, dev.downloadAs(dOut, N * C, p), 1e-5, 2 * Device.eps(p));
        assertClose("ln mean", mean, dev.download(dMean, N), 1e-5, 1e-5);
        assertClose("ln rstd", rstd, dev.download(dRstd, N), 1e-5, 1e-4);

        // fused: residual = round(a + b), then the same LayerNorm of the rounded residual
        float[] a = Device.round(random(rng, N * C, 1), p), b = Device.round(random(rng, N * C, 1), p);
        float[] residual = new float[N * C];
        for (int i = 0; i < residual.length; i++) residual[i] = Device.round(a[i] + b[i], p);
        Gpt2Reference.layernorm(out, mean, rstd, residual, params, 0, C, N, C);
        long dRes = dev.alloc((long) N * C * p.bytes());
        dev.kernels(p)
                .fusedResidualLayernormForward(
                        dRes,
                        dOut,
                        dMean,
                        dRstd,
                        dev.uploadAs(a, p),
                        dev.uploadAs(b, p),
                        dParams,
                        dParams + (long) C * p.bytes(),
                        N,
                        C,
                        STREAM);
        dev.sync();
        assertClose("residual", residual, dev.downloadAs(dRes, N * C, p), 0, 0);
        assertClose("fused ln out", out, dev.downloadAs(dOut, N * C, p), 1e-5, 2 * Device.eps(p));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void layernormBackward(Precision p) {
        var rng = new Random(3);
        int N = 300, C = 96; // 300 rows: rowsPerChunk 2, 150 chunks
        float[] x = Device.round(random(rng, N * C, 1), p), params = Device.round(random(rng, 2 * C, 1), p);
        float[] mean = new float[N], rstd = new float[N];
        Gpt2Reference.layernorm(new float[N * C], mean, rstd, x, params, 0, C, N, C);
        float[] dout = Device.round(random(rng, N * C, 1), p);
        float[] dinp = Device.round(random(rng, N * C, 1), p); // accumulates into this
        float[] dparams = Device.round(random(rng, 2 * C, 1), p); // and this
        float[] eDinp = dinp.clone(), eDparams = dparams.clone();
        Gpt2Reference.layernormBackward(eDinp, eDparams, params, 0, C, dout, x, mean, rstd, N, C);

        long dX = dev.uploadAs(x, p), dP = dev.uploadAs(params, p), dDout = dev.uploadAs(dout, p);
        long dDinp = dev.uploadAs(dinp, p), dDp = dev.uploadAs(dparams, p);
        long dMean = dev.upload(mean), dRstd = dev.upload(rstd);
        long partials = dev.alloc((long) Launch.rowChunks(N) * 2 * C * 4);
        dev.kernels(p)
                .layernormBackward(
                        dDinp, dDp, dDp + (long) C * p.bytes(), partials, dDout, dX, dP, dMean, dRstd, N, C, STREAM);
        dev.sync();
        assertClose("dinp", eDinp, dev.downloadAs(dDinp, N * C, p), 1e-4, 2 * Device.eps(p));
        assertClose("dweight/dbias", eDparams, dev.downloadAs(dDp, 2 * C, p), 1e-3, 2 * Device.eps(p));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void geluForwardAndBackward(Precision p) {
        var rng = new Random(4);
        int n = 1000;
        float[] x = Device.round(random(rng, n, 3), p), dout = Device.round(random(rng, n, 1), p);
        x[0] = 20;
        x[1] = -20;
        x[2] = 0; // saturated tails must not give NaN
        float[] y = new float[n], dx = new float[n];
        for (int i = 0; i < n; i++) {
            y[i] = Gpt2Reference.gelu(x[i]);
            dx[i] = Gpt2Reference.geluGrad(x[i]) * dout[i];
        }
        long dX = dev.uploadAs(x, p), dY = dev.alloc((long) n * p.bytes()), dD = dev.uploadAs(dout, p);
        dev.kernels(p).geluForward(dY, dX, n, STREAM);
        dev.kernels(p).geluBackwardInplace(dD, dX, n, STREAM);
        dev.sync();
        assertClose("gelu", y, dev.downloadAs(dY, n, p), 1e-5, Device.eps(p));
        assertClose("gelu backward", dx, dev.downloadAs(dD, n, p), 1e-5, 2 * Device.eps(p));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void biasBackwardIsAColumnSumThatAccumulates(Precision p) {
        var rng = new Random(5);
        int N = 1000, OC = 70;
        float[] dout = Device.round(random(rng, N * OC, 1), p), dbias = Device.round(random(rng, OC, 1), p);
        float[] expected = dbias.clone();
        for (int n = 0; n < N; n++) for (int o = 0; o < OC; o++) expected[o] += dout[n * OC + o];
        long partials = dev.alloc((long) Launch.rowChunks(N) * OC * 4);
        long dDbias = dev.uploadAs(dbias, p), dDout = dev.uploadAs(dout, p);
        dev.kernels(p).biasBackward(dDbias, partials, dDout, N, OC, STREAM);
        dev.sync();
        float[] first = dev.downloadAs(dDbias, OC, p);
        assertClose("dbias", expected, first, 1e-3, 2 * Device.eps(p));
        // deterministic: the same launch on the same data gives the same bits
        long again = dev.uploadAs(dbias, p);
        dev.kernels(p).biasBackward(again, partials, dDout, N, OC, STREAM);
        dev.sync();
        assertArrayEquals(first, dev.downloadAs(again, OC, p));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void fusedClassifier(Precision p) {
        var rng = new Random(6);
        int N = 6, V = 50, Vp = 64;
        float[] logits = Device.round(random(rng, N * Vp, 3), p);
        int[] targets = new int[N];
        for (int i = 0; i < N; i++) targets[i] = rng.nextInt(V);
        float dloss = 1.0f / N;
        float[] losses = new float[N], dlogits = new float[N * Vp];
        for (int n = 0; n < N; n++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int v = 0; v < V; v++) max = Math.max(max, logits[n * Vp + v]);
            for (int v = 0; v < V; v++) sum += Math.exp(logits[n * Vp + v] - max);
            double logZ = max + Math.log(sum);
            losses[n] = (float) (logZ - logits[n * Vp + targets[n]]);
            for (int v = 0; v < V; v++)
                dlogits[n * Vp + v] =
                        (float) ((Math.exp(logits[n * Vp + v] - logZ) - (v == targets[n] ? 1 : 0)) * dloss);
        }
        long dLogits = dev.uploadAs(logits, p), dLosses = dev.alloc(N * 4L), dTargets = dev.uploadInts(targets);
        dev.kernels(p).fusedClassifier(dLogits, dLosses, dTargets, dloss, N, V, Vp, false, STREAM);
        dev.sync();
        assertClose("losses (no dlogits)", losses, dev.download(dLosses, N), 1e-4, 1e-4);
        assertClose("logits untouched", logits, dev.downloadAs(dLogits, N * Vp, p), 0, 0);
        dev.kernels(p).fusedClassifier(dLogits, dLosses, dTargets, dloss, N, V, Vp, true, STREAM);
        dev.sync();
        assertClose("losses", losses, dev.download(dLosses, N), 1e-4, 1e-4);
        assertClose("dlogits (padding 0)", dlogits, dev.downloadAs(dLogits, N * Vp, p), 1e-6, 2 * Device.eps(p));
    }

    @Test
    void adamwFp32MatchesTheFormula() {
        var rng = new Random(7);
        int n = 1000;
        float[] param = random(rng, n, 1), grad = random(rng, n, 1), m = random(rng, n, 0.1f), v = new float[n];
        for (int i = 0; i < n; i++) v[i] = Math.abs((float) rng.nextGaussian()) * 0.01f;
        float lr = 1e-3f, b1 = 0.9f, b2 = 0.95f, eps = 1e-8f, wd = 0.1f, scale = 0.5f;
        int t = 3;
        float c1 = (float) (1 - Math.pow(b1, t)), c2 = (float) (1 - Math.pow(b2, t));
        float[] eP = param.clone(), eM = m.clone(), eV = v.clone();
        for (int i = 0; i < n; i++) {
            float g = grad[i] * scale;
            eM[i] = b1 * eM[i] + (1 - b1) * g;
            eV[i] = b2 * eV[i] + (1 - b2) * g * g;
            eP[i] -= lr * ((eM[i] / c1) / ((float) Math.sqrt(eV[i] / c2) + eps) + wd * eP[i]);
        }
        long dP = dev.upload(param), dG = dev.upload(grad), dM = dev.upload(m), dV = dev.upload(v);
        dev.kernels(Precision.FP32)
                .adamwUpdate(dP, 0L, dG, dM, dV, n, lr, b1, b2, c1, c2, eps, wd, scale, 1234, 0L, STREAM);
        dev.sync();
        assertClose("m", eM, dev.download(dM, n), 1e-7, 1e-5);
        assertClose("v", eV, dev.download(dV, n), 1e-9, 1e-5);
        assertClose("params", eP, dev.download(dP, n), 1e-6, 1e-5);
    }

    @Test
    void bf16StochasticRoundingIsUnbiasedAndDeterministic() {
        int n = 1 << 16;
        float value = 1.0f + (1.0f / 3) * 0x1p-7f; // a third of the way from 1.0 to the next bf16
        float[] master = new float[n];
        java.util.Arrays.fill(master, value);
        long dMaster = dev.upload(master),
                dParams = dev.alloc(n * 2L),
                dG = dev.alloc(n * 2L),
                dM = dev.alloc(n * 4L),
                dV = dev.alloc(n * 4L);
        // lr 0: the update leaves the master value as is, only the rounding to bf16 happens
        var bf16 = dev.kernels(Precision.BF16);
        bf16.adamwUpdate(
                dParams, dMaster, dG, dM, dV, n, 0.0f, 0.9f, 0.95f, 0.1f, 0.05f, 1e-8f, 0.0f, 1.0f, 42, 0L, STREAM);
        dev.sync();
        float[] rounded = dev.downloadAs(dParams, n, Precision.BF16);
        double mean = 0;
        int up = 0;
        for (float r : rounded) {
            assertTrue(r == 1.0f || r == 1.0f + 0x1p-7f, "rounds to a neighbour: " + r);
            mean += r;
            if (r > 1.0f) up++;
        }
        mean /= n;
        assertEquals(value, mean, 3 * Math.sqrt(n / 3.0 * 2 / 3) / n * 0x1p-7f + 1e-7, "unbiased");
        assertEquals(n / 3.0, up, 5 * Math.sqrt(n * 2 / 9.0));
        // same seed, same bits
        bf16.adamwUpdate(
                dParams, dMaster, dG, dM, dV, n, 0.0f, 0.9f, 0.95f, 0.1f, 0.05f, 1e-8f, 0.0f, 1.0f, 42, 0L, STREAM);
        dev.sync();
        assertArrayEquals(rounded, dev.downloadAs(dParams, n, Precision.BF16));
        // ZeRO-1 updates pieces: a piece launched alone, told where it starts, rounds as in the whole launch
        int first = 10_000, count = 3_000;
        long dPiece = dev.alloc(count * 2L);
        bf16.adamwUpdate(
                dPiece,
                dMaster + first * 4L,
                dG + first * 2L,
                dM + first * 4L,
                dV + first * 4L,
                count,
                0.0f,
                0.9f,
                0.95f,
                0.1f,
                0.05f,
                1e-8f,
                0.0f,
                1.0f,
                42,
                first,
                STREAM);
        dev.sync();
        assertArrayEquals(
                java.util.Arrays.copyOfRange(rounded, first, first + count),
                dev.downloadAs(dPiece, count, Precision.BF16));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void globalNormIsTheL2NormAndDeterministic(Precision p) {
        var rng = new Random(8);
        int n = 1_000_003;
        float[] g = Device.round(random(rng, n, 0.01f), p);
        double expected = 0;
        for (float v : g) expected += (double) v * v;
        long dG = dev.uploadAs(g, p), partials = dev.alloc((Launch.NORM_BLOCKS + 1) * 4L);
        float[] results = new float[2];
        for (int run = 0; run < 2; run++) {
            dev.kernels(p).normSquared(partials, dG, n, STREAM);
            dev.sync();
            results[run] = dev.download(partials + Launch.NORM_BLOCKS * 4L, 1)[0];
        }
        assertEquals(expected, results[0], expected * 1e-5);
        assertEquals(Float.floatToRawIntBits(results[0]), Float.floatToRawIntBits(results[1]));
    }

    @ParameterizedTest
    @EnumSource(Precision.class)
    void checkFiniteAndScale(Precision p) {
        int n = 5000;
        float[] x = new float[n];
        for (int i = 0; i < n; i++) x[i] = i * 0.001f;
        long dX = dev.uploadAs(x, p), flag = dev.alloc(4);
        dev.kernels(p).checkFinite(flag, dX, n, STREAM);
        dev.sync();
        assertEquals(0, dev.downloadInts(flag, 1)[0]);
        dev.kernels(p).scaleInplace(dX, n, 0.5f, STREAM);
        dev.sync();
        float[] half = new float[n];
        for (int i = 0; i < n; i++) half[i] = Device.round(Device.round(x[i], p) * 0.5f, p);
        assertClose("scaled", half, dev.downloadAs(dX, n, p), 0, 0);
        for (float bad : new float[] {Float.POSITIVE_INFINITY, Float.NaN}) {
            x[n - 7] = bad;
            dX = dev.uploadAs(x, p);
            dev.cuda.memsetD8(flag, (byte) 0, 4);
            dev.kernels(p).checkFinite(flag, dX, n, STREAM);
            dev.sync();
            assertEquals(1, dev.downloadInts(flag, 1)[0], "found " + bad);
        }
    }

    @Test
    void conversionsRoundToNearestEven() {
        float[] x = {0f, 1f, -2.5f, 1.00390625f /* tie in bf16 */, 1.01171875f, 3.14159265f, 65504f, 1e-8f, -1e5f};
        for (Precision p : new Precision[] {Precision.BF16, Precision.FP16}) {
            long d = dev.uploadAs(x, p);
            assertArrayEquals(Device.round(x, p), dev.downloadAs(d, x.length, p), p.name());
        }
    }
}
