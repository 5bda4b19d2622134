package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.DeviceCollectives;
import dev.llmc4j.distributed.MultiGpuConfig;
import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.distributed.NcclCommunicator;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.GPT2Init;
import dev.llmc4j.model.OptimizerShard;
import dev.llmc4j.model.ParameterSlice;
import dev.llmc4j.train.DeviceGradients;
import dev.llmc4j.train.MixedPrecisionState;
import dev.llmc4j.train.ShardedOptimizer;
import dev.llmc4j.train.TokenGenerator;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.List;

/**
 * {@link GPT2Cuda} as the {@link dev.llmc4j.train.Trainer} sees a model: the same training loop, checkpoints and
 * resume as on the CPU. What lives on the GPU stays there; the host sees copies, made on demand:
 * <ul>
 *   <li>checkpoints: the floatX parameters widened to fp32, written as llm.c does: version 5 (bf16) for a bf16 (or
 *       fp16) model, version 3 (fp32) for an fp32 one;</li>
 *   <li>optimizer state: {@link #adamFirstMoments()} downloads m into a host buffer, {@link #loadAdamMoments}
 *       uploads it again on resume; the fp32 master weights ({@link #masterWeights()}) likewise, and the state of
 *       the stochastic-rounding rng, so that a resumed bf16 run continues bit for bit;</li>
 *   <li>generation: no KV cache; each new token reruns the forward pass over the whole prefix (B = 1, T rounded up
 *       to 64) and copies one row of logits to the host, as llm.c's train_gpt2.cu samples.</li>
 * </ul>
 */
public final class GPT2CudaModel implements TrainableModel, ShardedOptimizer, DeviceGradients, MixedPrecisionState {

    private final GPT2Cuda gpu;
    private final GPT2Config config;
    private final Arena hostArena = Arena.ofShared(); // host copies of the moments and parameters, made on first use
    private MemorySegment hostFirstMoments, hostSecondMoments, hostMasterWeights, hostParameters;

    private GPT2CudaModel(GPT2Cuda gpu) {
        this.gpu = gpu;
        this.config = gpu.config();
    }

    /**
     * Throws {@code LlmcException("no CUDA device: ...")} unless the CUDA driver loads and sees a GPU: the one line
     * a user gets for {@code --device cuda} on a machine without one.
     */
    public static void requireDevice() {
        int count;
        try {
            count = CudaDriver.get().deviceCount();
        } catch (LlmcException e) {
            throw new LlmcException("no CUDA device: " + e.getMessage(), e);
        } catch (RuntimeException | LinkageError e) { // FFM binding problems: say what, not where
            throw new LlmcException("no CUDA device: cannot use the CUDA driver (" + e + ")", e);
        }
        if (count == 0) throw new LlmcException("no CUDA device: the CUDA driver loads but sees 0 GPUs");
    }

    /** llm.c's (and PyTorch's, seed 42) random init, computed on the host in fp32 and uploaded. */
    public static GPT2CudaModel randomInit(GPT2Config config, GPT2Cuda.Options options) {
        return randomInit(config, options, 0);
    }

    /** Random init on GPU {@code deviceOrdinal} of this machine (a multi-GPU run's local device). */
    public static GPT2CudaModel randomInit(GPT2Config config, GPT2Cuda.Options options, int deviceOrdinal) {
        requireDevice();
        var gpu = new GPT2Cuda(config, options, deviceOrdinal);
        try (var arena = Arena.ofConfined()) {
            MemorySegment fp32 = arena.allocate(config.numParameters() * Float.BYTES, 64);
            GPT2Init.randomInit(config, fp32);
            gpu.loadParameters(fp32);
            return new GPT2CudaModel(gpu);
        } catch (RuntimeException e) {
            gpu.close();
            throw e;
        }
    }

    /**
     * Loads an llm.c checkpoint: version 5 (bf16) goes to a bf16 model as it is; version 3 (fp32) is rounded to
     * the model's precision on the GPU; a version 5 file for an fp32/fp16 model is widened on the host first.
     */
    public static GPT2CudaModel fromCheckpoint(Path file, GPT2Cuda.Options options) {
        return fromCheckpoint(file, options, 0);
    }

    /** An llm.c checkpoint on GPU {@code deviceOrdinal} of this machine (a multi-GPU run's local device). */
    public static GPT2CudaModel fromCheckpoint(Path file, GPT2Cuda.Options options, int deviceOrdinal) {
        requireDevice();
        try (var arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            var gpu = new GPT2Cuda(checkpoint.config(), options, deviceOrdinal);
            try {
                if (checkpoint.version() == GPT2Checkpoint.VERSION_FP32) {
                    gpu.loadParameters(checkpoint.rawParameters());
                } else if (options.precision() == Precision.BF16) {
                    gpu.loadParametersBf16(checkpoint.rawParameters());
                } else {
                    MemorySegment fp32 = arena.allocate(checkpoint.numParameters() * Float.BYTES, 64);
                    checkpoint.readParametersInto(fp32);
                    gpu.loadParameters(fp32);
                }
                return new GPT2CudaModel(gpu);
            } catch (RuntimeException e) {
                gpu.close();
                throw e;
            }
        }
    }

    /**
     * NCCL for a multi-GPU run: {@code -Dllmc.nccl.lib} / {@code $LLMC_NCCL_LIB}, the dynamic loader's
     * libnccl.so.2, then CUDA's folders and the lib folders of NVIDIA's Python wheels (nvidia/nccl/lib), which on a
     * PyTorch-only machine hold the only copy. The error names every place tried.
     */
    public static Nccl loadNccl() {
        return Nccl.load(ncclCandidates());
    }

    static List<String> ncclCandidates() {
        String override = System.getProperty("llmc.nccl.lib", System.getenv("LLMC_NCCL_LIB"));
        return NativeLibraries.candidates(override, List.of("libnccl.so.2"), NativeLibraries.cudaLibraryDirectories());
    }

    /** The GPU model underneath (for the parity check and benchmarks). */
    public GPT2Cuda gpu() {
        return gpu;
    }

    public GPT2Config config() {
        return config;
    }

    /** llm.c's rule: version 3 when the model computes in fp32, version 5 (bf16) otherwise. */
    public int checkpointVersion() {
        return checkpointVersion(gpu.precision());
    }

    static int checkpointVersion(Precision precision) {
        return precision == Precision.FP32 ? GPT2Checkpoint.VERSION_FP32 : GPT2Checkpoint.VERSION_BF16;
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
    public float forward(int[] inputs, int[] targets, int B, int T) {
        return gpu.forward(inputs, targets, B, T);
    }

    @Override
    public float[] tokenLosses() {
        return gpu.tokenLosses();
    }

    @Override
    public void zeroGrad() {
        gpu.zeroGrad();
    }

    @Override
    public void backward(int microSteps) {
        gpu.backward(microSteps);
    }

    @Override
    public float gradientNorm() {
        return gpu.gradNorm();
    }

    /** The gradients stay on the GPU: NCCL averages them there, during the backward (see {@link GradientReduction}). */
    @Override
    public Nccl.DataType deviceGradientType() {
        return ncclType(gpu.precision());
    }

    /** ZeRO-1 cuts every layer of every tensor, as llm.c does. */
    @Override
    public List<ParameterSlice> parameterSlices() {
        return config.parameterSlices();
    }

    /** ZeRO-1: m, v and the fp32 master weights of this rank's pieces only (see {@link GPT2Cuda#shardOptimizerState}). */
    @Override
    public void shardOptimizerState(OptimizerShard shard) {
        gpu.shardOptimizerState(shard);
    }

    @Override
    public double gradientSquareSum(OptimizerShard shard) {
        return gpu.gradientSquareSum();
    }

    @Override
    public void reduceGradientsDuringBackward(DeviceCollectives collectives, OptimizerShard shard) {
        gpu.reduceGradientsDuring(collectives, shard);
    }

    /** floatX parameters and gradients, fp32 m and v (and master weights, if kept) of the shard. */
    @Override
    public long trainingStateBytes(OptimizerShard shard) {
        int fp32Copies = ParameterLayout.keepsMasterWeights(
                        gpu.precision(), gpu.options().masterWeights())
                ? 3
                : 2;
        return 2 * numParameters() * gpu.precision().bytes() + fp32Copies * shard.count() * 4L;
    }

    /** NCCL's name for the model's storage type: the gradients are all-reduced as they are stored. */
    static Nccl.DataType ncclType(Precision precision) {
        return switch (precision) {
            case BF16 -> Nccl.DataType.BFLOAT16;
            case FP16 -> Nccl.DataType.FLOAT16;
            case FP32 -> Nccl.DataType.FLOAT32;
        };
    }

    /**
     * This process's NCCL communicator for a multi-GPU run, on this model's GPU and stream: exchanges the NCCL id
     * ({@code gpu.init()}), joins the other ranks, and keeps {@code mpi} (or null) for abort and finalize.
     */
    public NcclCommunicator connect(MultiGpuConfig multiGpu, Nccl nccl, Communicator mpi) {
        return NcclCommunicator.open(multiGpu, nccl, new CudaNcclDevice(gpu), gpu.stream(), mpi);
    }

    /** AdamW on the GPU; with fp16 an overflowing step is skipped (the loss scaler halves) rather than applied. */
    @Override
    public void update(
            float learningRate, float beta1, float beta2, float eps, float weightDecay, float gradScale, int t) {
        gpu.update(learningRate, beta1, beta2, eps, weightDecay, gradScale, t);
    }

    /** A host copy of the GPU's first moments, downloaded by this call (see {@link TrainableModel#adamFirstMoments()}). */
    @Override
    public MemorySegment adamFirstMoments() {
        downloadMoments();
        return hostFirstMoments;
    }

    @Override
    public MemorySegment adamSecondMoments() {
        downloadMoments();
        return hostSecondMoments;
    }

    private void downloadMoments() {
        if (hostFirstMoments == null) {
            long bytes = gpu.optimizerStateCount() * Float.BYTES;
            hostFirstMoments = hostArena.allocate(bytes, 64);
            hostSecondMoments = hostArena.allocate(bytes, 64);
        }
        gpu.copyAdamMomentsToHost(hostFirstMoments, hostSecondMoments);
    }

    /** Uploads the moments to the GPU (resume). */
    @Override
    public void loadAdamMoments(MemorySegment first, MemorySegment second) {
        gpu.loadAdamMoments(nativeCopy(first), nativeCopy(second));
    }

    /** A host copy of the fp32 master weights (the shard's under ZeRO-1), downloaded by this call; null if the model keeps none. */
    @Override
    public MemorySegment masterWeights() {
        if (!gpu.keepsMasterWeights()) return null;
        if (hostMasterWeights == null)
            hostMasterWeights = hostArena.allocate(gpu.optimizerStateCount() * Float.BYTES, 64);
        gpu.copyMasterWeightsToHost(hostMasterWeights);
        return hostMasterWeights;
    }

    /** Uploads the master weights to the GPU (resume). */
    @Override
    public void loadMasterWeights(MemorySegment weights) {
        gpu.loadMasterWeights(nativeCopy(weights));
    }

    @Override
    public long optimizerRngState() {
        return gpu.roundingRngState();
    }

    @Override
    public long optimizerRngStateBeforeLastUpdate() {
        return gpu.roundingRngStateBeforeLastUpdate();
    }

    @Override
    public void restoreOptimizerRng(long state, long stateBeforeLastUpdate) {
        gpu.restoreRoundingRng(state, stateBeforeLastUpdate);
    }

    /** fp16's loss scaler (the scale and its good steps), for the state file; null for bf16 and fp32. */
    @Override
    public LossScale lossScale() {
        var scaler = gpu.lossScaler();
        return scaler == null ? null : new LossScale(scaler.scale(), scaler.goodSteps());
    }

    @Override
    public void restoreLossScale(LossScale lossScale) {
        var scaler = gpu.lossScaler();
        if (scaler != null) scaler.restore(lossScale.scale(), lossScale.goodSteps());
    }

    private MemorySegment nativeCopy(MemorySegment segment) {
        if (segment.isNative()) return segment;
        MemorySegment copy = hostArena.allocate(segment.byteSize(), 64);
        copy.copyFrom(segment);
        return copy;
    }

    /** Writes the parameters the GPU computes with (not the fp32 master weights), as llm.c's checkpoints hold. */
    @Override
    public void saveCheckpoint(Path file) {
        if (hostParameters == null) hostParameters = hostArena.allocate(numParameters() * Float.BYTES, 64);
        gpu.copyParametersToHost(hostParameters);
        GPT2Checkpoint.write(file, config, hostParameters, checkpointVersion());
    }

    @Override
    public TokenGenerator generator() {
        return (prompt, count, sampler, onToken) -> {
            if (prompt.length == 0) throw new LlmcException("the prompt is empty: give at least one token");
            int maxT = config.maxSeqLen();
            if (prompt.length + count > maxT)
                throw new LlmcException("prompt (%d tokens) plus %d new tokens exceed the model's context length %d"
                        .formatted(prompt.length, count, maxT));
            int[] tokens = new int[maxT]; // positions past the prefix stay 0: causal attention never sees them
            System.arraycopy(prompt, 0, tokens, 0, prompt.length);
            int length = prompt.length;
            float[] logits = new float[config.paddedVocabSize()];
            int[] generated = new int[count];
            for (int i = 0; i < count; i++) {
                int T = generationLength(length, maxT);
                gpu.forward(tokens, null, 1, T);
                gpu.copyLogitsRowToHost(length - 1, logits);
                int token = sampler.sample(logits, 0, config.vocabSize());
                generated[i] = token;
                tokens[length++] = token;
                onToken.accept(token);
            }
            return generated;
        };
    }

    /** The sequence length a generation forward runs at: the prefix rounded up to 64, so few shapes occur. */
    static int generationLength(int prefix, int maxT) {
        return Math.min(maxT, (prefix + 63) / 64 * 64);
    }

    /** MFU against the GPU's dense bf16 peak, for 16-bit models on a GPU whose peak we know; -1 otherwise. */
    @Override
    public double flopsUtilization(int seqLen, long tokens, double seconds) {
        if (gpu.precision() == Precision.FP32 || seconds <= 0) return -1;
        return PeakFlops.mfu(config, seqLen, tokens, seconds, gpu.deviceName());
    }

    @Override
    public void close() {
        try {
            gpu.close();
        } finally {
            hostArena.close();
        }
    }
}
