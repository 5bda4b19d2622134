package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.layer;
import static dev.llmc4j.cpu.Floats.set;
import static dev.llmc4j.cpu.Floats.sliceAll;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.cpu.AdamWState;
import dev.llmc4j.cpu.CausalSelfAttention;
import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.Floats;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.data.DataLoader;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.GPT2Init;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.train.CpuTrainableModel;
import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.MemoryEstimate;
import dev.llmc4j.train.TokenGenerator;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.util.LlmcException;
import dev.llmc4j.util.OffHeap;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * GPT-2 in one file: forward, backward and AdamW, after llm.c's train_gpt2.c.
 *
 * <p>Read it top to bottom: GPT-2's own layers, each with its forward and backward side by side, then the model
 * (parameters and activations each in one big off-heap buffer, indexed with longs: GPT-2 124M at B=4, T=1024 needs
 * more than 2^31 floats of activations), its forward and backward passes, the optimizer, and at the end
 * {@link #main}, the few lines that train it.
 *
 * <p>Shapes use llm.c's letters: B batch size, T sequence length, C channels, NH heads, hs = C/NH head size,
 * V vocabulary, Vp padded vocabulary, L layers, OC output channels. Every backward ACCUMULATES (+=) into the
 * gradients of both parameters and activations, as in llm.c.
 *
 * <p>Which kernels run is chosen when the model is built, a {@link GPT2Kernels} set: {@link GPT2Kernels#BASELINE}
 * runs the plain loops written below (GPT-2's own layers: encoder, layernorm, GELU) and in {@code dev.llmc4j.cpu}
 * (the layers Llama 3 shares: matmul, about 90% of the work, {@link CausalSelfAttention}, residual, softmax and
 * cross-entropy, AdamW); {@link GPT2Kernels#VECTORIZED} (the default) runs their Vector API versions, which tests
 * compare with these. The forward and backward passes call every layer through the set: {@code k.layernormForward}
 * is the {@link #layernormForward} below, or its vectorized twin.
 */
public final class GPT2 implements CpuTrainableModel, Inspectable {

    // ------------------------------------------------------------------------------------------------------------
    // Encoder: token embedding plus position embedding.

    /** out (B,T,C) = wte[token] + wpe[position]; wte (V,C), wpe (maxT,C). */
    static void encoderForward(
            MemorySegment out, int[] tokens, MemorySegment wte, MemorySegment wpe, int B, int T, int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long token = tokens[(int) bt];
                long t = bt % T;
                for (int i = 0; i < C; i++) {
                    set(out, bt * C + i, get(wte, token * C + i) + get(wpe, t * C + i));
                }
            }
        });
    }

    /** dwte[token] += dout; dwpe[position] += dout. Serial: two positions can hold the same token. */
    static void encoderBackward(
            MemorySegment dwte, MemorySegment dwpe, MemorySegment dout, int[] tokens, int B, int T, int C) {
        for (long bt = 0; bt < (long) B * T; bt++) {
            long token = tokens[(int) bt];
            long t = bt % T;
            for (int i = 0; i < C; i++) {
                float d = get(dout, bt * C + i);
                add(dwte, token * C + i, d);
                add(dwpe, t * C + i, d);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // LayerNorm: normalise each position's C channels to zero mean and unit variance, then scale and shift.

    static final float LAYERNORM_EPS = 1e-5f;

    /** out (B,T,C) = (inp - mean) * rstd * weight + bias; caches mean (B,T) and rstd (B,T) for the backward. */
    static void layernormForward(
            MemorySegment out,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * C;
                float sum = 0;
                for (int i = 0; i < C; i++) sum += get(inp, row + i);
                float m = sum / C;
                float variance = 0; // two passes: the variance of (x - m) is exact where E[x^2] - m^2 cancels
                for (int i = 0; i < C; i++) {
                    float shifted = get(inp, row + i) - m;
                    variance += shifted * shifted;
                }
                variance /= C;
                float s = (float) (1.0 / Math.sqrt(variance + LAYERNORM_EPS));
                for (int i = 0; i < C; i++) {
                    float normalized = (get(inp, row + i) - m) * s;
                    set(out, row + i, normalized * get(weight, i) + get(bias, i));
                }
                set(mean, bt, m);
                set(rstd, bt, s);
            }
        });
    }

    /**
     * The forward's output again from its kept mean and rstd (recompute level 2): the same arithmetic as the last
     * loop of {@link #layernormForward}, so the same bits, without the two passes that find mean and rstd.
     */
    static void layernormRecompute(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment mean,
            MemorySegment rstd,
            MemorySegment weight,
            MemorySegment bias,
            int B,
            int T,
            int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * C;
                float m = get(mean, bt), s = get(rstd, bt);
                for (int i = 0; i < C; i++) {
                    float normalized = (get(inp, row + i) - m) * s;
                    set(out, row + i, normalized * get(weight, i) + get(bias, i));
                }
            }
        });
    }

    /**
     * With n = (x - mean) * rstd and g = weight * dout: dbias += dout, dweight += n * dout, and
     * dinp += (g - mean(g) - n * mean(g * n)) * rstd (the two means remove the directions the normalisation fixed).
     */
    static void layernormBackward(
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
        // dinp rows are independent; dweight and dbias sum over all rows, so each thread keeps its own partial sums
        long rows = (long) B * T;
        int chunks = Parallel.threads();
        float[][] partialDweight = new float[chunks][C];
        float[][] partialDbias = new float[chunks][C];
        Parallel.forRange(chunks, (firstChunk, endChunk) -> {
            for (long chunk = firstChunk; chunk < endChunk; chunk++) {
                float[] dw = partialDweight[(int) chunk];
                float[] db = partialDbias[(int) chunk];
                for (long bt = rows * chunk / chunks; bt < rows * (chunk + 1) / chunks; bt++) {
                    long row = bt * C;
                    float m = get(mean, bt);
                    float s = get(rstd, bt);
                    float gMean = 0, gnMean = 0;
                    for (int i = 0; i < C; i++) {
                        float n = (get(inp, row + i) - m) * s;
                        float g = get(weight, i) * get(dout, row + i);
                        gMean += g;
                        gnMean += g * n;
                    }
                    gMean /= C;
                    gnMean /= C;
                    for (int i = 0; i < C; i++) {
                        float n = (get(inp, row + i) - m) * s;
                        float d = get(dout, row + i);
                        db[i] += d;
                        dw[i] += n * d;
                        float g = get(weight, i) * d;
                        add(dinp, row + i, (g - gMean - n * gnMean) * s);
                    }
                }
            }
        });
        for (int chunk = 0; chunk < chunks; chunk++) { // fixed order: the same sums for the same thread count
            for (int i = 0; i < C; i++) {
                add(dweight, i, partialDweight[chunk][i]);
                add(dbias, i, partialDbias[chunk][i]);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    static final float GELU_SCALE = (float) Math.sqrt(2.0 / Math.PI);

    static void geluForward(MemorySegment out, MemorySegment inp, long N) {
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) {
                float x = get(inp, i);
                float cube = 0.044715f * x * x * x;
                set(out, i, 0.5f * x * (1.0f + (float) Math.tanh(GELU_SCALE * (x + cube))));
            }
        });
    }

    /** dinp += gelu'(x) * dout, with gelu'(x) = 0.5 (1 + tanh u) + 0.5 x sech^2(u) sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
    static void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long N) {
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) {
                float x = get(inp, i);
                float cube = 0.044715f * x * x * x;
                float u = GELU_SCALE * (x + cube);
                float tanh = (float) Math.tanh(u);
                float cosh = (float) Math.cosh(u);
                float sech2 = 1.0f / (cosh * cosh);
                float local = 0.5f * (1.0f + tanh) + x * 0.5f * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
                add(dinp, i, local * get(dout, i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model's memory: 16 parameter tensors in one buffer (llm.c's checkpoint order) and 23 activation tensors
    // in another; the gradients mirror both.

    /** The 16 parameter tensors, slices of one buffer; per-layer tensors are stacked layer-major. */
    record ParameterTensors(
            MemorySegment wte, // (Vp, C) token embeddings, also the (tied) lm head
            MemorySegment wpe, // (maxT, C) position embeddings
            MemorySegment ln1w, // (L, C)
            MemorySegment ln1b, // (L, C)
            MemorySegment qkvw, // (L, 3C, C)
            MemorySegment qkvb, // (L, 3C)
            MemorySegment attprojw, // (L, C, C)
            MemorySegment attprojb, // (L, C)
            MemorySegment ln2w, // (L, C)
            MemorySegment ln2b, // (L, C)
            MemorySegment fcw, // (L, 4C, C)
            MemorySegment fcb, // (L, 4C)
            MemorySegment fcprojw, // (L, C, 4C)
            MemorySegment fcprojb, // (L, C)
            MemorySegment lnfw, // (C)
            MemorySegment lnfb) { // (C)

        static ParameterTensors slice(GPT2Config config, MemorySegment memory) {
            var t = sliceAll(memory, config.parameterSizes());
            return new ParameterTensors(
                    t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7], t[8], t[9], t[10], t[11], t[12], t[13], t[14],
                    t[15]);
        }

        MemorySegment[] all() {
            return new MemorySegment[] {
                wte, wpe, ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb
            };
        }

        /** The tensors whose gradient the backward does not write with a matmul first, but only adds to. */
        MemorySegment[] addedToOnly() {
            return new MemorySegment[] {wpe, ln1w, ln1b, ln2w, ln2b, lnfw, lnfb};
        }
    }

    /**
     * The 23 activation tensors of one forward pass at batch B and length T (llm.c's order). With recompute
     * (llm.c's {@code -r}) some per-layer tensors are not kept: level 1 drops fchGelu, level 2 also ln1 and ln2.
     * A dropped tensor keeps a buffer of ONE layer, which every layer reuses (the forward writes it and the next
     * matmul reads it at once; the backward recomputes it just before reading it): shapes marked [L] below are
     * (1, ...) then. The activation gradients use the same layout, so they shrink by as much.
     */
    record Activations(
            MemorySegment encoded, // (B, T, C)
            MemorySegment ln1, // ([L], B, T, C)  one layer at recompute >= 2
            MemorySegment ln1Mean, // (L, B, T)
            MemorySegment ln1Rstd, // (L, B, T)
            MemorySegment qkv, // (L, B, T, 3C)
            MemorySegment atty, // (L, B, T, C)
            MemorySegment preatt, // (L, B, NH, T, T)
            MemorySegment att, // (L, B, NH, T, T)
            MemorySegment attproj, // (L, B, T, C)
            MemorySegment residual2, // (L, B, T, C)
            MemorySegment ln2, // ([L], B, T, C)  one layer at recompute >= 2
            MemorySegment ln2Mean, // (L, B, T)
            MemorySegment ln2Rstd, // (L, B, T)
            MemorySegment fch, // (L, B, T, 4C)
            MemorySegment fchGelu, // ([L], B, T, 4C) one layer at recompute >= 1
            MemorySegment fcproj, // (L, B, T, C)
            MemorySegment residual3, // (L, B, T, C)
            MemorySegment lnf, // (B, T, C)
            MemorySegment lnfMean, // (B, T)
            MemorySegment lnfRstd, // (B, T)
            MemorySegment logits, // (B, T, Vp)
            MemorySegment probs, // (B, T, Vp)
            MemorySegment losses) { // (B, T)

        static long[] sizes(GPT2Config config, int B, int T) {
            return sizes(config, B, T, 0);
        }

        static long[] sizes(GPT2Config config, int B, int T, int recompute) {
            long L = config.numLayers(), C = config.channels(), NH = config.numHeads(), Vp = config.paddedVocabSize();
            long BT = (long) B * T;
            long lnLayers = recompute >= 2 ? 1 : L, geluLayers = recompute >= 1 ? 1 : L;
            return new long[] {
                BT * C, lnLayers * BT * C, L * BT, L * BT, L * BT * 3 * C, L * BT * C, L * B * NH * T * T,
                        L * B * NH * T * T,
                L * BT * C, L * BT * C, lnLayers * BT * C, L * BT, L * BT, L * BT * 4 * C, geluLayers * BT * 4 * C,
                        L * BT * C,
                L * BT * C, BT * C, BT, BT, BT * Vp, BT * Vp, BT
            };
        }

        static long count(GPT2Config config, int B, int T) {
            return count(config, B, T, 0);
        }

        static long count(GPT2Config config, int B, int T, int recompute) {
            long total = 0;
            for (long size : sizes(config, B, T, recompute)) total += size;
            return total;
        }

        static Activations slice(GPT2Config config, int B, int T, int recompute, MemorySegment memory) {
            var a = sliceAll(memory, sizes(config, B, T, recompute));
            return new Activations(
                    a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11], a[12], a[13], a[14],
                    a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22]);
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model.

    public final GPT2Config config;
    private final GPT2Kernels kernels;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment parameterMemory;
    private final MemorySegment gradientMemory;
    private boolean gradientsCleared; // zeroGrad was called and nothing has written or read the gradients since
    final ParameterTensors params;
    final ParameterTensors grads;
    private final AdamWState optimizer; // AdamW's moments: of all parameters, or of this process's ZeRO-1 pieces
    private GPT2Inference inference;

    // activations, allocated on the first forward and grown when a larger batch arrives
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
    private int recompute; // llm.c's -r: 0 keep every activation, 1 recompute GELU, 2 also the layernorms

    /** A model with all parameters zero that runs the vectorized kernels; see {@link #randomInit} and {@link #fromCheckpoint}. */
    public GPT2(GPT2Config config) {
        this(config, GPT2Kernels.VECTORIZED);
    }

    /** A model with all parameters zero that runs the given kernels. */
    public GPT2(GPT2Config config, GPT2Kernels kernels) {
        this.config = config;
        this.kernels = kernels;
        long bytes = config.numParameters() * Float.BYTES;
        this.parameterMemory = allocate(bytes, "parameters");
        this.gradientMemory = allocate(bytes, "parameter gradients");
        this.params = ParameterTensors.slice(config, parameterMemory);
        this.grads = ParameterTensors.slice(config, gradientMemory);
        this.optimizer = new AdamWState(config.numParameters(), kernels, arena, "GPT-2 " + config);
    }

    /** llm.c's (and PyTorch's, seed 42) random init; see {@link GPT2Init}. */
    public static GPT2 randomInit(GPT2Config config) {
        return randomInit(config, GPT2Kernels.VECTORIZED);
    }

    /** The same, with the given kernels. */
    public static GPT2 randomInit(GPT2Config config, GPT2Kernels kernels) {
        var model = new GPT2(config, kernels);
        GPT2Init.randomInit(config, model.parameterMemory);
        return model;
    }

    /** Loads an llm.c checkpoint (version 3 fp32 or version 5 bf16). */
    public static GPT2 fromCheckpoint(Path file) {
        return fromCheckpoint(file, GPT2Kernels.VECTORIZED);
    }

    /** The same, with the given kernels. */
    public static GPT2 fromCheckpoint(Path file, GPT2Kernels kernels) {
        try (var arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            var model = new GPT2(checkpoint.config(), kernels);
            checkpoint.readParametersInto(model.parameterMemory);
            return model;
        }
    }

    /** Writes the parameters as an llm.c checkpoint, version 3 (fp32) or 5 (bf16). */
    public void save(Path file, int version) {
        GPT2Checkpoint.write(file, config, parameterMemory, version);
    }

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

    @Override
    public void saveCheckpoint(Path file) {
        save(file, 3);
    }

    /** Generation with a KV cache over the current parameters (one cache per model, made on first use). */
    @Override
    public TokenGenerator generator() {
        if (inference == null) inference = new GPT2Inference(this);
        return inference;
    }

    /** All parameters in llm.c's order, as one segment of numParameters floats. */
    @Override
    public MemorySegment parameters() {
        return parameterMemory;
    }

    /** All parameter gradients, same layout as {@link #parameters()}. */
    @Override
    public MemorySegment gradients() {
        if (gradientsCleared) {
            Floats.zero(gradientMemory);
            gradientsCleared = false;
        }
        return gradientMemory;
    }

    /** The kernels this model runs. */
    public GPT2Kernels kernels() {
        return kernels;
    }

    /** Logits (B, T, Vp) of the last forward. */
    public MemorySegment logits() {
        return acts.logits;
    }

    /** Mean loss of the last forward with targets, or -1 when it had none. */
    public float meanLoss() {
        return meanLoss;
    }

    /** Floats of each of the 23 activation tensors a forward at (B, T) keeps with -r 0, in the record's order. */
    public static long[] activationSizes(GPT2Config config, int B, int T) {
        return Activations.sizes(config, B, T);
    }

    /** Floats of activations a forward at (B, T) keeps at a recompute level (-r 0, 1 or 2): all 23 tensors. */
    public static long activationCount(GPT2Config config, int B, int T, int recompute) {
        return Activations.count(config, B, T, recompute);
    }

    /**
     * What training a model of this shape holds, before it is built: parameters, gradients, AdamW's moments (a
     * 1/P shard with ZeRO-1), the activations at B, T with recompute level {@code recompute} and as many again for
     * their gradients, and, when the run samples, the KV cache of {@link GPT2Inference}.
     */
    public static MemoryEstimate.Builder memoryEstimate(
            GPT2Config config, int B, int T, int recompute, int numProcesses, int zeroStage, boolean samples) {
        var estimate = MemoryEstimate.builder()
                .trainingState(config.numParameters(), numProcesses, zeroStage)
                .floats(
                        "activations and their gradients (B=%d, T=%d, -r %d)".formatted(B, T, recompute),
                        2 * Activations.count(config, B, T, recompute));
        if (samples)
            estimate.floats("sampling KV cache", 2L * config.numLayers() * config.maxSeqLen() * config.channels());
        return estimate;
    }

    @Override
    public float[] tokenLosses() {
        if (meanLoss == -1) throw new IllegalStateException("no forward with targets yet");
        return acts.losses.asSlice(0, (long) batchSize * seqLen * Float.BYTES).toArray(Floats.FLOAT);
    }

    /** Floats allocated for the activations (as many again for their gradients); 0 before the first forward. */
    public long numActivations() {
        return activationCapacity;
    }

    /**
     * Activation checkpointing, llm.c's {@code -r}: 0 keeps every activation for the backward (the default);
     * 1 keeps one layer of fchGelu and recomputes gelu(fch) in the backward, saving (L-1)·4·B·T·C floats;
     * 2 also keeps one layer of ln1 and ln2 and recomputes them from the layer inputs and the kept mean and
     * rstd, saving another (L-1)·2·B·T·C. The same for the activation gradients. Losses and gradients do not
     * change: the recomputation repeats the forward's arithmetic. Set it before the first forward.
     */
    public GPT2 recompute(int level) {
        if (level < 0 || level > 2) throw new LlmcException("recompute (-r) must be 0, 1 or 2, found " + level);
        if (level != recompute && activationMemory != null)
            throw new IllegalStateException(
                    "set recompute before the first forward: the activations are laid out for " + recompute);
        recompute = level;
        return this;
    }

    public int recompute() {
        return recompute;
    }

    private MemorySegment allocate(long bytes, String what) {
        return OffHeap.allocate(arena, bytes, what, "GPT-2 " + config);
    }

    private void ensureActivations(int B, int T) {
        if (T > config.maxSeqLen())
            throw new LlmcException(
                    "sequence length " + T + " exceeds the model's context length " + config.maxSeqLen());
        long needed = Activations.count(config, B, T, recompute);
        if (needed > activationCapacity) {
            activationMemory = allocate(needed * Float.BYTES, "activations");
            activationGradientMemory = allocate(needed * Float.BYTES, "activation gradients");
            activationCapacity = needed;
        }
        if (B != batchSize || T != seqLen) {
            acts = Activations.slice(config, B, T, recompute, activationMemory);
            gradActs = Activations.slice(config, B, T, recompute, activationGradientMemory);
            batchSize = B;
            seqLen = T;
        }
    }

    /**
     * The forward pass over tokens (B,T). With targets (B,T) it also computes the mean cross-entropy loss
     * (returned; -1 without targets). Logits and probabilities of the last position are in {@link #logits()}.
     */
    @Override
    public float forward(int[] inputs, int[] targets, int B, int T) {
        int V = config.vocabSize(), Vp = config.paddedVocabSize(), L = config.numLayers();
        int NH = config.numHeads(), C = config.channels();
        TrainableModel.checkTokens("input", inputs, B * T, V);
        if (targets != null) TrainableModel.checkTokens("target", targets, B * T, V);
        ensureActivations(B, T);
        this.inputs = inputs.clone();
        this.targets = targets == null ? null : targets.clone();

        int BT = B * T;
        long btc = (long) BT * C, bt = BT, bt3c = 3L * btc, bt4c = 4L * btc, attention = (long) B * NH * T * T;
        var k = kernels;
        var p = params;
        var a = acts;
        k.encoderForward(a.encoded, inputs, p.wte, p.wpe, B, T, C);
        for (int l = 0; l < L; l++) {
            MemorySegment residual = l == 0 ? a.encoded : layer(a.residual3, l - 1, btc);
            // a tensor that recompute drops has one layer's buffer: every layer writes it at index 0
            int lnLayer = recompute >= 2 ? 0 : l, geluLayer = recompute >= 1 ? 0 : l;

            MemorySegment ln1 = layer(a.ln1, lnLayer, btc), qkv = layer(a.qkv, l, bt3c), atty = layer(a.atty, l, btc);
            MemorySegment attproj = layer(a.attproj, l, btc), residual2 = layer(a.residual2, l, btc);
            MemorySegment ln2 = layer(a.ln2, lnLayer, btc),
                    fch = layer(a.fch, l, bt4c),
                    fchGelu = layer(a.fchGelu, geluLayer, bt4c);
            MemorySegment fcproj = layer(a.fcproj, l, btc), residual3 = layer(a.residual3, l, btc);

            k.layernormForward(
                    ln1,
                    layer(a.ln1Mean, l, bt),
                    layer(a.ln1Rstd, l, bt),
                    residual,
                    layer(p.ln1w, l, C),
                    layer(p.ln1b, l, C),
                    B,
                    T,
                    C);
            k.matmulForward(qkv, ln1, layer(p.qkvw, l, 3L * C * C), layer(p.qkvb, l, 3L * C), BT, C, 3 * C);
            k.attentionForward(
                    atty, layer(a.preatt, l, attention), layer(a.att, l, attention), qkv, B, T, NH, NH, C / NH);
            k.matmulForward(attproj, atty, layer(p.attprojw, l, (long) C * C), layer(p.attprojb, l, C), BT, C, C);
            // residual2 = residual + attproj and ln2 = layernorm(residual2), fused into one pass over each row
            k.residualLayernormForward(
                    residual2,
                    ln2,
                    layer(a.ln2Mean, l, bt),
                    layer(a.ln2Rstd, l, bt),
                    residual,
                    attproj,
                    layer(p.ln2w, l, C),
                    layer(p.ln2b, l, C),
                    B,
                    T,
                    C);
            // fch = ln2 · fcwᵀ + fcb and fchGelu = gelu(fch), GELU fused into the matmul's writing of fch
            k.matmulGeluForward(fch, fchGelu, ln2, layer(p.fcw, l, 4L * C * C), layer(p.fcb, l, 4L * C), BT, C, 4 * C);
            k.matmulForward(fcproj, fchGelu, layer(p.fcprojw, l, 4L * C * C), layer(p.fcprojb, l, C), BT, 4 * C, C);
            k.residualForward(residual3, residual2, fcproj, btc);
        }
        MemorySegment last = layer(a.residual3, L - 1, btc);
        k.layernormForward(a.lnf, a.lnfMean, a.lnfRstd, last, p.lnfw, p.lnfb, B, T, C);
        k.matmulForward(a.logits, a.lnf, p.wte, null, BT, C, Vp);
        k.softmaxForward(a.probs, a.logits, BT, V, Vp);

        if (targets == null) {
            meanLoss = -1;
            return meanLoss;
        }
        k.crossentropyForward(a.losses, a.probs, targets, BT, Vp);
        float sum = 0;
        for (int i = 0; i < BT; i++) sum += get(a.losses, i);
        meanLoss = sum / BT;
        return meanLoss;
    }

    /**
     * Sets every parameter gradient to zero (call before the first micro-batch of a step), lazily, as PyTorch's
     * {@code zero_grad(set_to_none=True)}: the next backward writes the matmul gradients (99% of them) instead of
     * adding to them, so they are never zeroed in memory nor read back (a d12 step: 497 MB not written, 497 MB not
     * read), and zeroes only the rest. Whatever reads them before that ({@link #gradients()}, update) zeroes all.
     */
    @Override
    public void zeroGrad() {
        gradientsCleared = true;
    }

    /** Backward pass of the last forward (which must have had targets); gradients are ADDED to the current ones. */
    public void backward() {
        backward(1);
    }

    /**
     * Backward pass for one of {@code microSteps} accumulated micro-batches: each contributes its mean loss
     * divided by microSteps, so the accumulated gradient is that of the mean over all of them.
     */
    @Override
    public void backward(int microSteps) {
        if (meanLoss == -1) throw new IllegalStateException("must forward with targets before backward");
        int B = batchSize, T = seqLen, BT = B * T;
        int V = config.vocabSize(), Vp = config.paddedVocabSize(), L = config.numLayers();
        int NH = config.numHeads(), C = config.channels();
        long btc = (long) BT * C, bt = BT, bt3c = 3L * btc, bt4c = 4L * btc, attention = (long) B * NH * T * T;
        var k = kernels;
        var p = params;
        var g = grads;
        var a = acts;
        var d = gradActs;
        // every activation gradient starts from zero but the last two: the probabilities' is never read nor written
        // (the fused softmax + cross-entropy backward goes from the losses straight to the logits; B T V floats, the
        // size of the logits), and the losses' is set below
        Floats.zeroBefore(activationGradientMemory, d.probs());
        // after zeroGrad, each matmul writes its weight's gradient (the output layer's writes wte's before the
        // encoder adds to it) and only the other tensors start from zero
        boolean accumulate = !gradientsCleared;
        if (gradientsCleared) for (var tensor : g.addedToOnly()) Floats.zero(tensor);
        gradientsCleared = false;

        // the loss is the mean over B*T positions (and micro-steps): each position's loss gets that share
        float dloss = 1.0f / (BT * (float) microSteps);
        for (int i = 0; i < BT; i++) set(d.losses, i, dloss);

        k.crossentropySoftmaxBackward(d.logits, d.losses, a.probs, targets, BT, V, Vp);
        k.matmulBackward(d.lnf, g.wte, null, d.logits, a.lnf, p.wte, BT, C, Vp, accumulate);
        MemorySegment last = layer(a.residual3, L - 1, btc);
        MemorySegment dlast = layer(d.residual3, L - 1, btc);
        k.layernormBackward(dlast, g.lnfw, g.lnfb, d.lnf, last, p.lnfw, a.lnfMean, a.lnfRstd, B, T, C);

        for (int l = L - 1; l >= 0; l--) {
            MemorySegment residual = l == 0 ? a.encoded : layer(a.residual3, l - 1, btc);
            MemorySegment dresidual = l == 0 ? d.encoded : layer(d.residual3, l - 1, btc);
            int lnLayer = recompute >= 2 ? 0 : l, geluLayer = recompute >= 1 ? 0 : l; // as in the forward
            MemorySegment ln1 = layer(a.ln1, lnLayer, btc), dln1 = layer(d.ln1, lnLayer, btc);
            MemorySegment ln2 = layer(a.ln2, lnLayer, btc), dln2 = layer(d.ln2, lnLayer, btc);
            MemorySegment fchGelu = layer(a.fchGelu, geluLayer, bt4c), dfchGelu = layer(d.fchGelu, geluLayer, bt4c);
            // recompute what the forward did not keep; a shared gradient buffer still holds the previous
            // layer's sums, and the backward accumulates, so it starts again from zero
            if (recompute >= 1) {
                k.geluForward(fchGelu, layer(a.fch, l, bt4c), bt4c);
                dfchGelu.fill((byte) 0);
            }
            if (recompute >= 2) {
                k.layernormRecompute(
                        ln2,
                        layer(a.residual2, l, btc),
                        layer(a.ln2Mean, l, bt),
                        layer(a.ln2Rstd, l, bt),
                        layer(p.ln2w, l, C),
                        layer(p.ln2b, l, C),
                        B,
                        T,
                        C);
                k.layernormRecompute(
                        ln1,
                        residual,
                        layer(a.ln1Mean, l, bt),
                        layer(a.ln1Rstd, l, bt),
                        layer(p.ln1w, l, C),
                        layer(p.ln1b, l, C),
                        B,
                        T,
                        C);
                dln1.fill((byte) 0);
                dln2.fill((byte) 0);
            }

            // backward through the MLP half of the block
            k.residualBackward(layer(d.residual2, l, btc), layer(d.fcproj, l, btc), layer(d.residual3, l, btc), btc);
            k.matmulBackward(
                    dfchGelu,
                    layer(g.fcprojw, l, 4L * C * C),
                    layer(g.fcprojb, l, C),
                    layer(d.fcproj, l, btc),
                    fchGelu,
                    layer(p.fcprojw, l, 4L * C * C),
                    BT,
                    4 * C,
                    C,
                    accumulate);
            k.geluBackward(layer(d.fch, l, bt4c), layer(a.fch, l, bt4c), dfchGelu, bt4c);
            k.matmulBackward(
                    dln2,
                    layer(g.fcw, l, 4L * C * C),
                    layer(g.fcb, l, 4L * C),
                    layer(d.fch, l, bt4c),
                    ln2,
                    layer(p.fcw, l, 4L * C * C),
                    BT,
                    C,
                    4 * C,
                    accumulate);
            k.layernormBackward(
                    layer(d.residual2, l, btc),
                    layer(g.ln2w, l, C),
                    layer(g.ln2b, l, C),
                    dln2,
                    layer(a.residual2, l, btc),
                    layer(p.ln2w, l, C),
                    layer(a.ln2Mean, l, bt),
                    layer(a.ln2Rstd, l, bt),
                    B,
                    T,
                    C);

            // backward through the attention half
            k.residualBackward(dresidual, layer(d.attproj, l, btc), layer(d.residual2, l, btc), btc);
            k.matmulBackward(
                    layer(d.atty, l, btc),
                    layer(g.attprojw, l, (long) C * C),
                    layer(g.attprojb, l, C),
                    layer(d.attproj, l, btc),
                    layer(a.atty, l, btc),
                    layer(p.attprojw, l, (long) C * C),
                    BT,
                    C,
                    C,
                    accumulate);
            k.attentionBackward(
                    layer(d.qkv, l, bt3c),
                    layer(d.preatt, l, attention),
                    layer(d.att, l, attention),
                    layer(d.atty, l, btc),
                    layer(a.qkv, l, bt3c),
                    layer(a.att, l, attention),
                    B,
                    T,
                    NH,
                    NH,
                    C / NH);
            k.matmulBackward(
                    dln1,
                    layer(g.qkvw, l, 3L * C * C),
                    layer(g.qkvb, l, 3L * C),
                    layer(d.qkv, l, bt3c),
                    ln1,
                    layer(p.qkvw, l, 3L * C * C),
                    BT,
                    C,
                    3 * C,
                    accumulate);
            k.layernormBackward(
                    dresidual,
                    layer(g.ln1w, l, C),
                    layer(g.ln1b, l, C),
                    dln1,
                    residual,
                    layer(p.ln1w, l, C),
                    layer(a.ln1Mean, l, bt),
                    layer(a.ln1Rstd, l, bt),
                    B,
                    T,
                    C);
        }
        k.encoderBackward(g.wte, g.wpe, d.encoded, inputs, B, T, C);
    }

    // ------------------------------------------------------------------------------------------------------------
    // AdamW.

    /**
     * One AdamW step (see {@link AdamW}) over every parameter, t = 1-based step. The gradient is multiplied by
     * {@code gradScale} first (gradient clipping folds in here). Weight decay applies to every tensor, or with
     * {@code decayMatricesOnly} only to the 2-D ones (wte, wpe and the four weight matrices), as llm.c's trainer does.
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
        optimizer.update(
                parameterMemory,
                gradients(),
                config.parameterSizes(),
                tensor -> !decayMatricesOnly || ParameterSlice.isMatrix(tensor),
                tensor -> false,
                new AdamW.Step(learningRate, beta1, beta2, eps, weightDecay, gradScale, t));
    }

    /** llm.c's trainer rule: weight decay on the 2-D tensors only. */
    @Override
    public void update(
            float learningRate, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {
        update(learningRate, beta1, beta2, eps, weightDecay, true, gradScale, t);
    }

    /** ZeRO-1 cuts every layer of every tensor, as llm.c does (see {@link OptimizerShard}). */
    @Override
    public List<ParameterSlice> parameterSlices() {
        return config.parameterSlices();
    }

    /** AdamW's moments (ZeRO-1, the norms and the state file's m and v come with it: {@link CpuTrainableModel}). */
    @Override
    public AdamWState optimizerState() {
        return optimizer;
    }

    /** llm.c's test rule: AdamW with decay on every parameter and no clipping. */
    public void update(float learningRate, float beta1, float beta2, float eps, float weightDecay, int t) {
        update(learningRate, beta1, beta2, eps, weightDecay, false, 1.0f, t);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Inspectable: what the --ui monitor shows.

    private static final String[] TENSOR_NAMES = {
        "wte",
        "wpe",
        "ln1w",
        "ln1b",
        "qkvw",
        "qkvb",
        "attprojw",
        "attprojb",
        "ln2w",
        "ln2b",
        "fcw",
        "fcb",
        "fcprojw",
        "fcprojb",
        "lnfw",
        "lnfb"
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

    /** Per layer: attention output (attproj), MLP hidden before GELU (fch), MLP output (fcproj), residual stream. */
    @Override
    public List<ActivationSlice> activations() {
        if (acts == null) return List.of();
        long btc = (long) batchSize * seqLen * config.channels();
        var slices = new ArrayList<ActivationSlice>();
        for (int l = 0; l < config.numLayers(); l++) {
            slices.add(new ActivationSlice("attproj", l, layer(acts.attproj, l, btc)));
            slices.add(new ActivationSlice("fch", l, layer(acts.fch, l, 4 * btc)));
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
        if (inference != null) inference.close();
        arena.close();
    }

    // ------------------------------------------------------------------------------------------------------------
    // Training, as train_gpt2.c's main does it: batches from the DataLoader, forward, zero the gradients, backward,
    // AdamW, print the loss. (The full trainer, with validation, schedules, clipping, checkpoints and several
    // processes, is dev.llmc4j.train.Trainer, behind `llmc train`.)

    /**
     * {@code GPT2 MODEL.bin TRAIN_TOKENS.bin [STEPS]}: trains an llm.c checkpoint on a token shard (or a glob of
     * shards) for STEPS steps (default 40) at B=4, T=64 with llm.c's test settings, printing each step's loss.
     * {@code -Dllmc.kernels=baseline} runs the plain loops. From a built checkout:
     * <pre>
     *   CP=gpt2-cpu/target/classes:common/core/target/classes:common/cpu/target/classes
     *   CP=$CP:common/parallel/target/classes:common/train/target/classes
     *   java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp $CP dev.llmc4j.gpt2.GPT2 \
     *        gpt2_124M.bin data/tinyshakespeare/tiny_shakespeare_train.bin 10
     * </pre>
     */
    public static void main(String[] args) {
        if (args.length < 2 || args.length > 3) {
            System.err.println("usage: GPT2 MODEL.bin TRAIN_TOKENS.bin [STEPS]");
            System.exit(2);
        }
        try {
            int steps = args.length == 3 ? Integer.parseInt(args[2]) : 40;
            var kernels = GPT2Kernels.of(CpuKernels.Choice.parse(System.getProperty("llmc.kernels", "vectorized")));
            try (var model = fromCheckpoint(Path.of(args[0]), kernels)) {
                train(model, args[1], 4, 64, steps, System.out);
            }
        } catch (NumberFormatException e) {
            System.err.println("error: STEPS: expected a whole number, found " + args[2]);
            System.exit(2);
        } catch (LlmcException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    /** Trains {@code model} for {@code steps} steps of (B, T) batches from the shards {@code trainTokens} names. */
    static void train(GPT2 model, String trainTokens, int B, int T, int steps, PrintStream out) {
        out.printf(
                "GPT-2 %s, %s kernels, B=%d T=%d%n",
                model.config, model.kernels().name(), B, T);
        try (var trainLoader = new DataLoader(trainTokens, B, T, 0, 1, true, model.config.vocabSize())) {
            for (int step = 1; step <= steps; step++) {
                long start = System.nanoTime();
                trainLoader.nextBatch();
                float loss = model.forward(trainLoader.inputs(), trainLoader.targets(), B, T);
                model.zeroGrad();
                model.backward();
                model.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, step);
                out.printf("step %d: train loss %f (took %.1f ms)%n", step, loss, (System.nanoTime() - start) / 1e6);
            }
        }
    }
}
