package dev.llmc4j.tutorials.step12;

/**
 * Step 12: trading compute for memory. A stack of L residual MLP layers, x_{l+1} = x_l + W2_l · gelu(W1_l · x_l),
 * trained the usual way needs every layer's h = W1·x and a = gelu(h) kept from the forward until the backward
 * reaches that layer. Three policies:
 *
 * <pre>
 *   STORE_ALL  keep x, h and a of every layer                       llm.c -r 0 (./llmc train -r 0)
 *   RECOMPUTE_GELU  keep x and h; the backward recomputes a = gelu(h)
 *                   into ONE scratch buffer shared by all layers    llm.c -r 1, the default of llm.c and of ./llmc
 *   CHECKPOINT keep only each layer's input x; the backward reruns the layer's forward from x before its backward:
 *              one extra forward, and only one layer's h and a alive at a time   "activation checkpointing"
 * </pre>
 * Recomputing gives back the same numbers (the same arithmetic on the same inputs), so the gradients are
 * identical bit for bit; only the memory and the time change. The backward also reuses its gradient buffers:
 * da and dh are allocated once and overwritten by every layer instead of one pair per layer.
 */
public final class CheckpointedMlpStack {

    public enum Policy {
        STORE_ALL,
        RECOMPUTE_GELU,
        CHECKPOINT
    }

    private final int L, N, C, H; // layers, rows, channels, hidden width
    private final double[][] w1, w2; // per layer: (H, C) and (C, H)
    private long floatsKept; // activation floats alive between the forward and the backward, at most
    private long gradientFloats; // activation-gradient floats allocated by the backward

    public CheckpointedMlpStack(double[][] w1, double[][] w2, int N, int C, int H) {
        this.L = w1.length;
        this.N = N;
        this.C = C;
        this.H = H;
        this.w1 = w1;
        this.w2 = w2;
    }

    /** The gradients of loss = Σ out · dout by every weight: [layer][0] for W1, [layer][1] for W2. */
    public record Gradients(double[][][] weights, double[] dx) {}

    // tag::train[]
    public Gradients forwardBackward(double[] x0, double[] dout, Policy policy) {
        floatsKept = 0;
        gradientFloats = 0;
        // ---- forward: keep what the policy says ----
        double[][] xs = new double[L + 1][], hs = new double[L][], as = new double[L][];
        xs[0] = x0;
        for (int l = 0; l < L; l++) {
            double[] h = matmul(xs[l], w1[l], N, C, H);
            double[] a = gelu(h);
            xs[l + 1] = add(xs[l], matmul(a, w2[l], N, H, C));
            if (policy != Policy.CHECKPOINT) hs[l] = keep(h); // h is needed by the GELU backward
            if (policy == Policy.STORE_ALL) as[l] = keep(a); // a is needed by W2's backward
            keep(xs[l]); // every policy keeps the layer inputs
        }
        double[] scratchA = policy == Policy.STORE_ALL ? null : keep(new double[N * H]); // one layer's a, reused
        double[] scratchH = policy == Policy.CHECKPOINT ? keep(new double[N * H]) : null; // one layer's h, reused

        // ---- backward: recompute what was dropped, then the usual backward ----
        double[] dx = dout.clone();
        double[] da = gradientBuffer(N * H), dh = gradientBuffer(N * H); // reused by every layer
        var grads = new double[L][2][];
        for (int l = L - 1; l >= 0; l--) {
            double[] h = hs[l], a = as[l];
            if (policy == Policy.CHECKPOINT) { // rerun this layer's forward from x_l
                matmulInto(scratchH, xs[l], w1[l], N, C, H);
                h = scratchH;
            }
            if (a == null) { // recompute gelu(h) into the shared buffer
                geluInto(scratchA, h);
                a = scratchA;
            }
            // x_{l+1} = x_l + a·W2ᵀ: dx passes through to x_l unchanged and also flows into the MLP
            java.util.Arrays.fill(da, 0);
            grads[l][1] = new double[C * H];
            matmulBackward(da, grads[l][1], dx, a, w2[l], N, H, C);
            geluBackwardInto(dh, h, da);
            grads[l][0] = new double[H * C];
            double[] dxl = dx.clone(); // the residual path
            matmulBackward(dxl, grads[l][0], dh, xs[l], w1[l], N, C, H);
            dx = dxl;
        }
        return new Gradients(grads, dx);
    }
    // end::train[]

    /** Activation floats the forward left for the backward, at the peak. */
    public long floatsKept() {
        return floatsKept;
    }

    /** Activation-gradient floats the backward allocated (excluding dx, which every policy needs). */
    public long gradientFloats() {
        return gradientFloats;
    }

    private double[] keep(double[] tensor) {
        floatsKept += tensor.length;
        return tensor;
    }

    private double[] gradientBuffer(int n) {
        gradientFloats += n;
        return new double[n];
    }

    // ---- the layers (steps 4 and 6), without biases ----

    static double[] matmul(double[] x, double[] w, int N, int C, int OC) {
        var out = new double[N * OC];
        matmulInto(out, x, w, N, C, OC);
        return out;
    }

    static void matmulInto(double[] out, double[] x, double[] w, int N, int C, int OC) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double sum = 0;
                for (int i = 0; i < C; i++) sum += x[n * C + i] * w[o * C + i];
                out[n * OC + o] = sum;
            }
    }

    static void matmulBackward(double[] dx, double[] dw, double[] dout, double[] x, double[] w, int N, int C, int OC) {
        for (int n = 0; n < N; n++)
            for (int o = 0; o < OC; o++) {
                double d = dout[n * OC + o];
                for (int i = 0; i < C; i++) {
                    dx[n * C + i] += d * w[o * C + i];
                    dw[o * C + i] += d * x[n * C + i];
                }
            }
    }

    static double[] add(double[] a, double[] b) {
        var out = new double[a.length];
        for (int i = 0; i < a.length; i++) out[i] = a[i] + b[i];
        return out;
    }

    static final double S = Math.sqrt(2 / Math.PI);

    static double[] gelu(double[] x) {
        var out = new double[x.length];
        geluInto(out, x);
        return out;
    }

    static void geluInto(double[] out, double[] x) {
        for (int i = 0; i < x.length; i++)
            out[i] = 0.5 * x[i] * (1 + Math.tanh(S * (x[i] + 0.044715 * x[i] * x[i] * x[i])));
    }

    static void geluBackwardInto(double[] dx, double[] x, double[] dout) {
        for (int i = 0; i < x.length; i++) {
            double tanh = Math.tanh(S * (x[i] + 0.044715 * x[i] * x[i] * x[i]));
            dx[i] = (0.5 * (1 + tanh) + 0.5 * x[i] * (1 - tanh * tanh) * S * (1 + 3 * 0.044715 * x[i] * x[i]))
                    * dout[i];
        }
    }
}
