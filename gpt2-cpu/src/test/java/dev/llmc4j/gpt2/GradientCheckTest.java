package dev.llmc4j.gpt2;

import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.CausalSelfAttention;
import dev.llmc4j.cpu.Matmul;
import dev.llmc4j.cpu.Residual;
import dev.llmc4j.cpu.SoftmaxCrossEntropy;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.Random;
import java.util.function.Function;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.Test;

/**
 * PyTorch-style gradcheck for every layer: each layer's float backward against central finite differences of a
 * double-precision forward written here, on small random inputs. The scalar being differentiated is
 * loss = sum(out * r) for a fixed random r, so dout = r.
 */
class GradientCheckTest {
    private static final Arena ARENA = Arena.ofShared();
    private static final Random RANDOM = new Random(1234);
    private static final double STEP = 1e-5;
    private static final double TOLERANCE = 1e-3; // relative error of float analytic vs double numeric gradient

    @AfterAll
    static void close() {
        ARENA.close();
    }

    static double[] random(int n) {
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = RANDOM.nextGaussian();
        return values;
    }

    static MemorySegment floats(double[] values) {
        var segment = ARENA.allocate((long) Math.max(1, values.length) * Float.BYTES, 64);
        for (int i = 0; i < values.length; i++) segment.setAtIndex(ValueLayout.JAVA_FLOAT, i, (float) values[i]);
        return segment;
    }

    static MemorySegment zeros(int n) {
        return ARENA.allocate((long) Math.max(1, n) * Float.BYTES, 64);
    }

    static double[] doubles(MemorySegment segment, int n) {
        var values = new double[n];
        for (int i = 0; i < n; i++) values[i] = segment.getAtIndex(ValueLayout.JAVA_FLOAT, i);
        return values;
    }

    static double dot(double[] a, double[] b) {
        double sum = 0;
        for (int i = 0; i < a.length; i++) sum += a[i] * b[i];
        return sum;
    }

    /** Central differences of loss(x) = f(x) · r with respect to every element of x (x is restored after). */
    static double[] numericGradient(double[] x, Function<double[], double[]> forward, double[] r) {
        var gradient = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            double saved = x[i];
            x[i] = saved + STEP;
            double plus = dot(forward.apply(x), r);
            x[i] = saved - STEP;
            double minus = dot(forward.apply(x), r);
            x[i] = saved;
            gradient[i] = (plus - minus) / (2 * STEP);
        }
        return gradient;
    }

    static void assertClose(String what, double[] numeric, double[] analytic) {
        double diff = 0, norm = 0;
        for (int i = 0; i < numeric.length; i++) {
            diff += (numeric[i] - analytic[i]) * (numeric[i] - analytic[i]);
            norm += numeric[i] * numeric[i];
        }
        double relative = Math.sqrt(diff / Math.max(norm, 1e-30));
        System.out.printf("gradcheck %-28s relative error %.2e%n", what, relative);
        assertTrue(relative < TOLERANCE, what + ": relative error " + relative);
    }

    // ---- double-precision forwards, the definitions the float kernels must match ----

    static double[] layernorm(double[] x, double[] w, double[] b, int rows, int C) {
        var out = new double[rows * C];
        for (int r = 0; r < rows; r++) {
            double mean = 0, variance = 0;
            for (int i = 0; i < C; i++) mean += x[r * C + i] / C;
            for (int i = 0; i < C; i++) variance += (x[r * C + i] - mean) * (x[r * C + i] - mean) / C;
            double rstd = 1 / Math.sqrt(variance + 1e-5);
            for (int i = 0; i < C; i++) out[r * C + i] = (x[r * C + i] - mean) * rstd * w[i] + b[i];
        }
        return out;
    }

    static double[] matmul(double[] x, double[] w, double[] bias, int rows, int C, int OC) {
        var out = new double[rows * OC];
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < OC; o++) {
                double sum = bias == null ? 0 : bias[o];
                for (int i = 0; i < C; i++) sum += x[r * C + i] * w[o * C + i];
                out[r * OC + o] = sum;
            }
        return out;
    }

    static double[] attention(double[] qkv, int B, int T, int C, int NH) {
        int hs = C / NH;
        var out = new double[B * T * C];
        for (int b = 0; b < B; b++)
            for (int h = 0; h < NH; h++)
                for (int t = 0; t < T; t++) {
                    var scores = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY, sum = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        double s = 0;
                        for (int i = 0; i < hs; i++)
                            s += qkv[(b * T + t) * 3 * C + h * hs + i] * qkv[(b * T + t2) * 3 * C + C + h * hs + i];
                        scores[t2] = s / Math.sqrt(hs);
                        max = Math.max(max, scores[t2]);
                    }
                    for (int t2 = 0; t2 <= t; t2++) sum += scores[t2] = Math.exp(scores[t2] - max);
                    for (int t2 = 0; t2 <= t; t2++)
                        for (int i = 0; i < hs; i++)
                            out[(b * T + t) * C + h * hs + i] +=
                                    scores[t2] / sum * qkv[(b * T + t2) * 3 * C + 2 * C + h * hs + i];
                }
        return out;
    }

    static double[] gelu(double[] x) {
        var out = new double[x.length];
        for (int i = 0; i < x.length; i++)
            out[i] = 0.5 * x[i] * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
        return out;
    }

    /** Per-row cross-entropy of softmax over the first V of Vp logits. */
    static double[] crossEntropy(double[] logits, int[] targets, int rows, int V, int Vp) {
        var losses = new double[rows];
        for (int r = 0; r < rows; r++) {
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (int i = 0; i < V; i++) max = Math.max(max, logits[r * Vp + i]);
            for (int i = 0; i < V; i++) sum += Math.exp(logits[r * Vp + i] - max);
            losses[r] = -(logits[r * Vp + targets[r]] - max - Math.log(sum));
        }
        return losses;
    }

    // ---- the checks ----

    @Test
    void encoder() {
        int B = 2, T = 3, C = 5, V = 7;
        int[] tokens = {1, 4, 4, 0, 6, 1};
        double[] wte = random(V * C), wpe = random(T * C), r = random(B * T * C);
        Function<double[], double[]> byWte = w -> {
            var out = new double[B * T * C];
            for (int bt = 0; bt < B * T; bt++)
                for (int i = 0; i < C; i++) out[bt * C + i] = w[tokens[bt] * C + i] + wpe[(bt % T) * C + i];
            return out;
        };
        var dwte = zeros(V * C);
        var dwpe = zeros(T * C);
        GPT2.encoderBackward(dwte, dwpe, floats(r), tokens, B, T, C);
        assertClose("encoder dwte", numericGradient(wte, byWte, r), doubles(dwte, V * C));
    }

    @Test
    void layernorm() {
        int B = 2, T = 3, C = 11, rows = B * T;
        double[] x = random(rows * C), w = random(C), b = random(C), r = random(rows * C);
        var out = zeros(rows * C);
        var mean = zeros(rows);
        var rstd = zeros(rows);
        var xs = floats(x);
        var ws = floats(w);
        GPT2.layernormForward(out, mean, rstd, xs, ws, floats(b), B, T, C);
        var dx = zeros(rows * C);
        var dw = zeros(C);
        var db = zeros(C);
        GPT2.layernormBackward(dx, dw, db, floats(r), xs, ws, mean, rstd, B, T, C);
        assertClose("layernorm dinp", numericGradient(x, v -> layernorm(v, w, b, rows, C), r), doubles(dx, rows * C));
        assertClose("layernorm dweight", numericGradient(w, v -> layernorm(x, v, b, rows, C), r), doubles(dw, C));
        assertClose("layernorm dbias", numericGradient(b, v -> layernorm(x, w, v, rows, C), r), doubles(db, C));
    }

    @Test
    void matmulBothKernels() {
        int rows = 5, C = 19, OC = 7; // ragged: not multiples of the vector width
        double[] x = random(rows * C), w = random(OC * C), bias = random(OC), r = random(rows * OC);
        for (var kernels : new Matmul[] {Matmul.BASELINE, Matmul.VECTOR}) {
            var dx = zeros(rows * C);
            var dw = zeros(OC * C);
            var db = zeros(OC);
            kernels.backward(dx, dw, db, floats(r), floats(x), floats(w), rows, C, OC);
            String name = kernels == Matmul.BASELINE ? "baseline" : "vector";
            assertClose(
                    "matmul " + name + " dinp",
                    numericGradient(x, v -> matmul(v, w, bias, rows, C, OC), r),
                    doubles(dx, rows * C));
            assertClose(
                    "matmul " + name + " dweight",
                    numericGradient(w, v -> matmul(x, v, bias, rows, C, OC), r),
                    doubles(dw, OC * C));
            assertClose(
                    "matmul " + name + " dbias",
                    numericGradient(bias, v -> matmul(x, w, v, rows, C, OC), r),
                    doubles(db, OC));
        }
    }

    @Test
    void attention() {
        int B = 2, T = 4, C = 6, NH = 2;
        double[] qkv = random(B * T * 3 * C), r = random(B * T * C);
        var inp = floats(qkv);
        var out = zeros(B * T * C);
        var preatt = zeros(B * NH * T * T);
        var att = zeros(B * NH * T * T);
        CausalSelfAttention.forward(out, preatt, att, inp, B, T, C, NH);
        var dinp = zeros(B * T * 3 * C);
        CausalSelfAttention.backward(
                dinp, zeros(B * NH * T * T), zeros(B * NH * T * T), floats(r), inp, att, B, T, C, NH);
        assertClose(
                "attention dinp",
                numericGradient(qkv, v -> attention(v, B, T, C, NH), r),
                doubles(dinp, B * T * 3 * C));
    }

    @Test
    void gelu() {
        int n = 37;
        double[] x = random(n), r = random(n);
        var dx = zeros(n);
        GPT2.geluBackward(dx, floats(x), floats(r), n);
        assertClose("gelu dinp", numericGradient(x, GradientCheckTest::gelu, r), doubles(dx, n));
    }

    @Test
    void residual() {
        int n = 13;
        double[] a = random(n), b = random(n), r = random(n);
        var da = zeros(n);
        var db = zeros(n);
        Residual.backward(da, db, floats(r), n);
        Function<double[], double[]> byA = v -> {
            var out = new double[n];
            for (int i = 0; i < n; i++) out[i] = v[i] + b[i];
            return out;
        };
        Function<double[], double[]> byB = v -> {
            var out = new double[n];
            for (int i = 0; i < n; i++) out[i] = a[i] + v[i];
            return out;
        };
        assertClose("residual da", numericGradient(a, byA, r), doubles(da, n));
        assertClose("residual db", numericGradient(b, byB, r), doubles(db, n));
    }

    @Test
    void softmaxCrossEntropy() {
        int rows = 3, V = 9, Vp = 16;
        int[] targets = {2, 8, 0};
        double[] logits = random(rows * Vp), r = random(rows);
        var logitSegment = floats(logits);
        var probs = zeros(rows * Vp);
        SoftmaxCrossEntropy.softmaxForward(probs, logitSegment, rows, V, Vp);
        var dlogits = zeros(rows * Vp);
        SoftmaxCrossEntropy.crossentropySoftmaxBackward(dlogits, floats(r), probs, targets, rows, V, Vp);
        var numeric = numericGradient(logits, v -> crossEntropy(v, targets, rows, V, Vp), r);
        assertClose("softmax+crossentropy dlogits", numeric, doubles(dlogits, rows * Vp));
    }
}
