package dev.llmc4j.gpt2.cuda;

import static dev.llmc4j.gpt2.cuda.ParameterLayout.*;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * GPT-2 on an NVIDIA GPU, driven from Java: the structure of llm.c's train_gpt2.cu, with the kernels in
 * src/main/cuda, the matmuls in cuBLASLt and everything else here.
 *
 * <pre>
 *   try (var model = new GPT2Cuda(config, GPT2Cuda.Options.defaults())) {
 *       model.loadParameters(fp32Params);                    // llm.c order, e.g. from gpt2_124M.bin
 *       for (int step = 0; step &lt; steps; step++) {
 *           model.zeroGrad();
 *           for (int micro = 0; micro &lt; accum; micro++) {
 *               float loss = model.forward(inputs, targets, B, T);
 *               model.backward(accum);
 *           }
 *           float norm = model.gradNorm();
 *           float gradScale = norm &gt; 1.0f ? 1.0f / norm : 1.0f;   // clip the global norm at 1.0
 *           model.update(lr, 0.9f, 0.95f, 1e-8f, weightDecay, gradScale, step + 1);
 *       }
 *   }
 * </pre>
 *
 * Storage: parameters, gradients and activations in {@link Precision} ("floatX"); AdamW m, v, master weights,
 * LayerNorm statistics and losses in fp32. Parameter gradients ACCUMULATE (+=) across backward calls until
 * {@link #zeroGrad()}; activation gradients are scratch, overwritten layer by layer. Everything runs on the
 * default stream in a fixed order with deterministic kernels, so a run replays bit for bit; a multi-GPU run adds a
 * second stream for NCCL's gradient reduction, ordered against the first by events (see {@link GradientReduction}).
 * Under ZeRO-1, after the reducing backward only this rank's pieces of the gradients are averaged over the ranks
 * (the rest hold its own gradients): {@link #gradientSquareSum()} and {@link #update} read only those pieces.
 */
public final class GPT2Cuda implements AutoCloseable {

    public enum Attention {
        FLASH,
        PLAIN
    }

    /**
     * @param precision     storage type (bf16 default; fp16 turns on dynamic loss scaling)
     * @param attention     FLASH (ours, tensor cores, 16-bit only) or PLAIN (materialises the T x T matrix)
     * @param recompute     0 keep every activation; 1 recompute GELU in backward; 2 also LayerNorm (llm.c's -r)
     * @param masterWeights keep fp32 master weights for AdamW (llm.c's -w); ignored for fp32
     * @param allowTf32     fp32 matmuls on TF32 tensor cores (llm.c's -f)
     */
    public record Options(
            Precision precision, Attention attention, int recompute, boolean masterWeights, boolean allowTf32) {
        public Options {
            if (recompute < 0 || recompute > 2)
                throw new LlmcException("recompute must be 0, 1 or 2, found " + recompute);
            if (attention == Attention.FLASH && !precision.supportsFlashAttention())
                throw new LlmcException("flash attention needs bf16 or fp16; use plain attention with fp32");
        }

        public static Options defaults() {
            return new Options(Precision.BF16, Attention.FLASH, 1, true, true);
        }

        public Options withPrecision(Precision p) {
            return new Options(
                    p, p.supportsFlashAttention() ? attention : Attention.PLAIN, recompute, masterWeights, allowTf32);
        }

        public Options withAttention(Attention a) {
            return new Options(precision, a, recompute, masterWeights, allowTf32);
        }

        public Options withRecompute(int r) {
            return new Options(precision, attention, r, masterWeights, allowTf32);
        }
    }

    private final GPT2Config config;
    private final Options options;
    private final ParameterLayout layout;
    private final Precision precision;
    private final int x; // bytes per floatX element
    private final CudaDriver cuda;
    private final MemorySegment context;
    private final String deviceName;
    private final KernelModule module; // the fatbin, loaded into this context
    private final CudaKernels kernels; // one typed launcher per kernel, for this precision
    private final CublasLt blas;
    private final XorShift rng = new XorShift(13371337); // stochastic-rounding seeds, one draw per tensor per update
    private long rngStateBeforeLastUpdate = rng.state(); // what rng was when the last update began (state files)
    private final DynamicLossScaler lossScaler; // fp16 only

    // device memory, each one allocation (CUdeviceptr); under ZeRO-1 master, m and v hold this rank's pieces only
    private final long params, grads;
    private long master, adamM, adamV;
    private OptimizerShard shard; // whose optimizer state this GPU keeps: all, or its ZeRO-1 pieces
    private List<OptimizerShard.Run> shardRuns; // the shard cut at tensor boundaries: one AdamW launch each
    private long pieceSums; // ZeRO-1: one float per piece for the shard's squared norm, + the total
    private GradientReduction reduction; // multi-GPU: the gradients' NCCL reduction during the backward
    private MemorySegment sideStream, layerDone, reduced;
    private int microStepsSinceZero; // backward calls since zeroGrad: the last of them reduces
    private Activations acts; // laid out at actsPtr
    private long actsPtr;
    private long actsCapacity; // bytes at actsPtr: a smaller (B,T) reuses them (sampling with B=1)
    private int batchSize, seqLen;
    private int[] lastTargets;
    private EncoderBuckets lastBuckets;
    private boolean closed;

    public GPT2Cuda(GPT2Config config, Options options) {
        this(config, options, 0);
    }

    public GPT2Cuda(GPT2Config config, Options options, int deviceOrdinal) {
        this.config = config;
        this.options = options;
        this.layout = ParameterLayout.of(config);
        this.precision = options.precision();
        this.x = precision.bytes();
        if (options.attention() == Attention.FLASH) FlashAttention.checkHeadSize(config.headSize());
        this.cuda = CudaDriver.get();
        int count = cuda.deviceCount();
        if (deviceOrdinal < 0 || deviceOrdinal >= count)
            throw new LlmcException("CUDA device " + deviceOrdinal + " does not exist: " + count + " device(s) found");
        int device = cuda.device(deviceOrdinal);
        this.context = cuda.primaryContext(device);
        this.deviceName = cuda.deviceName(device);
        int major = cuda.deviceAttribute(CudaDriver.ATTR_COMPUTE_CAPABILITY_MAJOR, device);
        if (major < 8)
            throw new LlmcException("GPU '" + deviceName + "' has compute capability " + major
                    + ".x; the kernels need 8.0 (Ampere) or newer");
        this.module = new KernelModule(cuda, CudaKernels.kernelNames());
        this.kernels = new CudaKernels(module, precision);
        this.blas = new CublasLt(cuda);
        this.lossScaler = precision == Precision.FP16 ? new DynamicLossScaler() : null;

        long n = layout.numParameters();
        this.params = cuda.memAlloc(n * x);
        this.grads = cuda.memAlloc(n * x);
        this.master =
                ParameterLayout.keepsMasterWeights(precision, options.masterWeights()) ? cuda.memAlloc(n * 4L) : 0;
        this.adamM = cuda.memAlloc(n * 4L);
        this.adamV = cuda.memAlloc(n * 4L);
        this.shard = OptimizerShard.whole(n);
        this.shardRuns = shard.runs(layout.sizes());
        cuda.memsetD8(params, (byte) 0, n * x);
        cuda.memsetD8(grads, (byte) 0, n * x);
        cuda.memsetD8(adamM, (byte) 0, n * 4L);
        cuda.memsetD8(adamV, (byte) 0, n * 4L);
    }

    public GPT2Config config() {
        return config;
    }

    public Options options() {
        return options;
    }

    public String deviceName() {
        return deviceName;
    }

    public long numParameters() {
        return layout.numParameters();
    }

    public Precision precision() {
        return precision;
    }
    /** The fp16 loss scaler, or null for bf16/fp32. */
    public DynamicLossScaler lossScaler() {
        return lossScaler;
    }

    /** The CUDA stream every kernel of this model runs on: the default stream ({@code MemorySegment.NULL}). */
    public MemorySegment stream() {
        return MemorySegment.NULL;
    }

    /** Makes this model's GPU context current on the calling thread (before NCCL calls that use its memory). */
    public void makeCurrent() {
        bind();
    }

    // -------------------------------------------------------------------------------------------------------------
    // pointers

    private long param(int tensor) {
        return params + layout.offset(tensor) * x;
    }

    private long param(int tensor, int l) {
        return params + layout.layer(tensor, l) * x;
    }

    private long grad(int tensor) {
        return grads + layout.offset(tensor) * x;
    }

    private long grad(int tensor, int l) {
        return grads + layout.layer(tensor, l) * x;
    }

    // -------------------------------------------------------------------------------------------------------------
    // parameters in and out

    /** Loads fp32 parameters in llm.c's order (as in a version-3 checkpoint after the header). */
    public void loadParameters(float[] fp32Params) {
        bind();
        long n = layout.numParameters();
        if (fp32Params.length != n)
            throw new LlmcException(
                    "parameters: expected " + n + " floats for " + config + ", found " + fp32Params.length);
        if (precision == Precision.FP32) {
            upload(params, fp32Params);
            return;
        }
        long staging = masterHoldsEverything() ? master : cuda.memAlloc(n * 4L);
        try {
            upload(staging, fp32Params);
            kernels.convertFromFloat(params, staging, n, stream());
            if (staging != master) copyPiecesToMaster(staging);
        } finally {
            if (staging != master) cuda.memFree(staging);
        }
    }

    /**
     * Loads fp32 parameters from memory, e.g. a memory-mapped version-3 checkpoint sliced past its 1024-byte header
     * (little-endian floats, llm.c order). Native memory goes to the GPU without a Java array in between.
     */
    public void loadParameters(MemorySegment fp32) {
        bind();
        long n = layout.numParameters();
        if (fp32.byteSize() != n * 4)
            throw new LlmcException(
                    "parameters: expected " + n * 4 + " bytes of fp32 for " + config + ", found " + fp32.byteSize());
        if (!fp32.isNative()) {
            loadParameters(fp32.toArray(JAVA_FLOAT));
            return;
        }
        long staging = precision == Precision.FP32 ? params : masterHoldsEverything() ? master : cuda.memAlloc(n * 4L);
        try {
            cuda.memcpyHtoD(staging, fp32, n * 4L);
            if (precision != Precision.FP32) kernels.convertFromFloat(params, staging, n, stream());
            if (staging != master && staging != params) copyPiecesToMaster(staging);
        } finally {
            if (staging != master && staging != params) cuda.memFree(staging);
        }
    }

    /**
     * Loads bf16 parameters (a version-5 checkpoint after its header: raw little-endian bf16, llm.c order) into a
     * BF16 model; the fp32 master weights, if kept, are the exact widening.
     */
    public void loadParametersBf16(MemorySegment bf16) {
        bind();
        long n = layout.numParameters();
        if (precision != Precision.BF16)
            throw new LlmcException("a bf16 checkpoint needs a bf16 model, this one is " + precision);
        if (bf16.byteSize() != n * 2)
            throw new LlmcException(
                    "parameters: expected " + n * 2 + " bytes of bf16 for " + config + ", found " + bf16.byteSize());
        if (bf16.isNative()) cuda.memcpyHtoD(params, bf16, n * 2);
        else
            try (Arena arena = Arena.ofConfined()) {
                MemorySegment copy = arena.allocate(n * 2, 64);
                copy.copyFrom(bf16);
                cuda.memcpyHtoD(params, copy, n * 2);
            }
        if (master == 0) return;
        long widened = masterHoldsEverything() ? master : cuda.memAlloc(n * 4L);
        try {
            kernels.convertToFloat(widened, params, n, stream());
            if (widened != master) copyPiecesToMaster(widened);
        } finally {
            if (widened != master) cuda.memFree(widened);
        }
    }

    /** Whether the fp32 master weights cover every parameter (kept, and not sharded by ZeRO-1). */
    private boolean masterHoldsEverything() {
        return master != 0 && shard.isWhole();
    }

    /** ZeRO-1: this rank's pieces of {@code fullFp32} (all N parameters in fp32) into its sharded master weights. */
    private void copyPiecesToMaster(long fullFp32) {
        if (master == 0) return;
        for (var piece : shard.pieces())
            cuda.memcpyDtoD(
                    master + piece.stateOffset() * 4, fullFp32 + piece.parameterOffset() * 4, piece.count() * 4);
    }

    /** The floatX parameters the model computes with, widened to fp32, in llm.c's order. */
    public void copyParametersToHost(float[] out) {
        downloadFloatX(params, out);
    }

    /**
     * The parameters widened to fp32 into native memory (numParameters floats, llm.c's order): the host side of a
     * checkpoint, without a Java array in between.
     */
    public void copyParametersToHost(MemorySegment out) {
        bind();
        long n = layout.numParameters();
        if (!out.isNative() || out.byteSize() < n * 4)
            throw new IllegalArgumentException("need " + n * 4 + " bytes of native memory, got " + out.byteSize());
        if (precision == Precision.FP32) {
            cuda.memcpyDtoH(out, params, n * 4);
            return;
        }
        long tmp = cuda.memAlloc(n * 4L);
        try {
            kernels.convertToFloat(tmp, params, n, stream());
            cuda.memcpyDtoH(out, tmp, n * 4);
        } finally {
            cuda.memFree(tmp);
        }
    }

    /** The accumulated gradients, widened to fp32 (divided by the loss scale for fp16). */
    public void copyGradientsToHost(float[] out) {
        downloadFloatX(grads, out);
        if (lossScaler != null) {
            float inv = lossScaler.inverseScale();
            for (int i = 0; i < out.length; i++) out[i] *= inv;
        }
    }

    /** Logits (B*T, Vp) of the last forward pass, widened to fp32. Only valid before backward (which overwrites them). */
    public void copyLogitsToHost(float[] out) {
        requireActivations();
        long count = (long) batchSize * seqLen * config.paddedVocabSize();
        if (out.length < count) throw new IllegalArgumentException("need " + count + " floats, got " + out.length);
        downloadFloatX(acts.logits().address(), out, count);
    }

    /**
     * One row of the logits of the last forward pass: position {@code row} in [0, B*T), its Vp values widened to
     * fp32 (what sampling needs, without copying all B*T rows).
     */
    public void copyLogitsRowToHost(int row, float[] out) {
        requireActivations();
        int Vp = config.paddedVocabSize();
        if (row < 0 || row >= batchSize * seqLen)
            throw new IllegalArgumentException("row " + row + " outside [0, " + batchSize * seqLen + ")");
        if (out.length < Vp) throw new IllegalArgumentException("need " + Vp + " floats, got " + out.length);
        downloadFloatX(acts.logits().address() + (long) row * Vp * x, out, Vp);
    }

    // -------------------------------------------------------------------------------------------------------------
    // optimizer state in and out (checkpoints and resume)

    /** Floats in each of m and v (and the master weights): all parameters, or under ZeRO-1 this rank's pieces. */
    public long optimizerStateCount() {
        return shard.count();
    }

    /** Copies AdamW's moments (fp32, {@link #optimizerStateCount()} each, llm.c's order) into host memory. */
    public void copyAdamMomentsToHost(MemorySegment firstMoments, MemorySegment secondMoments) {
        long bytes = stateBytes("first moments", firstMoments);
        stateBytes("second moments", secondMoments);
        cuda.memcpyDtoH(firstMoments, adamM, bytes);
        cuda.memcpyDtoH(secondMoments, adamV, bytes);
    }

    /** Replaces AdamW's moments with host values (resume); the inverse of {@link #copyAdamMomentsToHost}. */
    public void loadAdamMoments(MemorySegment firstMoments, MemorySegment secondMoments) {
        long bytes = stateBytes("first moments", firstMoments);
        stateBytes("second moments", secondMoments);
        cuda.memcpyHtoD(adamM, firstMoments, bytes);
        cuda.memcpyHtoD(adamV, secondMoments, bytes);
    }

    /** The bytes of one optimizer-state block (m, v or master), after checking that the host segment can hold them. */
    private long stateBytes(String what, MemorySegment host) {
        bind();
        long bytes = shard.count() * 4L;
        checkMomentSegment(what, host, bytes);
        return bytes;
    }

    /** Whether AdamW keeps fp32 master weights (bf16/fp16 with {@code Options.masterWeights}). */
    public boolean keepsMasterWeights() {
        return master != 0;
    }

    /**
     * Copies the fp32 master weights ({@link #optimizerStateCount()} floats: all parameters, or under ZeRO-1 this
     * rank's pieces in the shard's order, as the moments) into host memory.
     */
    public void copyMasterWeightsToHost(MemorySegment weights) {
        cuda.memcpyDtoH(weights, masterFor(weights), shard.count() * 4L);
    }

    /**
     * Replaces the fp32 master weights with host values (resume); the inverse of {@link #copyMasterWeightsToHost}.
     * The floatX parameters are left as they are: on resume they come from the model file, which holds exactly what
     * the last update rounded these master weights to.
     */
    public void loadMasterWeights(MemorySegment weights) {
        cuda.memcpyHtoD(masterFor(weights), weights, shard.count() * 4L);
    }

    /** The master weights' device address, after checking that they exist and that the host segment fits them. */
    private long masterFor(MemorySegment weights) {
        if (master == 0) throw new IllegalStateException("this " + precision + " model keeps no fp32 master weights");
        stateBytes("master weights", weights);
        return master;
    }

    /** The state of the generator that seeds stochastic rounding, now (llm.c's rng_state). */
    public long roundingRngState() {
        return rng.state();
    }

    /** {@link #roundingRngState()} as it was when the last applied update began (llm.c's rng_state_last_update). */
    public long roundingRngStateBeforeLastUpdate() {
        return rngStateBeforeLastUpdate;
    }

    /** Continues stochastic rounding from saved states (resume): the next update draws what it would have drawn. */
    public void restoreRoundingRng(long state, long stateBeforeLastUpdate) {
        rng.setState(state);
        rngStateBeforeLastUpdate = stateBeforeLastUpdate;
    }

    private static void checkMomentSegment(String what, MemorySegment segment, long bytes) {
        if (!segment.isNative()) throw new IllegalArgumentException(what + ": need native memory for the copy");
        if (segment.byteSize() < bytes)
            throw new IllegalArgumentException(what + ": need " + bytes + " bytes, got " + segment.byteSize());
    }

    private void downloadFloatX(long src, float[] out) {
        long n = layout.numParameters();
        if (out.length != n) throw new IllegalArgumentException("need " + n + " floats, got " + out.length);
        downloadFloatX(src, out, n);
    }

    private void downloadFloatX(long src, float[] out, long count) {
        bind();
        if (precision == Precision.FP32) {
            download(src, out, count);
            return;
        }
        long tmp = cuda.memAlloc(count * 4L);
        try {
            kernels.convertToFloat(tmp, src, count, stream());
            download(tmp, out, count);
        } finally {
            cuda.memFree(tmp);
        }
    }

    private static final long STAGING_FLOATS = 16L << 20; // host<->device copies go through 64 MiB of native memory

    private void upload(long dst, float[] src) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(Math.min(src.length, STAGING_FLOATS) * 4L, 64);
            for (long done = 0; done < src.length; ) {
                int chunk = (int) Math.min(STAGING_FLOATS, src.length - done);
                MemorySegment.copy(src, (int) done, staging, JAVA_FLOAT, 0, chunk);
                cuda.memcpyHtoD(dst + done * 4, staging, chunk * 4L);
                done += chunk;
            }
        }
    }

    private void download(long src, float[] dst, long count) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate(Math.max(1, Math.min(count, STAGING_FLOATS)) * 4L, 64);
            for (long done = 0; done < count; ) {
                int chunk = (int) Math.min(STAGING_FLOATS, count - done);
                cuda.memcpyDtoH(staging, src + done * 4, chunk * 4L);
                MemorySegment.copy(staging, JAVA_FLOAT, 0, dst, (int) done, chunk);
                done += chunk;
            }
        }
    }

    private void uploadInts(long dst, int[] src, int count) {
        if (count == 0) return;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment staging = arena.allocate((long) count * 4, 64);
            MemorySegment.copy(src, 0, staging, JAVA_INT, 0, count);
            cuda.memcpyHtoD(dst, staging, (long) count * 4);
        }
    }

    private float[] downloadFloats(long src, int count) {
        float[] out = new float[count];
        download(src, out, count);
        return out;
    }

    // -------------------------------------------------------------------------------------------------------------
    // forward

    /**
     * Forward pass over B sequences of T tokens. With targets, returns the mean cross-entropy loss (and keeps what
     * backward needs); without, returns -1 and only the logits are meaningful.
     *
     * @param inputs  (B, T) token ids in [0, V), row-major
     * @param targets (B, T) next-token ids in [0, V), or null
     */
    public float forward(int[] inputs, int[] targets, int B, int T) {
        bind();
        int V = config.vocabSize(), Vp = config.paddedVocabSize(), L = config.numLayers(), C = config.channels();
        if (B <= 0 || T <= 0 || T > config.maxSeqLen())
            throw new LlmcException("batch " + B + " x sequence " + T + ": T must be in 1.." + config.maxSeqLen());
        int BT = B * T;
        validateTokens("inputs", inputs, BT, V);
        if (targets != null) validateTokens("targets", targets, BT, V);
        ensureActivations(B, T);

        uploadInts(acts.inputs().address(), inputs, BT);
        lastBuckets = EncoderBuckets.of(inputs, BT);
        lastTargets = targets == null ? null : java.util.Arrays.copyOf(targets, BT);
        if (targets != null) uploadInts(acts.targets().address(), targets, BT);

        long btc = (long) BT * C;
        // encoded = wte[inputs] + wpe                                               (B,T,C)
        kernels.encoderForward(
                acts.encoded().address(), acts.inputs().address(), param(WTE), param(WPE), B, T, C, stream());

        long scratch = acts.scratch().address();
        for (int l = 0; l < L; l++) {
            var a = acts.layer(l);
            // layer 0 normalises the embeddings; later layers got ln1 from the previous layer's fused kernel
            if (l == 0)
                layernormForward(a.ln1(), a.ln1Mean(), a.ln1Rstd(), a.residual(), param(LN1W, l), param(LN1B, l), BT);
            matmulForward(a.qkv(), a.ln1(), param(QKVW, l), param(QKVB, l), BT, C, 3 * C); // (B,T,3C)
            attentionForward(a, B, T); // (B,T,C)
            matmulForward(scratch, a.atty(), param(ATTPROJW, l), param(ATTPROJB, l), BT, C, C);
            // residual2 = residual + attproj; ln2 = layernorm(residual2)
            kernels.fusedResidualLayernormForward(
                    a.residual2(),
                    a.ln2(),
                    a.ln2Mean(),
                    a.ln2Rstd(),
                    a.residual(),
                    scratch,
                    param(LN2W, l),
                    param(LN2B, l),
                    BT,
                    C,
                    stream());
            matmulForward(a.fch(), a.ln2(), param(FCW, l), param(FCB, l), BT, C, 4 * C); // (B,T,4C)
            kernels.geluForward(a.fchGelu(), a.fch(), 4 * btc, stream());
            matmulForward(scratch, a.fchGelu(), param(FCPROJW, l), param(FCPROJB, l), BT, 4 * C, C);
            // residual3 = residual2 + fcproj; then the next LayerNorm: ln1 of layer l+1, or lnf after the last layer
            boolean last = l == L - 1;
            var next = last ? null : acts.layer(l + 1);
            long nextLn = last ? acts.lnf().address() : next.ln1();
            long nextMean = last ? acts.lnfMean().address() : next.ln1Mean();
            long nextRstd = last ? acts.lnfRstd().address() : next.ln1Rstd();
            long nextW = last ? param(LNFW) : param(LN1W, l + 1), nextB = last ? param(LNFB) : param(LN1B, l + 1);
            kernels.fusedResidualLayernormForward(
                    a.residual3(), nextLn, nextMean, nextRstd, a.residual2(), scratch, nextW, nextB, BT, C, stream());
        }
        // logits = lnf wte^T                                                          (B,T,Vp)
        long logits = acts.logits().address(), losses = acts.losses().address();
        matmulForward(logits, acts.lnf().address(), param(WTE), 0, BT, C, Vp);
        if (targets == null) return -1.0f;
        kernels.fusedClassifier(logits, losses, acts.targets().address(), 0.0f, BT, V, Vp, false, stream());
        double sum = 0;
        for (float loss : downloadFloats(losses, BT)) sum += loss;
        return (float) (sum / BT);
    }

    /** The per-position losses (B*T) of the last forward with targets, copied down from the GPU. */
    public float[] tokenLosses() {
        if (acts == null) throw new IllegalStateException("no forward with targets yet");
        return downloadFloats(acts.losses().address(), batchSize * seqLen);
    }

    private static void validateTokens(String what, int[] tokens, int count, int vocab) {
        if (tokens.length < count)
            throw new LlmcException(what + ": expected B*T = " + count + " tokens, found " + tokens.length);
        for (int i = 0; i < count; i++)
            if (tokens[i] < 0 || tokens[i] >= vocab)
                throw new LlmcException(
                        what + "[" + i + "]: token id must be in [0, " + vocab + "), found " + tokens[i]);
    }

    private void ensureActivations(int B, int T) {
        if (acts != null && B == batchSize && T == seqLen) return;
        boolean flash = options.attention() == Attention.FLASH;
        var plan = Activations.plan(config, B, T, precision, flash, options.recompute());
        acts = null;
        // grow; a smaller shape (a B=1 sample between steps) reuses the memory
        if (plan.totalBytes() > actsCapacity) {
            if (actsPtr != 0) cuda.memFree(actsPtr);
            actsPtr = 0;
            actsCapacity = 0;
            actsPtr = cuda.memAlloc(plan.totalBytes());
            actsCapacity = plan.totalBytes();
        }
        cuda.memsetD8(actsPtr, (byte) 0, plan.totalBytes());
        acts = plan.at(actsPtr);
        batchSize = B;
        seqLen = T;
    }

    private void requireActivations() {
        if (acts == null) throw new IllegalStateException("call forward first");
    }

    private void layernormForward(long out, long mean, long rstd, long inp, long weight, long bias, int rows) {
        kernels.layernormForward(out, mean, rstd, inp, weight, bias, rows, config.channels(), stream());
    }

    /** out (rows, outCols) = inp (rows, inCols) weight^T + bias; weight (outCols, inCols); bias 0 for none. */
    private void matmulForward(long out, long inp, long weight, long bias, int rows, int inCols, int outCols) {
        blas.matmul(
                CublasLt.linearForward(rows, inCols, outCols),
                precision,
                options.allowTf32(),
                out,
                weight,
                inp,
                bias,
                false);
    }

    /** atty (B,T,C) of layer a from its qkv (B,T,3C); keeps lse (flash) or att (plain) for the backward pass. */
    private void attentionForward(Activations.Layer a, int B, int T) {
        int C = config.channels(), NH = config.numHeads();
        if (options.attention() == Attention.FLASH)
            kernels.flashAttentionForward(a.atty(), a.lse(), a.qkv(), B, T, C, NH, stream());
        else kernels.attentionForwardPlain(a.atty(), a.att(), a.qkv(), B, T, C, NH, stream());
    }

    // -------------------------------------------------------------------------------------------------------------
    // backward

    /** Backward of the last forward (which must have had targets), for a single micro-batch per step. */
    public void backward() {
        backward(1);
    }

    /**
     * Backward of the last forward. Parameter gradients ADD to what is there (call {@link #zeroGrad()} once per
     * optimizer step); the loss gradient is 1/(B*T*gradAccumSteps) so that the accumulated gradient is that of the
     * mean loss over all micro-batches (times the loss scale for fp16).
     */
    public void backward(int gradAccumSteps) {
        bind();
        requireActivations();
        if (lastTargets == null) throw new IllegalStateException("backward needs a forward pass with targets");
        if (gradAccumSteps < 1) throw new IllegalArgumentException("gradAccumSteps must be >= 1: " + gradAccumSteps);
        // a multi-GPU run reduces the gradients during the backward of the step's last micro-step (llm.c's rule)
        boolean reduce = reduction != null && ++microStepsSinceZero == gradAccumSteps;
        int B = batchSize, T = seqLen, BT = B * T, C = config.channels(), L = config.numLayers();
        int V = config.vocabSize(), Vp = config.paddedVocabSize();
        long btc = (long) BT * C;
        float lossScale = lossScaler != null ? lossScaler.scale() : 1.0f;
        float dloss = lossScale / ((float) BT * gradAccumSteps);

        long dresidual = acts.dresidual().address(), dbtc = acts.dbtc().address();
        long dbt4c = acts.dbt4c().address(), dqkv = acts.dqkv().address();
        cuda.memsetD8(dresidual, (byte) 0, btc * x);

        // dlogits = (softmax - onehot) * dloss, in place of the logits
        long logits = acts.logits().address();
        kernels.fusedClassifier(
                logits, acts.losses().address(), acts.targets().address(), dloss, BT, V, Vp, true, stream());
        // lm head (tied to wte): dlnf = dlogits wte, dwte += dlogits^T lnf
        matmulBackward(dbtc, grad(WTE), 0, logits, acts.lnf().address(), param(WTE), BT, C, Vp);
        layernormBackward(
                dresidual,
                grad(LNFW),
                grad(LNFB),
                dbtc,
                acts.residual3().layer(L - 1),
                param(LNFW),
                acts.lnfMean().address(),
                acts.lnfRstd().address(),
                BT);

        for (int l = L - 1; l >= 0; l--) {
            // dresidual holds d(residual3[l]); the residual add passes it unchanged to both of its inputs
            var a = acts.layer(l);

            // MLP: fcproj, gelu, fc
            if (options.recompute() >= 1) kernels.geluForward(a.fchGelu(), a.fch(), 4 * btc, stream());
            matmulBackward(
                    dbt4c, grad(FCPROJW, l), grad(FCPROJB, l), dresidual, a.fchGelu(), param(FCPROJW, l), BT, 4 * C, C);
            kernels.geluBackwardInplace(dbt4c, a.fch(), 4 * btc, stream());
            if (options.recompute() >= 2)
                layernormForward(a.ln2(), a.ln2Mean(), a.ln2Rstd(), a.residual2(), param(LN2W, l), param(LN2B, l), BT);
            matmulBackward(dbtc, grad(FCW, l), grad(FCB, l), dbt4c, a.ln2(), param(FCW, l), BT, C, 4 * C);
            // ln2: dresidual (now d residual2) += LayerNorm backward
            layernormBackward(
                    dresidual,
                    grad(LN2W, l),
                    grad(LN2B, l),
                    dbtc,
                    a.residual2(),
                    param(LN2W, l),
                    a.ln2Mean(),
                    a.ln2Rstd(),
                    BT);

            // attention: attproj, attention, qkv
            matmulBackward(
                    dbtc, grad(ATTPROJW, l), grad(ATTPROJB, l), dresidual, a.atty(), param(ATTPROJW, l), BT, C, C);
            attentionBackward(dqkv, dbtc, a, B, T);
            if (options.recompute() >= 2)
                layernormForward(a.ln1(), a.ln1Mean(), a.ln1Rstd(), a.residual(), param(LN1W, l), param(LN1B, l), BT);
            matmulBackward(dbtc, grad(QKVW, l), grad(QKVB, l), dqkv, a.ln1(), param(QKVW, l), BT, C, 3 * C);
            // ln1: dresidual (now d residual of this layer) += LayerNorm backward
            layernormBackward(
                    dresidual,
                    grad(LN1W, l),
                    grad(LN1B, l),
                    dbtc,
                    a.residual(),
                    param(LN1W, l),
                    a.ln1Mean(),
                    a.ln1Rstd(),
                    BT);
            // layer l's 12 parameter gradients are final: NCCL averages them on the side stream from here
            if (reduce) reduction.layerDone(l);
        }

        // encoder: dwte[token] += dresidual at each of its positions (bucketed, no atomics); dwpe[t] += sum over b
        EncoderBuckets buckets = lastBuckets;
        uploadInts(acts.bucketTokens().address(), buckets.tokens(), buckets.numBuckets());
        uploadInts(acts.bucketStarts().address(), buckets.starts(), buckets.numBuckets() + 1);
        uploadInts(acts.bucketPositions().address(), buckets.positions(), BT);
        kernels.encoderBackwardWte(
                grad(WTE),
                dresidual,
                acts.bucketTokens().address(),
                acts.bucketStarts().address(),
                acts.bucketPositions().address(),
                buckets.numBuckets(),
                C,
                stream());
        kernels.encoderBackwardWpe(grad(WPE), dresidual, B, T, C, stream());
        if (reduce) reduction.backwardDone(); // wte, wpe, lnfw, lnfb; then main waits for the side stream
    }

    /**
     * dinp = dout weight (overwrites), dweight += dout^T inp, dbias += column sums of dout (if bias != 0).
     * dout (rows, outCols), inp (rows, inCols), weight (outCols, inCols).
     */
    private void matmulBackward(
            long dinp, long dweight, long dbias, long dout, long inp, long weight, int rows, int inCols, int outCols) {
        blas.matmul(
                CublasLt.linearBackwardInput(rows, inCols, outCols),
                precision,
                options.allowTf32(),
                dinp,
                weight,
                dout,
                0,
                false);
        blas.matmul(
                CublasLt.linearBackwardWeight(rows, inCols, outCols),
                precision,
                options.allowTf32(),
                dweight,
                inp,
                dout,
                0,
                true);
        if (dbias != 0) kernels.biasBackward(dbias, acts.partials().address(), dout, rows, outCols, stream());
    }

    /** dinp += LayerNorm backward; dweight, dbias += their deterministic column sums. */
    private void layernormBackward(
            long dinp, long dweight, long dbias, long dout, long inp, long weight, long mean, long rstd, int rows) {
        kernels.layernormBackward(
                dinp,
                dweight,
                dbias,
                acts.partials().address(),
                dout,
                inp,
                weight,
                mean,
                rstd,
                rows,
                config.channels(),
                stream());
    }

    /** dqkv (B,T,3C) of layer a from datty (B,T,C). */
    private void attentionBackward(long dqkv, long datty, Activations.Layer a, int B, int T) {
        int C = config.channels(), NH = config.numHeads();
        if (options.attention() == Attention.FLASH)
            kernels.flashAttentionBackward(
                    dqkv, acts.attD().address(), datty, a.atty(), a.qkv(), a.lse(), B, T, C, NH, stream());
        else
            kernels.attentionBackwardPlain(
                    dqkv, acts.dpreatt().address(), datty, a.qkv(), a.att(), B, T, C, NH, stream());
    }

    /** Zeroes all parameter gradients (start of each optimizer step). */
    public void zeroGrad() {
        bind();
        microStepsSinceZero = 0;
        cuda.memsetD8(grads, (byte) 0, layout.numParameters() * x);
    }

    // -------------------------------------------------------------------------------------------------------------
    // optimizer

    /**
     * Global L2 norm of all gradients (of the unscaled loss), deterministic. For fp16 an overflow shows as inf/NaN.
     */
    public float gradNorm() {
        bind();
        requireActivations();
        long n = layout.numParameters();
        long norm = acts.norm().address();
        kernels.normSquared(norm, grads, n, stream());
        float squared = downloadFloats(norm + Launch.NORM_BLOCKS * 4L, 1)[0];
        float result = (float) Math.sqrt(squared);
        return lossScaler != null ? result / lossScaler.scale() : result;
    }

    /**
     * ZeRO-1: the sum of the squared gradients of this rank's pieces (each averaged by the reduce-scatter), in the
     * same two deterministic stages as {@link #gradNorm()}, per piece, then over the pieces. Summed over the ranks
     * it is the squared global norm.
     */
    public double gradientSquareSum() {
        bind();
        requireActivations();
        if (shard.isWhole()) {
            double norm = gradNorm();
            return norm * norm;
        }
        long norm = acts.norm().address();
        var pieces = shard.pieces();
        for (int i = 0; i < pieces.size(); i++) {
            var piece = pieces.get(i);
            kernels.normSquaredPartials(norm, grads + piece.parameterOffset() * x, piece.count(), stream());
            kernels.sumPartials(pieceSums + i * 4L, norm, Launch.NORM_BLOCKS, stream());
        }
        kernels.sumPartials(pieceSums + pieces.size() * 4L, pieceSums, pieces.size(), stream());
        return downloadFloats(pieceSums + pieces.size() * 4L, 1)[0];
    }

    /** True if any gradient is inf or NaN (the fp16 overflow check). */
    public boolean gradientsHaveInfOrNan() {
        bind();
        requireActivations();
        long n = layout.numParameters(), flag = acts.flag().address();
        cuda.memsetD8(flag, (byte) 0, 4);
        kernels.checkFinite(flag, grads, n, stream());
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(JAVA_INT);
            cuda.memcpyDtoH(host, flag, 4);
            return host.get(JAVA_INT, 0) != 0;
        }
    }

    /**
     * AdamW step t (1-based) on every parameter, gradients multiplied by {@code gradScale} (norm clipping).
     * Weight decay applies to the 2-D tensors only (wte, wpe and the four matmul weights), as in llm.c.
     * With fp16 the gradients are first checked for inf/NaN: on overflow the step is skipped, the loss scale
     * halves, and this returns false.
     *
     * @return whether the parameters were updated
     */
    public boolean update(
            float learningRate, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {
        return update(learningRate, beta1, beta2, eps, weightDecay, true, gradScale, t);
    }

    /**
     * AdamW as {@link #update(float, float, float, float, float, float, int)}, with weight decay on the 2-D tensors
     * only ({@code decayMatricesOnly}, the trainer's rule) or on every tensor (llm.c's CPU test rule).
     */
    public boolean update(
            float learningRate,
            float beta1,
            float beta2,
            float eps,
            float weightDecay,
            boolean decayMatricesOnly,
            float gradScale,
            int t) {
        bind();
        if (t < 1) throw new IllegalArgumentException("AdamW step t is 1-based, found " + t);
        float scale = gradScale;
        if (lossScaler != null) {
            float lossScale = lossScaler.scale(); // the scale these gradients were computed with
            if (!lossScaler.update(gradientsHaveInfOrNan())) return false;
            scale /= lossScale;
        }
        float beta1Correction = (float) (1.0 - Math.pow(beta1, t));
        float beta2Correction = (float) (1.0 - Math.pow(beta2, t));
        rngStateBeforeLastUpdate = rng.state();
        // one seed per tensor per step, drawn for every tensor whichever pieces this rank owns; one launch per run of
        // the shard (the whole model: one per tensor). Each element's stochastic rounding depends on its index in its
        // tensor, so that ZeRO-1's pieces round exactly as one launch over the tensor would
        int[] seeds = new int[NUM_TENSORS];
        for (int tensor = 0; tensor < NUM_TENSORS; tensor++) seeds[tensor] = (int) rng.nextInt32();
        for (var run : shardRuns) {
            long n = run.count(), at = run.parameterOffset(), state = run.stateOffset();
            float decay = !decayMatricesOnly || ParameterLayout.decays(run.tensor()) ? weightDecay : 0.0f;
            kernels.adamwUpdate(
                    params + at * x,
                    master == 0 ? 0L : master + state * 4,
                    grads + at * x,
                    adamM + state * 4,
                    adamV + state * 4,
                    n,
                    learningRate,
                    beta1,
                    beta2,
                    beta1Correction,
                    beta2Correction,
                    eps,
                    decay,
                    scale,
                    seeds[run.tensor()],
                    run.indexInTensor(),
                    stream());
        }
        if (reduction != null && !shard.isWhole())
            reduction.allGatherParameters(params); // ZeRO-1: everyone's pieces to all
        return true;
    }

    // -------------------------------------------------------------------------------------------------------------
    // many GPUs

    /**
     * ZeRO-1: from now on keep AdamW's m, v and the fp32 master weights for this rank's pieces only (N/P floats each,
     * in the shard's order) and update only those parameters. Call once, before the first update: the moments start
     * at zero, the master weights keep their values.
     */
    public void shardOptimizerState(OptimizerShard newShard) {
        bind();
        if (newShard.isWhole()) return;
        if (!shard.isWhole()) throw new IllegalStateException("the optimizer state is already sharded");
        if (lossScaler != null)
            throw new LlmcException(
                    "-z 1 (ZeRO-1) with fp16 is not supported: the loss scaler's overflow check needs every gradient; use bf16");
        long count = newShard.count();
        long oldMaster = master;
        cuda.memFree(adamM);
        cuda.memFree(adamV);
        adamM = adamV = 0; // freed: if an allocation below fails, close() must not free them again
        adamM = cuda.memAlloc(count * 4L);
        adamV = cuda.memAlloc(count * 4L);
        cuda.memsetD8(adamM, (byte) 0, count * 4L);
        cuda.memsetD8(adamV, (byte) 0, count * 4L);
        shard = newShard;
        shardRuns = newShard.runs(layout.sizes());
        pieceSums = cuda.memAlloc((newShard.pieces().size() + 1) * 4L);
        if (oldMaster != 0) {
            master = 0;
            master = cuda.memAlloc(count * 4L);
            copyPiecesToMaster(oldMaster);
            cuda.memFree(oldMaster);
        }
    }

    /**
     * A multi-GPU run: from now on the backward of each step's last micro-step averages the gradients across the
     * ranks through {@code collectives}, layer by layer on a side stream (see {@link GradientReduction}), and under
     * ZeRO-1 (a {@code shard} of several processes, already applied by {@link #shardOptimizerState}) the update
     * all-gathers the parameters.
     */
    public void reduceGradientsDuring(DeviceCollectives collectives, OptimizerShard expectedShard) {
        bind();
        if (reduction != null) throw new IllegalStateException("gradient reduction is already set up");
        if (!expectedShard.isWhole() && shard != expectedShard)
            throw new IllegalStateException("call shardOptimizerState(shard) first");
        sideStream = cuda.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
        layerDone = cuda.eventCreate(CudaDriver.EVENT_DISABLE_TIMING);
        reduced = cuda.eventCreate(CudaDriver.EVENT_DISABLE_TIMING);
        var streams = new GradientReduction.Streams() {
            @Override
            public void record(MemorySegment event, MemorySegment stream) {
                cuda.eventRecord(event, stream);
            }

            @Override
            public void wait(MemorySegment stream, MemorySegment event) {
                cuda.streamWaitEvent(stream, event);
            }
        };
        reduction = new GradientReduction(
                collectives, streams, layout, precision, shard, grads, stream(), sideStream, layerDone, reduced);
    }

    /** Waits for the GPU (kernel errors surface here). */
    public void synchronize() {
        bind();
        cuda.synchronize();
    }

    private void bind() {
        if (closed) throw new IllegalStateException("model is closed");
        cuda.setCurrentContext(context);
    }

    @Override
    public void close() {
        if (closed) return;
        bind();
        closed = true;
        try {
            if (sideStream != null) { // nothing may still run on the side stream when its memory goes
                cuda.synchronize();
                cuda.eventDestroy(layerDone);
                cuda.eventDestroy(reduced);
                cuda.streamDestroy(sideStream);
            }
            if (actsPtr != 0) cuda.memFree(actsPtr);
            for (long p : new long[] {params, grads, master, adamM, adamV, pieceSums}) if (p != 0) cuda.memFree(p);
            blas.close();
        } finally {
            module.close(); // the primary context itself stays: retained once per process (CudaDriver.primaryContext)
        }
    }
}
