package dev.llmc4j.llama3;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.layer;
import static dev.llmc4j.cpu.Floats.set;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.cpu.AdamWState;
import dev.llmc4j.cpu.CausalSelfAttention;
import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.DecodeAttention;
import dev.llmc4j.cpu.Floats;
import dev.llmc4j.cpu.MatVec;
import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.cpu.MatVec.Weights;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.random.MersenneTwister;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.train.CpuTrainableModel;
import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.MemoryEstimate;
import dev.llmc4j.train.TokenGenerator;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.util.LlmcException;
import dev.llmc4j.util.OffHeap;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.IntConsumer;

/**
 * Llama 3 in one file: forward, backward, AdamW and KV-cache inference, in the style of GPT2.java.
 *
 * <p>What differs from GPT-2, layer by layer: no position embedding (positions enter through RoPE, which rotates
 * interleaved pairs of every query and key head by position-dependent angles); RMSNorm instead of LayerNorm (no
 * mean, no bias); grouped-query attention (NKV key/value heads, each shared by NH/NKV query heads); a SwiGLU MLP
 * (silu(gate) * up, then down) instead of GELU; no biases at all; an lm_head separate from the embedding.
 * What both models share lives in {@code dev.llmc4j.cpu} (common): the matmul, {@link CausalSelfAttention} (with
 * GQA), residual, softmax and cross-entropy, {@link AdamW} and the thread pool {@link Parallel}. Which kernels run
 * is chosen when the model is built, a {@link Llama3Kernels} set ({@link CpuKernels} plus this file's layers):
 * {@link Llama3Kernels#BASELINE}, the plain loops, or {@link Llama3Kernels#VECTORIZED} (the default), the Vector
 * API versions of the same layers ({@link Llama3VectorizedKernels}). The passes call every
 * layer through the set: {@code k.rmsnormForward} is the {@link #rmsnormForward} below, in either set.
 *
 * <p>Shapes use llm.c's letters: B batch, T sequence length, C channels, NH query heads, NKV key/value heads,
 * hd = C/NH head size, H the SwiGLU hidden size, V vocabulary, L layers. Rows of the fused qkv are
 * [Q (NH*hd) | K (NKV*hd) | V (NKV*hd)]. Parameters and gradients use the 16-slot layout of llm.c's llama3 branch
 * ({@link Llama3Config#PARAMETER_NAMES}; the seven bias slots stay zero). Every backward ACCUMULATES (+=).
 *
 * <p>As a {@link TrainableModel} it trains with the same {@code dev.llmc4j.train.Trainer} as GPT-2 (schedules,
 * validation, sampling with the KV cache, checkpoints and exact resume).
 */
public final class Llama3 implements CpuTrainableModel, Inspectable {

    // ------------------------------------------------------------------------------------------------------------
    // Token embedding (no position embedding: RoPE carries the positions).

    /** out (B*T, C) = wte[token]. */
    static void embeddingForward(MemorySegment out, int[] tokens, MemorySegment wte, long rows, int C) {
        Parallel.forRange(rows, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                MemorySegment.copy(
                        wte,
                        (long) tokens[(int) bt] * C * Float.BYTES,
                        out,
                        bt * C * Float.BYTES,
                        (long) C * Float.BYTES);
            }
        });
    }

    /** dwte[token] += dout. Serial: two positions can hold the same token. */
    static void embeddingBackward(MemorySegment dwte, MemorySegment dout, int[] tokens, long rows, int C) {
        for (long bt = 0; bt < rows; bt++) {
            long token = tokens[(int) bt];
            for (int i = 0; i < C; i++) add(dwte, token * C + i, get(dout, bt * C + i));
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // RMSNorm: scale each position's C channels to unit root-mean-square, then by a learned weight. No mean, no bias.

    /** out (rows, C) = inp * rstd * weight with rstd = 1 / sqrt(mean(inp^2) + eps); caches rstd (rows). */
    static void rmsnormForward(
            MemorySegment out,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            long rows,
            int C,
            float eps) {
        Parallel.forRange(rows, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * C;
                double sumOfSquares = 0; // in double: the one reduction here, and torch sums it pairwise
                for (int i = 0; i < C; i++) {
                    float x = get(inp, row + i);
                    sumOfSquares += x * x;
                }
                float s = (float) (1.0 / Math.sqrt((float) (sumOfSquares / C) + eps));
                for (int i = 0; i < C; i++) set(out, row + i, get(inp, row + i) * s * get(weight, i));
                if (rstd != null) set(rstd, bt, s);
            }
        });
    }

    /**
     * With n = inp * rstd and g = weight * dout: dweight += n * dout and dinp += rstd * (g - n * mean(g * n))
     * (the mean removes the direction along inp, whose length the normalisation fixed).
     */
    static void rmsnormBackward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment rstd,
            long rows,
            int C) {
        // dinp rows are independent; dweight sums over all rows, so each chunk keeps its own partial sums
        int chunks = Parallel.threads();
        float[][] partialDweight = new float[chunks][C];
        Parallel.forRange(chunks, (firstChunk, endChunk) -> {
            for (long chunk = firstChunk; chunk < endChunk; chunk++) {
                float[] dw = partialDweight[(int) chunk];
                for (long bt = rows * chunk / chunks; bt < rows * (chunk + 1) / chunks; bt++) {
                    long row = bt * C;
                    float s = get(rstd, bt);
                    float gnMean = 0;
                    for (int i = 0; i < C; i++) gnMean += get(weight, i) * get(dout, row + i) * get(inp, row + i) * s;
                    gnMean /= C;
                    for (int i = 0; i < C; i++) {
                        float n = get(inp, row + i) * s;
                        float d = get(dout, row + i);
                        dw[i] += n * d;
                        add(dinp, row + i, s * (get(weight, i) * d - n * gnMean));
                    }
                }
            }
        });
        for (int chunk = 0; chunk < chunks; chunk++) { // fixed order: the same sums for the same thread count
            for (int i = 0; i < C; i++) add(dweight, i, partialDweight[chunk][i]);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // RoPE: rotate each interleaved pair (2i, 2i+1) of every query and key head by the angle p * f_i, where p is the
    // position. As complex numbers: (x[2i] + j x[2i+1]) * e^(j p f_i). Values are not rotated.

    /** Frequencies f_i = theta^(-2i/hd), i < hd/2, with Llama 3.1's scaling of the long wavelengths. */
    public static double[] ropeFrequencies(Llama3Config config) {
        int hd = config.headSize();
        double[] freqs = new double[hd / 2];
        for (int i = 0; i < hd / 2; i++) {
            double f = 1.0 / Math.pow(config.ropeTheta(), 2.0 * i / hd);
            if (config.useScaledRope()) {
                // wavelengths shorter than 8192/4 stay, longer than 8192/1 are stretched 8x, in between blend smoothly
                double scaleFactor = 8, lowFreqFactor = 1, highFreqFactor = 4, oldContext = 8192;
                double wavelength = 2 * Math.PI / f;
                if (wavelength > oldContext / lowFreqFactor) {
                    f = f / scaleFactor;
                } else if (wavelength >= oldContext / highFreqFactor) {
                    double smooth = (oldContext / wavelength - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
                    f = (1 - smooth) * f / scaleFactor + smooth * f;
                }
            }
            freqs[i] = f;
        }
        return freqs;
    }

    /** cos and sin of p * f_i for p < maxT, as (maxT, hd/2) tables; angles in double, rounded once to float. */
    public static float[][] ropeTables(Llama3Config config, int maxT) {
        double[] freqs = ropeFrequencies(config);
        int half = freqs.length;
        float[] cos = new float[maxT * half], sin = new float[maxT * half];
        for (int p = 0; p < maxT; p++) {
            for (int i = 0; i < half; i++) {
                double angle = p * freqs[i];
                cos[p * half + i] = (float) Math.cos(angle);
                sin[p * half + i] = (float) Math.sin(angle);
            }
        }
        return new float[][] {cos, sin};
    }

    /**
     * Rotates in place the NH query heads and NKV key heads at the start of each qkv row (rows, qkvRows); row r
     * sits at position startPosition + r % T. With {@code inverse} it rotates by the negative angle: that is the
     * backward (a rotation's transpose is its inverse), applied to the gradient.
     */
    static void rope(
            MemorySegment qkv,
            float[] cos,
            float[] sin,
            long rows,
            int T,
            int startPosition,
            int rotatedHeads,
            int hd,
            int qkvRows,
            boolean inverse) {
        int half = hd / 2;
        Parallel.forRange(rows, (start, end) -> {
            for (long r = start; r < end; r++) {
                int position = startPosition + (int) (r % T);
                for (int h = 0; h < rotatedHeads; h++) {
                    long head = r * qkvRows + (long) h * hd;
                    for (int i = 0; i < half; i++) {
                        float c = cos[position * half + i];
                        float s = inverse ? -sin[position * half + i] : sin[position * half + i];
                        float x0 = get(qkv, head + 2 * i), x1 = get(qkv, head + 2 * i + 1);
                        set(qkv, head + 2 * i, x0 * c - x1 * s);
                        set(qkv, head + 2 * i + 1, x0 * s + x1 * c);
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // SwiGLU: fch rows are [up (H) | gate (H)] (fcw stacks c_fc then c_fc2); out = silu(gate) * up.

    static float sigmoid(float x) {
        return 1.0f / (1.0f + (float) Math.exp(-x));
    }

    /** out (rows, H) = silu(gate) * up, silu(g) = g * sigmoid(g). */
    static void swigluForward(MemorySegment out, MemorySegment fch, long rows, int H) {
        Parallel.forRange(rows, (start, end) -> {
            for (long r = start; r < end; r++) {
                long up = r * 2 * H, gate = up + H;
                for (int i = 0; i < H; i++) {
                    float g = get(fch, gate + i);
                    set(out, r * H + i, g * sigmoid(g) * get(fch, up + i));
                }
            }
        });
    }

    /** dup += dout * silu(gate); dgate += dout * up * silu'(gate), silu'(g) = sigmoid(g) (1 + g (1 - sigmoid(g))). */
    static void swigluBackward(MemorySegment dfch, MemorySegment fch, MemorySegment dout, long rows, int H) {
        Parallel.forRange(rows, (start, end) -> {
            for (long r = start; r < end; r++) {
                long up = r * 2 * H, gate = up + H;
                for (int i = 0; i < H; i++) {
                    float g = get(fch, gate + i), u = get(fch, up + i), d = get(dout, r * H + i);
                    float sig = sigmoid(g);
                    add(dfch, up + i, d * g * sig);
                    add(dfch, gate + i, d * u * sig * (1 + g * (1 - sig)));
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model's memory: the 16 parameter slots in one buffer and the activations in another; gradients mirror both.

    /** The 16 parameter slots of llm.c's llama3 branch; per-layer tensors are stacked layer-major. */
    record ParameterTensors(
            MemorySegment wte, // (V, C) token embeddings
            MemorySegment lmHead, // (V, C) output projection (the slot GPT-2 uses for wpe)
            MemorySegment ln1w, // (L, C) RMSNorm before attention
            MemorySegment ln1b, // (L, C) unused, zero
            MemorySegment qkvw, // (L, (NH + 2 NKV) hd, C)
            MemorySegment qkvb, // unused, zero
            MemorySegment attprojw, // (L, C, C)
            MemorySegment attprojb, // unused, zero
            MemorySegment ln2w, // (L, C) RMSNorm before the MLP
            MemorySegment ln2b, // unused, zero
            MemorySegment fcw, // (L, 2H, C): c_fc ("up") then c_fc2 ("gate") for each layer
            MemorySegment fcb, // unused, zero
            MemorySegment fcprojw, // (L, C, H) "down"
            MemorySegment fcprojb, // unused, zero
            MemorySegment lnfw, // (C) final RMSNorm
            MemorySegment lnfb) { // unused, zero

        static ParameterTensors slice(Llama3Config config, MemorySegment memory) {
            var t = Floats.sliceAll(memory, config.parameterSizes());
            return new ParameterTensors(
                    t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14],
                    t[15]);
        }

        /**
         * The tensors whose gradient the backward does not write with a matmul first (the embedding and the norms,
         * which it adds to, and the unused slots, which stay zero).
         */
        MemorySegment[] addedToOnly() {
            return new MemorySegment[] {wte, ln1w, ln1b, qkvb, attprojb, ln2w, ln2b, fcb, fcprojb, lnfw, lnfb};
        }
    }

    /** The activations of one forward pass at batch B and length T. */
    record Activations(
            MemorySegment encoded, // (B, T, C) token embeddings, the residual stream entering layer 0
            MemorySegment ln1, // (L, B, T, C)
            MemorySegment ln1Rstd, // (L, B, T)
            MemorySegment qkv, // (L, B, T, (NH + 2 NKV) hd), q and k after RoPE
            MemorySegment atty, // (L, B, T, C)
            MemorySegment preatt, // (L, B, NH, T, T)
            MemorySegment att, // (L, B, NH, T, T)
            MemorySegment attproj, // (L, B, T, C)
            MemorySegment residual2, // (L, B, T, C)
            MemorySegment ln2, // (L, B, T, C)
            MemorySegment ln2Rstd, // (L, B, T)
            MemorySegment fch, // (L, B, T, 2H) [up | gate]
            MemorySegment fchSwiglu, // (L, B, T, H)
            MemorySegment fcproj, // (L, B, T, C)
            MemorySegment residual3, // (L, B, T, C)
            MemorySegment lnf, // (B, T, C)
            MemorySegment lnfRstd, // (B, T)
            MemorySegment logits, // (B, T, V)
            MemorySegment maxAndSum, // (B, T, 2) each row's max logit and Σ exp(logit - max): the softmax, unwritten
            MemorySegment losses) { // (B, T)

        static long[] sizes(Llama3Config config, int B, int T) {
            long L = config.numLayers(), C = config.channels(), NH = config.numHeads(), V = config.vocabSize();
            long H = config.ffnHidden(), qkv = config.qkvRows();
            long BT = (long) B * T;
            return new long[] {
                BT * C,
                L * BT * C,
                L * BT,
                L * BT * qkv,
                L * BT * C,
                L * B * NH * T * T,
                L * B * NH * T * T,
                L * BT * C,
                L * BT * C,
                L * BT * C,
                L * BT,
                L * BT * 2 * H,
                L * BT * H,
                L * BT * C,
                L * BT * C,
                BT * C,
                BT,
                BT * V,
                BT * 2,
                BT
            };
        }

        static long count(Llama3Config config, int B, int T) {
            return Arrays.stream(sizes(config, B, T)).sum();
        }

        static Activations slice(Llama3Config config, int B, int T, MemorySegment memory) {
            var a = Floats.sliceAll(memory, sizes(config, B, T));
            return new Activations(
                    a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14],
                    a[15], a[16], a[17], a[18], a[19]);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model.

    public final Llama3Config config;
    private final Llama3Kernels kernels;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment parameterMemory;
    private MemorySegment gradientMemory; // allocated on the first backward: inference never needs it
    private boolean gradientsCleared; // zeroGrad was called and nothing has written or read the gradients since
    final ParameterTensors params;
    ParameterTensors grads;
    private final float[] ropeCos;
    private final float[] ropeSin;
    private final AdamWState optimizer; // AdamW's moments: of all parameters, or of this process's ZeRO-1 pieces

    // training activations, allocated on the first forward and grown when a larger batch arrives
    private long activationCapacity;
    private MemorySegment activationMemory;
    private MemorySegment activationGradientMemory;
    Activations acts;
    Activations gradActs;
    private int batchSize;
    private int seqLen;
    private int[] inputs;
    private int[] targets;
    private float meanLoss = -1;

    /** A model with all parameters zero; see {@link #randomInit} and {@link #fromCheckpoint}. */
    public Llama3(Llama3Config config) {
        this(config, Llama3Kernels.VECTORIZED);
    }

    /** A model with all parameters zero that runs the given kernels. */
    public Llama3(Llama3Config config, Llama3Kernels kernels) {
        this.config = config;
        this.kernels = kernels;
        long bytes = config.numParameters() * Float.BYTES;
        this.parameterMemory = allocate(bytes, "parameters");
        this.params = ParameterTensors.slice(config, parameterMemory);
        this.optimizer = new AdamWState(config.numParameters(), kernels, arena, config.describe());
        float[][] tables = ropeTables(config, config.maxSeqLen());
        this.ropeCos = tables[0];
        this.ropeSin = tables[1];
    }

    /**
     * The reference's random init (reference/llama3_reference.py): one torch-identical generator seeded with
     * {@code seed}, one normal draw per tensor slice in this order: wte (0.02), lm_head (0.02), then per layer
     * qkvw (0.02), attprojw (0.02/sqrt(2L)), c_fc (0.02), c_fc2 (0.02), fcprojw (0.02/sqrt(2L)); norms are 1.
     */
    public static Llama3 randomInit(Llama3Config config, long seed) {
        return randomInit(config, seed, Llama3Kernels.VECTORIZED);
    }

    /** The same, with the given kernels. */
    public static Llama3 randomInit(Llama3Config config, long seed, Llama3Kernels kernels) {
        var model = new Llama3(config, kernels);
        var rng = new MersenneTwister(seed);
        var p = model.params;
        int L = config.numLayers();
        long C = config.channels(), V = config.vocabSize(), H = config.ffnHidden(), qkv = config.qkvRows();
        float residualStd = (float) (0.02 / Math.sqrt(2.0 * L));
        normal(rng, p.wte, 0, V * C, 0.02f);
        normal(rng, p.lmHead, 0, V * C, 0.02f);
        for (int l = 0; l < L; l++) {
            normal(rng, p.qkvw, l * qkv * C, qkv * C, 0.02f);
            normal(rng, p.attprojw, l * C * C, C * C, residualStd);
            normal(rng, p.fcw, l * 2 * H * C, H * C, 0.02f); // c_fc
            normal(rng, p.fcw, l * 2 * H * C + H * C, H * C, 0.02f); // c_fc2
            normal(rng, p.fcprojw, l * C * H, C * H, residualStd);
        }
        for (var norm : new MemorySegment[] {p.ln1w, p.ln2w, p.lnfw}) {
            for (long i = 0; i < norm.byteSize() / Float.BYTES; i++) set(norm, i, 1.0f);
        }
        return model;
    }

    private static void normal(MersenneTwister rng, MemorySegment tensor, long offset, long count, float std) {
        if (count > Integer.MAX_VALUE - 8) throw new LlmcException("tensor slice too large for one draw: " + count);
        float[] values = new float[(int) count];
        rng.normal(values, 0f, std);
        MemorySegment.copy(MemorySegment.ofArray(values), 0, tensor, offset * Float.BYTES, count * Float.BYTES);
    }

    /**
     * What training a model of this shape holds, before it is built: parameters, gradients, AdamW's moments (a
     * 1/P shard with ZeRO-1), the activations at B, T and as many again for their gradients, the RoPE tables, and,
     * when the run samples, a generation's KV cache of {@code genTokens + 1} positions.
     */
    public static MemoryEstimate.Builder memoryEstimate(
            Llama3Config config, int B, int T, int numProcesses, int zeroStage, int genTokens) {
        var estimate = MemoryEstimate.builder()
                .trainingState(config.numParameters(), numProcesses, zeroStage)
                .floats(
                        "activations and their gradients (B=%d, T=%d)".formatted(B, T),
                        2 * Activations.count(config, B, T))
                .floats("RoPE tables", (long) config.maxSeqLen() * config.headSize());
        long context = Math.min(config.maxSeqLen(), genTokens + 1L);
        if (genTokens > 0) estimate.floats("sampling KV cache", 2 * context * config.numLayers() * config.kvChannels());
        return estimate;
    }

    /** Loads a llama3-branch (or master-branch) checkpoint, fp32 or bf16. */
    public static Llama3 fromCheckpoint(Path file) {
        return fromCheckpoint(file, Llama3Kernels.VECTORIZED);
    }

    /** The same, with the given kernels. */
    public static Llama3 fromCheckpoint(Path file, Llama3Kernels kernels) {
        try (var checkpoint = Llama3Checkpoint.read(file)) {
            var model = new Llama3(checkpoint.config(), kernels);
            checkpoint.loadParameters(model.parameterMemory, 0);
            return model;
        }
    }

    /** Writes the parameters as a llama3-branch checkpoint, version 3 (fp32) or 5 (bf16). */
    public void save(Path file, int version) {
        Llama3Checkpoint.write(file, config, version, parameterMemory, 0);
    }

    // ---- TrainableModel: what the shared Trainer asks of a model ----

    /** All 16 slots, the zero bias slots included (the layout of the checkpoint and of the optimizer state). */
    @Override
    public long numParameters() {
        return config.numParameters();
    }

    @Override
    public int vocabSize() {
        return config.vocabSize();
    }

    @Override
    public int maxSeqLen() {
        return config.maxSeqLen();
    }

    /** A llama3-branch checkpoint, version 3 (fp32). */
    @Override
    public void saveCheckpoint(Path file) {
        save(file, 3);
    }

    /** Generation with a fresh KV cache per call, sized to prompt + count (at most maxSeqLen). */
    @Override
    public TokenGenerator generator() {
        return (prompt, count, sampler, onToken) -> {
            var produced = new int[count];
            var stats = generate(prompt, count, sampler, new int[0], new IntConsumer() {
                int n;

                @Override
                public void accept(int token) {
                    produced[n++] = token;
                    onToken.accept(token);
                }
            });
            return Arrays.copyOf(produced, stats.generatedTokens());
        };
    }

    /** All parameters in the 16-slot layout, numParameters floats. */
    public MemorySegment parameters() {
        return parameterMemory;
    }

    /** All parameter gradients, same layout as {@link #parameters()} (allocated, zero, on first use). */
    public MemorySegment gradients() {
        gradientBuffer();
        if (gradientsCleared) {
            Floats.zero(gradientMemory);
            gradientsCleared = false;
        }
        return gradientMemory;
    }

    /** The gradients' memory, allocated (zero) on first use, as it stands: perhaps cleared by zeroGrad only. */
    private MemorySegment gradientBuffer() {
        if (gradientMemory == null) {
            gradientMemory = allocate(config.numParameters() * Float.BYTES, "parameter gradients");
            grads = ParameterTensors.slice(config, gradientMemory);
        }
        return gradientMemory;
    }

    /** The kernels this model runs. */
    public Llama3Kernels kernels() {
        return kernels;
    }

    /** Logits (B, T, V) of the last forward. */
    public MemorySegment logits() {
        return acts.logits;
    }

    /** Mean loss of the last forward with targets, or -1 when it had none. */
    public float meanLoss() {
        return meanLoss;
    }

    @Override
    public float[] tokenLosses() {
        if (meanLoss == -1) throw new IllegalStateException("no forward with targets yet");
        return acts.losses.asSlice(0, (long) batchSize * seqLen * Float.BYTES).toArray(Floats.FLOAT);
    }

    private MemorySegment allocate(long bytes, String what) {
        return allocate(arena, bytes, what);
    }

    private MemorySegment allocate(Arena arena, long bytes, String what) {
        return OffHeap.allocate(arena, bytes, what, config.describe());
    }

    private void ensureActivations(int B, int T) {
        if (T > config.maxSeqLen())
            throw new LlmcException(
                    "sequence length " + T + " exceeds the model's context length " + config.maxSeqLen());
        long needed = Activations.count(config, B, T);
        if (needed > activationCapacity) {
            activationMemory = allocate(needed * Float.BYTES, "activations");
            activationGradientMemory = allocate(needed * Float.BYTES, "activation gradients");
            activationCapacity = needed;
        }
        if (B != batchSize || T != seqLen) {
            acts = Activations.slice(config, B, T, activationMemory);
            gradActs = Activations.slice(config, B, T, activationGradientMemory);
            batchSize = B;
            seqLen = T;
        }
    }

    /**
     * The forward pass over tokens (B,T). With targets (B,T) it also computes the mean cross-entropy loss
     * (returned; -1 without targets). Logits are in {@link #logits()}.
     */
    @Override
    public float forward(int[] inputs, int[] targets, int B, int T) {
        int V = config.vocabSize(), L = config.numLayers(), NH = config.numHeads(), NKV = config.numKvHeads();
        int C = config.channels(), H = config.ffnHidden(), hd = config.headSize(), qkvRows = config.qkvRows();
        float eps = config.normEps();
        TrainableModel.checkTokens("input", inputs, B * T, V);
        if (targets != null) TrainableModel.checkTokens("target", targets, B * T, V);
        ensureActivations(B, T);
        this.inputs = inputs.clone();
        this.targets = targets == null ? null : targets.clone();

        int BT = B * T;
        long btc = (long) BT * C, bt = BT, btqkv = (long) BT * qkvRows, bt2h = 2L * BT * H, bth = (long) BT * H;
        long attention = (long) B * NH * T * T;
        var k = kernels;
        var p = params;
        var a = acts;
        k.embeddingForward(a.encoded, inputs, p.wte, BT, C);
        for (int l = 0; l < L; l++) {
            MemorySegment residual = l == 0 ? a.encoded : layer(a.residual3, l - 1, btc);

            MemorySegment ln1 = layer(a.ln1, l, btc), qkv = layer(a.qkv, l, btqkv), atty = layer(a.atty, l, btc);
            MemorySegment attproj = layer(a.attproj, l, btc), residual2 = layer(a.residual2, l, btc);
            MemorySegment ln2 = layer(a.ln2, l, btc),
                    fch = layer(a.fch, l, bt2h),
                    fchSwiglu = layer(a.fchSwiglu, l, bth);
            MemorySegment fcproj = layer(a.fcproj, l, btc), residual3 = layer(a.residual3, l, btc);

            // attention half: x + attproj(attention(k.rope(q), k.rope(k), v)) with q, k, v from rmsnorm(x)
            k.rmsnormForward(ln1, layer(a.ln1Rstd, l, bt), residual, layer(p.ln1w, l, C), BT, C, eps);
            k.matmulForward(qkv, ln1, layer(p.qkvw, l, (long) qkvRows * C), null, BT, C, qkvRows);
            k.rope(qkv, ropeCos, ropeSin, BT, T, 0, NH + NKV, hd, qkvRows, false);
            k.attentionForward(atty, layer(a.preatt, l, attention), layer(a.att, l, attention), qkv, B, T, NH, NKV, hd);
            k.matmulForward(attproj, atty, layer(p.attprojw, l, (long) C * C), null, BT, C, C);
            k.residualForward(residual2, residual, attproj, btc);
            // MLP half: x + down(silu(gate(h)) * up(h)) with h = rmsnorm(x)
            k.rmsnormForward(ln2, layer(a.ln2Rstd, l, bt), residual2, layer(p.ln2w, l, C), BT, C, eps);
            k.matmulForward(fch, ln2, layer(p.fcw, l, 2L * H * C), null, BT, C, 2 * H);
            k.swigluForward(fchSwiglu, fch, BT, H);
            k.matmulForward(fcproj, fchSwiglu, layer(p.fcprojw, l, (long) C * H), null, BT, H, C);
            k.residualForward(residual3, residual2, fcproj, btc);
        }
        k.rmsnormForward(a.lnf, a.lnfRstd, layer(a.residual3, L - 1, btc), p.lnfw, BT, C, eps);
        k.matmulForward(a.logits, a.lnf, p.lmHead, null, BT, C, V);

        if (targets == null) {
            meanLoss = -1;
            return meanLoss;
        }
        // the loss straight from the logits: the (B, T, V) probabilities are never written, the backward recomputes
        // them from each row's max and sum
        k.softmaxCrossEntropyForward(a.losses, a.maxAndSum, a.logits, targets, BT, V, V);
        float sum = 0;
        for (int i = 0; i < BT; i++) sum += get(a.losses, i);
        meanLoss = sum / BT;
        return meanLoss;
    }

    /**
     * Sets every parameter gradient to zero (call before the first micro-batch of a step), lazily, as PyTorch's
     * {@code zero_grad(set_to_none=True)}: the next backward writes the matmul gradients instead of adding to them
     * and zeroes only the rest (as GPT-2's).
     */
    @Override
    public void zeroGrad() {
        gradientsCleared = true;
    }

    /** Backward pass of the last forward (which must have had targets); gradients are ADDED to the current ones. */
    public void backward() {
        backward(1);
    }

    /** Backward for one of {@code microSteps} accumulated micro-batches (each weighs 1/microSteps). */
    @Override
    public void backward(int microSteps) {
        if (meanLoss == -1) throw new IllegalStateException("must forward with targets before backward");
        int B = batchSize, T = seqLen, BT = B * T;
        int V = config.vocabSize(), L = config.numLayers(), NH = config.numHeads(), NKV = config.numKvHeads();
        int C = config.channels(), H = config.ffnHidden(), hd = config.headSize(), qkvRows = config.qkvRows();
        long btc = (long) BT * C, bt = BT, btqkv = (long) BT * qkvRows, bt2h = 2L * BT * H, bth = (long) BT * H;
        long attention = (long) B * NH * T * T;
        gradientBuffer();
        var k = kernels;
        var p = params;
        var g = grads;
        var a = acts;
        var d = gradActs;
        // every activation gradient starts from zero but the last three: the logits' is written (not added to) by the
        // softmax + cross-entropy backward, maxAndSum's is never used and the losses' is set below
        Floats.zeroBefore(activationGradientMemory, d.logits());
        // after zeroGrad, each matmul writes its weight's gradient and only the other tensors start from zero
        boolean accumulate = !gradientsCleared;
        if (gradientsCleared) for (var tensor : g.addedToOnly()) Floats.zero(tensor);
        gradientsCleared = false;

        float dloss = 1.0f / (BT * (float) microSteps);
        for (int i = 0; i < BT; i++) set(d.losses, i, dloss);

        k.softmaxCrossEntropyBackward(d.logits, d.losses, a.logits, a.maxAndSum, targets, BT, V, V);
        k.matmulBackward(d.lnf, g.lmHead, null, d.logits, a.lnf, p.lmHead, BT, C, V, accumulate);
        k.rmsnormBackward(
                layer(d.residual3, L - 1, btc),
                g.lnfw,
                d.lnf,
                layer(a.residual3, L - 1, btc),
                p.lnfw,
                a.lnfRstd,
                BT,
                C);

        for (int l = L - 1; l >= 0; l--) {
            MemorySegment residual = l == 0 ? a.encoded : layer(a.residual3, l - 1, btc);
            MemorySegment dresidual = l == 0 ? d.encoded : layer(d.residual3, l - 1, btc);

            // backward through the MLP half
            k.residualBackward(layer(d.residual2, l, btc), layer(d.fcproj, l, btc), layer(d.residual3, l, btc), btc);
            k.matmulBackward(
                    layer(d.fchSwiglu, l, bth),
                    layer(g.fcprojw, l, (long) C * H),
                    null,
                    layer(d.fcproj, l, btc),
                    layer(a.fchSwiglu, l, bth),
                    layer(p.fcprojw, l, (long) C * H),
                    BT,
                    H,
                    C,
                    accumulate);
            k.swigluBackward(layer(d.fch, l, bt2h), layer(a.fch, l, bt2h), layer(d.fchSwiglu, l, bth), BT, H);
            k.matmulBackward(
                    layer(d.ln2, l, btc),
                    layer(g.fcw, l, 2L * H * C),
                    null,
                    layer(d.fch, l, bt2h),
                    layer(a.ln2, l, btc),
                    layer(p.fcw, l, 2L * H * C),
                    BT,
                    C,
                    2 * H,
                    accumulate);
            k.rmsnormBackward(
                    layer(d.residual2, l, btc),
                    layer(g.ln2w, l, C),
                    layer(d.ln2, l, btc),
                    layer(a.residual2, l, btc),
                    layer(p.ln2w, l, C),
                    layer(a.ln2Rstd, l, bt),
                    BT,
                    C);

            // backward through the attention half
            k.residualBackward(dresidual, layer(d.attproj, l, btc), layer(d.residual2, l, btc), btc);
            k.matmulBackward(
                    layer(d.atty, l, btc),
                    layer(g.attprojw, l, (long) C * C),
                    null,
                    layer(d.attproj, l, btc),
                    layer(a.atty, l, btc),
                    layer(p.attprojw, l, (long) C * C),
                    BT,
                    C,
                    C,
                    accumulate);
            MemorySegment dqkv = layer(d.qkv, l, btqkv);
            k.attentionBackward(
                    dqkv,
                    layer(d.preatt, l, attention),
                    layer(d.att, l, attention),
                    layer(d.atty, l, btc),
                    layer(a.qkv, l, btqkv),
                    layer(a.att, l, attention),
                    B,
                    T,
                    NH,
                    NKV,
                    hd);
            k.rope(dqkv, ropeCos, ropeSin, BT, T, 0, NH + NKV, hd, qkvRows, true); // gradient w.r.t. q, k before RoPE
            k.matmulBackward(
                    layer(d.ln1, l, btc),
                    layer(g.qkvw, l, (long) qkvRows * C),
                    null,
                    dqkv,
                    layer(a.ln1, l, btc),
                    layer(p.qkvw, l, (long) qkvRows * C),
                    BT,
                    C,
                    qkvRows,
                    accumulate);
            k.rmsnormBackward(
                    dresidual,
                    layer(g.ln1w, l, C),
                    layer(d.ln1, l, btc),
                    residual,
                    layer(p.ln1w, l, C),
                    layer(a.ln1Rstd, l, bt),
                    BT,
                    C);
        }
        k.embeddingBackward(g.wte, d.encoded, inputs, BT, C);
    }

    // ------------------------------------------------------------------------------------------------------------
    // AdamW.

    /**
     * One AdamW step (t = 1-based step) over every real parameter this process keeps the moments of (all of them, or
     * its ZeRO-1 pieces; the zero bias slots are skipped), gradients multiplied by {@code gradScale} first (clipping
     * folds in here); weight decay on every tensor, or with {@code decayMatricesOnly} only on the 2-D ones (embeddings
     * and weight matrices, not the RMSNorm weights).
     */
    public void update(
            float learningRate,
            float beta1,
            float beta2,
            float eps,
            float weightDecay,
            boolean decayMatricesOnly,
            float gradScale,
            int t) {
        // Llama has no biases: their zero slots stay as they are
        optimizer.update(
                parameterMemory,
                gradients(),
                config.parameterSizes(),
                tensor -> !decayMatricesOnly || ParameterSlice.isMatrix(tensor),
                Llama3Config::isBiasSlot,
                new AdamW.Step(learningRate, beta1, beta2, eps, weightDecay, gradScale, t));
    }

    /** llm.c's trainer rule: weight decay on the 2-D tensors only. */
    @Override
    public void update(
            float learningRate, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {
        update(learningRate, beta1, beta2, eps, weightDecay, true, gradScale, t);
    }

    /** ZeRO-1 cuts every layer of every tensor of the 16-slot layout, as llm.c's llama3 branch does (see {@link OptimizerShard}). */
    @Override
    public List<ParameterSlice> parameterSlices() {
        return ParameterSlice.perLayer(config.parameterSizes(), config.numLayers());
    }

    /** AdamW's moments (ZeRO-1, the norms and the state file's m and v come with it: {@link CpuTrainableModel}). */
    @Override
    public AdamWState optimizerState() {
        return optimizer;
    }

    /** The CPU test rule: AdamW with decay on every parameter and no clipping. */
    public void update(float learningRate, float beta1, float beta2, float eps, float weightDecay, int t) {
        update(learningRate, beta1, beta2, eps, weightDecay, false, 1.0f, t);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inference with a KV cache: keys (after RoPE) and values of every position seen so far are kept per layer, so
    // each new token costs one row of work instead of recomputing the whole sequence. A prompt goes in as one
    // batch of rows (fast matmuls); then one token at a time, through MatVec: with one row each weight is read once
    // and used once, so a token costs the time to read the weights, in fp32 or in a bf16 copy at half the bytes.

    /**
     * The matrices one generated token reads, per layer, in one precision: views of the parameters (FP32; they
     * follow training) or a bf16 copy taken now (BF16; closing frees it).
     */
    public final class InferenceWeights implements AutoCloseable {
        private final Arena copies = Arena.ofShared();
        final Precision precision;
        final Weights[] qkvw, attprojw, fcw, fcprojw; // per layer: (qkvRows, C), (C, C), (2H, C), (C, H)
        final Weights lmHead; // (V, C)

        InferenceWeights(Precision precision) {
            int L = config.numLayers(), C = config.channels(), H = config.ffnHidden(), qkvRows = config.qkvRows();
            this.precision = precision;
            this.qkvw = new Weights[L];
            this.attprojw = new Weights[L];
            this.fcw = new Weights[L];
            this.fcprojw = new Weights[L];
            for (int l = 0; l < L; l++) {
                qkvw[l] = Weights.of(precision, copies, layer(params.qkvw, l, (long) qkvRows * C), qkvRows, C);
                attprojw[l] = Weights.of(precision, copies, layer(params.attprojw, l, (long) C * C), C, C);
                fcw[l] = Weights.of(precision, copies, layer(params.fcw, l, 2L * H * C), 2 * H, C);
                fcprojw[l] = Weights.of(precision, copies, layer(params.fcprojw, l, (long) C * H), C, H);
            }
            this.lmHead = Weights.of(precision, copies, params.lmHead, config.vocabSize(), C);
        }

        public Precision precision() {
            return precision;
        }

        /** Bytes of weights one generated token reads (the Linear layers and the lm head; the norms are tiny). */
        public long bytesPerToken() {
            long bytes = lmHead.bytes();
            for (int l = 0; l < qkvw.length; l++)
                bytes += qkvw[l].bytes() + attprojw[l].bytes() + fcw[l].bytes() + fcprojw[l].bytes();
            return bytes;
        }

        @Override
        public void close() {
            copies.close();
        }
    }

    /** The weights generation reads, in {@code precision} (a BF16 copy is taken now; close it when done). */
    public InferenceWeights inferenceWeights(Precision precision) {
        return new InferenceWeights(precision);
    }

    /**
     * One conversation's cache and scratch buffers (batch 1), up to {@code contextLength} positions. The memory is
     * the session's own: closing it frees the cache (a trainer samples many times over a model's life).
     */
    public final class Session implements AutoCloseable {
        private final Arena sessionArena = Arena.ofShared(); // shared: the thread pool reads and writes it
        private final int contextLength;
        private final InferenceWeights weights; // what one-token steps read
        private final MemorySegment keyCache; // (L, contextLength, NKV*hd)
        private final MemorySegment valueCache; // (L, contextLength, NKV*hd)
        private int position; // positions filled so far
        private int rowCapacity;
        private MemorySegment x, xb, qkv, atty, attproj, fch, fchSwiglu, fcproj, logits;

        Session(int contextLength, InferenceWeights weights) {
            if (contextLength < 1 || contextLength > config.maxSeqLen())
                throw new LlmcException(
                        "context length must be in 1.." + config.maxSeqLen() + ", found " + contextLength);
            this.contextLength = contextLength;
            this.weights = weights;
            long bytes = (long) config.numLayers() * contextLength * config.kvChannels() * Float.BYTES;
            this.keyCache = allocate(sessionArena, bytes, "key cache");
            this.valueCache = allocate(sessionArena, bytes, "value cache");
            this.logits = allocate(sessionArena, (long) config.vocabSize() * Float.BYTES, "logits");
        }

        public int position() {
            return position;
        }

        @Override
        public void close() {
            sessionArena.close();
        }

        private void ensureRows(int rows) {
            if (rows <= rowCapacity) return;
            long C = config.channels(), H = config.ffnHidden();
            x = allocate(sessionArena, rows * C * Float.BYTES, "inference activations");
            xb = allocate(sessionArena, rows * C * Float.BYTES, "inference activations");
            qkv = allocate(sessionArena, rows * (long) config.qkvRows() * Float.BYTES, "inference activations");
            atty = allocate(sessionArena, rows * C * Float.BYTES, "inference activations");
            attproj = allocate(sessionArena, rows * C * Float.BYTES, "inference activations");
            fch = allocate(sessionArena, rows * 2 * H * Float.BYTES, "inference activations");
            fchSwiglu = allocate(sessionArena, rows * H * Float.BYTES, "inference activations");
            fcproj = allocate(sessionArena, rows * C * Float.BYTES, "inference activations");
            rowCapacity = rows;
        }

        /**
         * Runs {@code tokens} at the next positions, appends their keys and values to the cache, and returns the
         * logits (V) after the last one. Several tokens (a prompt) go through the fp32 matmuls as one batch; one
         * token goes through the session's {@link InferenceWeights}.
         */
        public float[] forward(int[] tokens) {
            int n = tokens.length;
            int V = config.vocabSize(), L = config.numLayers(), NH = config.numHeads(), NKV = config.numKvHeads();
            int C = config.channels(), H = config.ffnHidden(), hd = config.headSize(), qkvRows = config.qkvRows();
            int kvC = config.kvChannels();
            float eps = config.normEps();
            if (n == 0) throw new IllegalArgumentException("no tokens");
            if (position + n > contextLength)
                throw new LlmcException("context full: " + position + " + " + n + " tokens > " + contextLength);
            TrainableModel.checkTokens("input", tokens, n, V);
            ensureRows(n);
            var k = kernels;
            var p = params;
            var w = weights;
            long nc = (long) n * C;
            k.embeddingForward(x, tokens, p.wte, n, C);
            for (int l = 0; l < L; l++) {
                k.rmsnormForward(xb, null, x, layer(p.ln1w, l, C), n, C, eps);
                linear(qkv, xb, layer(p.qkvw, l, (long) qkvRows * C), w.qkvw[l], n);
                k.rope(qkv, ropeCos, ropeSin, n, n, position, NH + NKV, hd, qkvRows, false);
                // append this batch's keys and values to the cache
                MemorySegment keys = layer(keyCache, l, (long) contextLength * kvC);
                MemorySegment values = layer(valueCache, l, (long) contextLength * kvC);
                for (int r = 0; r < n; r++) {
                    long row = (long) r * qkvRows, cacheRow = (long) (position + r) * kvC;
                    MemorySegment.copy(
                            qkv,
                            (row + (long) NH * hd) * Float.BYTES,
                            keys,
                            cacheRow * Float.BYTES,
                            (long) kvC * Float.BYTES);
                    MemorySegment.copy(
                            qkv,
                            (row + (long) (NH + NKV) * hd) * Float.BYTES,
                            values,
                            cacheRow * Float.BYTES,
                            (long) kvC * Float.BYTES);
                }
                cachedAttention(atty, qkv, keys, values, n);
                linear(attproj, atty, layer(p.attprojw, l, (long) C * C), w.attprojw[l], n);
                k.residualForward(x, x, attproj, nc);
                k.rmsnormForward(xb, null, x, layer(p.ln2w, l, C), n, C, eps);
                linear(fch, xb, layer(p.fcw, l, 2L * H * C), w.fcw[l], n);
                k.swigluForward(fchSwiglu, fch, n, H);
                linear(fcproj, fchSwiglu, layer(p.fcprojw, l, (long) C * H), w.fcprojw[l], n);
                k.residualForward(x, x, fcproj, nc);
            }
            position += n;
            // only the last row's logits are needed
            MemorySegment last = Floats.slice(x, (long) (n - 1) * C, C);
            k.rmsnormForward(xb, null, last, p.lnfw, 1, C, eps);
            MatVec.forward(logits, xb, w.lmHead, null);
            float[] out = new float[V];
            MemorySegment.copy(logits, Floats.FLOAT, 0, out, 0, V);
            return out;
        }

        // out (n, OC) = inp (n, IC) · weightᵀ: one row streams the generation weights (MatVec), a batch runs the
        // matmul over the fp32 parameters (fp32, the same weights as weight when that is FP32)
        private void linear(MemorySegment out, MemorySegment inp, MemorySegment fp32, Weights weight, int n) {
            if (n == 1) MatVec.forward(out, inp, weight, null);
            else kernels.matmulForward(out, inp, fp32, null, n, weight.cols(), weight.rows());
        }

        /** For row r (position position + r): its query heads against the cache up to its own position. */
        private void cachedAttention(
                MemorySegment out, MemorySegment qkv, MemorySegment keys, MemorySegment values, int n) {
            int NH = config.numHeads(), hd = config.headSize(), qkvRows = config.qkvRows();
            for (int r = 0; r < n; r++) {
                DecodeAttention.forward(
                        Floats.slice(out, (long) r * NH * hd, (long) NH * hd),
                        qkv,
                        (long) r * qkvRows,
                        keys,
                        values,
                        config.kvChannels(),
                        NH,
                        config.kvGroupSize(),
                        hd,
                        position + r);
            }
        }
    }

    /** A new inference session (empty KV cache) for up to contextLength positions, over the fp32 parameters. */
    public Session newSession(int contextLength) {
        return new Session(contextLength, new InferenceWeights(Precision.FP32));
    }

    /** A new inference session whose one-token steps read {@code weights} (see {@link #inferenceWeights}). */
    public Session newSession(int contextLength, InferenceWeights weights) {
        return new Session(contextLength, weights);
    }

    /** Figures of one generation: tokens produced, seconds for the prompt and for the new tokens. */
    public record GenerationStats(int promptTokens, int generatedTokens, double promptSeconds, double generateSeconds) {
        public double tokensPerSecond() {
            return generateSeconds > 0 ? generatedTokens / generateSeconds : 0;
        }
    }

    /**
     * Generates up to maxNewTokens after the prompt (prompt as one batch, then one token at a time), drawing each
     * token with {@code sampler} (temperature, top-k, top-p: {@link Sampler}) and calling {@code onToken} for it;
     * stops early at a token in {@code stopTokens} or when the context is full.
     */
    public GenerationStats generate(
            int[] prompt, int maxNewTokens, Sampler sampler, int[] stopTokens, IntConsumer onToken) {
        return generate(prompt, maxNewTokens, sampler, stopTokens, onToken, new InferenceWeights(Precision.FP32));
    }

    /** {@link #generate(int[], int, Sampler, int[], IntConsumer)} with each new token reading {@code weights}. */
    public GenerationStats generate(
            int[] prompt,
            int maxNewTokens,
            Sampler sampler,
            int[] stopTokens,
            IntConsumer onToken,
            InferenceWeights weights) {
        if (prompt.length == 0) throw new LlmcException("the prompt needs at least one token (e.g. <|begin_of_text|>)");
        if (prompt.length > config.maxSeqLen())
            throw new LlmcException("prompt of %d tokens exceeds the model's context length %d"
                    .formatted(prompt.length, config.maxSeqLen()));
        int context = Math.min(config.maxSeqLen(), prompt.length + maxNewTokens);
        try (var session = newSession(context, weights)) {
            long start = System.nanoTime();
            float[] logits = session.forward(prompt);
            long promptDone = System.nanoTime();
            int generated = 0;
            while (generated < maxNewTokens) {
                int token = sampler.sample(logits, 0, logits.length);
                generated++;
                onToken.accept(token);
                if (Arrays.stream(stopTokens).anyMatch(s -> s == token) || session.position() >= context) break;
                logits = session.forward(new int[] {token});
            }
            long end = System.nanoTime();
            return new GenerationStats(prompt.length, generated, (promptDone - start) / 1e9, (end - promptDone) / 1e9);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inspectable: what the --ui monitor shows. The bias slots are zeros that never train: left out.

    private static final String[] TENSOR_NAMES = {
        "wte",
        "lm_head",
        "ln1w",
        null,
        "qkvw",
        null,
        "attprojw",
        null,
        "ln2w",
        null,
        "fcw",
        null,
        "fcprojw",
        null,
        "lnfw",
        null
    };

    @Override
    public int numLayers() {
        return config.numLayers();
    }

    @Override
    public int numHeads() {
        return config.numHeads();
    }

    @Override
    public List<TensorSlice> parameterTensors() {
        return Inspectable.llmcSlots(TENSOR_NAMES, config.parameterSizes(), config.numLayers());
    }

    /** Per layer: attention output (attproj), MLP hidden [up | gate] (fch), MLP output (fcproj), residual stream. */
    @Override
    public List<ActivationSlice> activations() {
        if (acts == null) return List.of();
        long bt = (long) batchSize * seqLen, btc = bt * config.channels();
        var slices = new ArrayList<ActivationSlice>();
        for (int l = 0; l < config.numLayers(); l++) {
            slices.add(new ActivationSlice("attproj", l, layer(acts.attproj, l, btc)));
            slices.add(new ActivationSlice("fch", l, layer(acts.fch, l, 2 * bt * config.ffnHidden())));
            slices.add(new ActivationSlice("fcproj", l, layer(acts.fcproj, l, btc)));
            slices.add(new ActivationSlice("residual", l, layer(acts.residual3, l, btc)));
        }
        return slices;
    }

    @Override
    public Batch lastBatch() {
        return inputs == null ? null : new Batch(inputs.clone(), batchSize, seqLen); // backward reads inputs
    }

    @Override
    public MemorySegment attentionProbabilities() {
        return acts.att;
    }

    @Override
    public void close() {
        arena.close();
    }
}
