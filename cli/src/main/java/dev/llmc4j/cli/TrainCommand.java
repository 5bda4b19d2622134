package dev.llmc4j.cli;

import dev.llmc4j.cli.monitor.MonitorOptions;
import dev.llmc4j.data.DataLoader;
import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.MpiCommunicator;
import dev.llmc4j.distributed.MultiGpuConfig;
import dev.llmc4j.distributed.NcclCommunicator;
import dev.llmc4j.distributed.PeerWatch;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.gpt2.cuda.GPT2CudaModel;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.MemoryEstimate;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ./llmc train}: llm.c's trainer, with its short flags and readable long names. */
@Command(
        name = "train",
        sortOptions = false,
        description = {
            "Train GPT-2 (llm.c's train_gpt2 loop): AdamW, gradient accumulation, clipping at norm 1.0,",
            "LR schedules, validation, sampling, checkpoints and exact resume. Prepare data first: ./llmc data tinyshakespeare",
            "Recompute in backward (both devices): -r 0|1|2. On a GPU: --device cuda [--precision bf16|fp32|fp16] [--attention flash|plain].",
            "Several processes: mpirun -np 2 ./llmc train ... (each reads its slice of every batch; -z 1 shards AdamW's state)",
            "Several GPUs: mpirun -np 8 ./llmc train --device cuda ..., or -pn N -pr R -pi tcp -ps HOST (NCCL; -z 1 shards m, v, master weights)"
        })
public final class TrainCommand implements Callable<Integer> {

    @Mixin
    ModelOptions model;

    @Mixin
    DeviceOptions device;

    @Mixin
    DistributedOptions distributed;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-w", "--master-weights"},
            paramLabel = "0|1",
            defaultValue = "1",
            description = "cuda: keep fp32 master weights for AdamW with 16-bit storage (default: ${DEFAULT-VALUE})")
    int masterWeights;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-f", "--tf32"},
            paramLabel = "0|1",
            defaultValue = "1",
            description = "cuda: fp32 matmuls on TF32 tensor cores (default: ${DEFAULT-VALUE})")
    int tf32;

    @Option(
            names = {"-i", "--train-data"},
            paramLabel = "GLOB",
            description = "train shards (default: ${DEFAULT-VALUE})",
            defaultValue = "data/tinyshakespeare/tiny_shakespeare_train.bin")
    String trainPattern;

    @Option(
            names = {"-j", "--val-data"},
            paramLabel = "GLOB",
            description = "val shards (default: ${DEFAULT-VALUE})",
            defaultValue = "data/tinyshakespeare/tiny_shakespeare_val.bin")
    String valPattern;

    @Mixin
    TrainingOptions training;

    @Range(min = 1, max = 86400)
    @Option(
            names = "--peer-timeout",
            paramLabel = "SECONDS",
            defaultValue = "60",
            description =
                    "-pi tcp|fs: a rank silent this long (fs heartbeat, tcp pings) or not connected (tcp) counts as failed (default: ${DEFAULT-VALUE})")
    int peerTimeoutSeconds;

    @Option(
            names = "--tokenizer",
            paramLabel = "FILE",
            description = "gpt2_tokenizer.bin for printing samples (default: next to the train data)")
    Path tokenizer;

    @Mixin
    MonitorOptions monitor;

    @Override
    public Integer call() {
        var setup = distributed.setup(device.device() == DeviceOptions.Device.CUDA, MpiCommunicator.underMpirun());
        if (setup == DistributedOptions.Setup.NCCL_GPU) return trainOnGpus();
        distributed.trainOnCpu(comm -> {
            var config = trainingConfig(comm.size(), comm.rank());
            PrintStream out = DistributedOptions.rankZeroOut(comm.rank());
            if (comm.size() > 1 && device.device() != DeviceOptions.Device.CPU) // setup() sent GPU runs elsewhere
            throw new IllegalStateException("GPU training under MPI goes through trainOnGpus");
            MemoryEstimate memory = device.device() == DeviceOptions.Device.CPU ? checkMemory(config) : null;
            try (var gpt2 = buildModel(config);
                    var ui = monitor.open(
                            gpt2,
                            config,
                            "GPT-2 " + model.describe(),
                            MonitorOptions.gpt2TokenText(config.tokenizerFile()),
                            out)) {
                out.printf(
                        "[GPT-2] %s, %,d parameters, on %s%n", configOf(gpt2), gpt2.numParameters(), device.describe());
                var trainer = new Trainer(gpt2, config, out, null, comm, distributed.zeroStage, memory);
                training.attachHellaSwag(trainer, out);
                if (ui != null) trainer.listen(ui.monitor());
                var result = trainer.run();
                if (comm.rank() == 0) LossChart.writeIfOutput(config.outputDir(), result, "GPT-2 " + model.describe());
            }
        });
        return 0;
    }

    /**
     * One process of a multi-GPU run (llm.c's train_gpt2.cu with several GPUs), in this order:
     * <ol>
     * <li>MPI, if mpirun started us (rank and count, the NCCL id for -pi mpi, and MPI_Abort on an error);</li>
     * <li>the model, on GPU rank % -pg of this machine (its CUDA context becomes current);</li>
     * <li>NCCL: rank 0 makes the id, -pi hands it on, every rank joins (ncclCommInitRank);</li>
     * <li>with -pi tcp|fs, a {@link PeerWatch}: a rank that fails or dies makes the others stop, as MPI_Abort would;</li>
     * <li>the shared Trainer, whose DataParallel all-reduces the device gradients with NCCL (ncclAvg).</li>
     * </ol>
     */
    private Integer trainOnGpus() {
        Communicator mpi = distributed.openMpiIfStarted();
        MultiGpuConfig gpus = null;
        GPT2CudaModel gpt2 = null;
        NcclCommunicator comm = null;
        MonitorOptions.Session ui = null;
        try {
            gpus = distributed.multiGpu(mpi);
            var config = trainingConfig(gpus.numProcesses(), gpus.rank());
            PrintStream out = DistributedOptions.rankZeroOut(gpus.rank());
            gpt2 = buildCudaModel(config, gpus.localDevice());
            if (peerTimeoutSeconds < 1)
                throw new LlmcException("--peer-timeout: expected at least 1 second, found " + peerTimeoutSeconds);
            PeerWatch.removeLeftovers(gpus); // -pi fs: an earlier run's abort file must not stop this one
            comm = gpt2.connect(gpus, GPT2CudaModel.loadNccl(), mpi);
            comm.watchPeers(PeerWatch.start(gpus, Duration.ofSeconds(peerTimeoutSeconds), comm::abortCollectives));
            out.printf(
                    "[GPT-2] %s, %,d parameters, on %s (GPU %d of this machine, rank %d of %d)%n",
                    configOf(gpt2),
                    gpt2.numParameters(),
                    device.describe(),
                    gpus.localDevice(),
                    gpus.rank(),
                    gpus.numProcesses());
            var trainer = new Trainer(gpt2, config, out, comm, distributed.zeroStage);
            ui = monitor.open(
                    gpt2,
                    config,
                    "GPT-2 " + model.describe(),
                    MonitorOptions.gpt2TokenText(config.tokenizerFile()),
                    out);
            if (ui != null) trainer.listen(ui.monitor());
            training.attachHellaSwag(trainer, out);
            var result = trainer.run();
            if (ui != null) ui.close();
            if (gpus.rank() == 0) LossChart.writeIfOutput(config.outputDir(), result, "GPT-2 " + model.describe());
        } catch (RuntimeException | Error e) {
            int rank = gpus != null ? gpus.rank() : mpi != null ? mpi.rank() : distributed.rank;
            int size = gpus != null ? gpus.numProcesses() : mpi != null ? mpi.size() : distributed.numProcesses;
            if (!(e instanceof LlmcException)) e.printStackTrace();
            if (comm != null || (mpi != null && mpi.size() > 1)) { // peers wait in a collective: stop them (or us)
                System.err.println("error on rank %d of %d: %s%nrank %d: stopping (%s)"
                        .formatted(
                                rank,
                                size,
                                e.getMessage(),
                                rank,
                                mpi != null ? "MPI_Abort" : "telling the other ranks, ncclCommAbort, exit"));
                if (comm != null)
                    comm.abort(1, e.getMessage() != null ? e.getMessage() : e.toString()); // does not return
                mpi.abort(1);
            }
            if (ui != null) ui.close();
            if (gpt2 != null) gpt2.close();
            if (mpi != null) mpi.close();
            throw e;
        }
        comm.close(); // ncclCommDestroy while the model's context lives, then MPI_Finalize
        gpt2.close();
        return 0;
    }

    TrainingConfig trainingConfig() {
        return trainingConfig(1, 0);
    }

    TrainingConfig trainingConfig(int numProcesses, int rank) {
        Path tokenizerFile = tokenizer != null ? tokenizer : defaultTokenizer(trainPattern);
        checkDataExists(trainPattern, "train");
        checkDataExists(valPattern, "val");
        return training.toConfig(trainPattern, valPattern, tokenizerFile, numProcesses, rank);
    }

    /**
     * What this rank will hold (parameters, gradients, AdamW, activations at B, T with -r, the KV cache when
     * sampling, the mapped data, the JVM), estimated from the model's shape before anything is allocated; a run
     * that cannot fit in the memory the machine has now is refused here, with the total, its parts and what to
     * lower.
     */
    MemoryEstimate checkMemory(TrainingConfig config) {
        GPT2Config shape = plannedConfig(config);
        var memory = GPT2.memoryEstimate(
                        shape,
                        config.batchSize(),
                        config.seqLen(),
                        device.cpuRecompute(),
                        config.numProcesses(),
                        distributed.zeroStage,
                        config.genTokens() > 0 && config.sampleEvery() > 0)
                .data(DataLoader.expand(List.of(config.trainPattern(), config.valPattern())))
                .jvm()
                .build();
        memory.requireFits("-b (now %d) or -t (now %d), use -r 2 (recompute more in the backward), or a smaller model"
                .formatted(config.batchSize(), config.seqLen()));
        return memory;
    }

    /** The shape the run will train: the checkpoint's header (resume, or -e FILE), else -e's descriptor or shape. */
    GPT2Config plannedConfig(TrainingConfig config) {
        Path checkpoint = config.resume()
                ? resumeModelFile(config.outputDir())
                : model.isCheckpoint() ? Path.of(model.model) : null;
        if (checkpoint == null) return model.config();
        try (var arena = Arena.ofConfined()) {
            return GPT2Checkpoint.open(checkpoint, arena).config();
        }
    }

    /**
     * The model to train: from the latest checkpoint when resuming, else from -e (a checkpoint, v3 or v5, or a
     * descriptor for random init), on the CPU or the GPU. The CUDA driver is loaded here and only for --device cuda.
     */
    TrainableModel buildModel(TrainingConfig config) {
        Path checkpoint = null;
        if (config.resume()) {
            checkpoint = resumeModelFile(config.outputDir());
        } else if (model.isCheckpoint()) {
            checkpoint = Path.of(model.model);
        }
        return switch (device.device()) {
            case CPU -> {
                int recompute = device.cpuRecompute(); // -r: which activations the backward recomputes
                var kernels = GPT2Kernels.of(Llmc.kernels());
                var gpt2 = checkpoint != null
                        ? GPT2.fromCheckpoint(checkpoint, kernels)
                        : GPT2.randomInit(model.config(), kernels);
                yield gpt2.recompute(recompute);
            }
            case CUDA -> buildCudaModel(config, 0);
        };
    }

    /** The GPU model on device {@code deviceOrdinal} of this machine (0 alone; rank % -pg in a multi-GPU run). */
    GPT2CudaModel buildCudaModel(TrainingConfig config, int deviceOrdinal) {
        Path checkpoint = config.resume()
                ? resumeModelFile(config.outputDir())
                : model.isCheckpoint() ? Path.of(model.model) : null;
        var options = cudaOptions();
        return checkpoint != null
                ? GPT2CudaModel.fromCheckpoint(checkpoint, options, deviceOrdinal)
                : GPT2CudaModel.randomInit(model.config(), options, deviceOrdinal);
    }

    dev.llmc4j.gpt2.cuda.GPT2Cuda.Options cudaOptions() {
        if (masterWeights != 0 && masterWeights != 1)
            throw new LlmcException("-w must be 0 or 1, found " + masterWeights);
        if (tf32 != 0 && tf32 != 1) throw new LlmcException("-f must be 0 or 1, found " + tf32);
        return device.cudaOptions(masterWeights == 1, tf32 == 1);
    }

    private static Object configOf(TrainableModel trainable) {
        return switch (trainable) {
            case GPT2 cpu -> cpu.config;
            case GPT2CudaModel gpu -> gpu.config() + " " + gpu.gpu().deviceName();
            default -> trainable.getClass().getSimpleName();
        };
    }

    /** The model file of the latest completed checkpoint in the output folder, for -y 1. */
    static Path resumeModelFile(Path outputDir) {
        if (outputDir == null) throw new LlmcException("resume (-y 1) needs -o, the folder with the checkpoints");
        Path latest = Trainer.resumeModelFile(outputDir);
        if (latest == null)
            throw new LlmcException("resume (-y 1): no completed checkpoint (DONE_########) in " + outputDir);
        return latest;
    }

    static Path defaultTokenizer(String pattern) {
        Path parent = Path.of(pattern).toAbsolutePath().getParent();
        return parent == null ? Path.of("gpt2_tokenizer.bin") : parent.resolve("gpt2_tokenizer.bin");
    }

    // a friendlier message than the loader's when the default tinyshakespeare files were never prepared
    private static void checkDataExists(String pattern, String what) {
        if (pattern.contains("*") || pattern.contains("?")) return;
        if (!Files.exists(Path.of(pattern)))
            throw new LlmcException("no %s data at %s: prepare it with ./llmc data tinyshakespeare (or give -i/-j)"
                    .formatted(what, pattern));
    }
}
