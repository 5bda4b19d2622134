package dev.llmc4j.cli;

import dev.llmc4j.cli.monitor.MonitorOptions;
import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.data.DataLoader;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Checkpoint;
import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.llama3.Llama3DebugState;
import dev.llmc4j.llama3.Llama3Kernels;
import dev.llmc4j.llama3.Llama3ParityCheck;
import dev.llmc4j.llama3.Llama3Tokenizer;
import dev.llmc4j.llama3.SafeTensorsImport;
import dev.llmc4j.model.FiniteParameters;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.train.MemoryEstimate;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ./llmc llama3 init|import|test|sample|train}: Llama 3 on the CPU. */
@Command(
        name = "llama3",
        mixinStandardHelpOptions = true,
        description = "Llama 3 (3.1 / 3.2) on the CPU: make, import, check, sample and train models.",
        subcommands = {
            Llama3Command.Init.class,
            Llama3Command.Import.class,
            Llama3Command.Test.class,
            Llama3Command.Sample.class,
            Llama3Command.Train.class
        })
public final class Llama3Command implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** A model shape: a released one by name, or a custom one. */
    static final class Shape implements OptionChecks.CrossCheck {
        @Option(
                names = "--config",
                paramLabel = "NAME",
                defaultValue = "custom",
                description = "3.1-8B, 3.2-1B, 3.2-3B or custom (default: ${DEFAULT-VALUE}, with the options below)")
        String name;

        @Range(min = 1, max = 1024)
        @Option(names = "--layers", defaultValue = "2", description = "L (default: ${DEFAULT-VALUE})")
        int layers;

        @Range(min = 1, max = 65536)
        @Option(names = "--heads", defaultValue = "4", description = "NH (default: ${DEFAULT-VALUE})")
        int heads;

        @Range(min = 1, max = 65536)
        @Option(names = "--kv-heads", defaultValue = "2", description = "NKV (default: ${DEFAULT-VALUE})")
        int kvHeads;

        @Range(min = 1, max = 1 << 20)
        @Option(names = "--channels", defaultValue = "64", description = "C (default: ${DEFAULT-VALUE})")
        int channels;

        @Range(min = 1, max = 1 << 24)
        @Option(names = "--vocab", defaultValue = "128256", description = "V (default: ${DEFAULT-VALUE})")
        int vocab;

        @Range(min = 1, max = Llama3Config.MAX_SEQ_LEN)
        @Option(names = "--max-seq-len", defaultValue = "1024", description = "maxT (default: ${DEFAULT-VALUE})")
        int maxSeqLen;

        @Range(min = 0, max = 64, minExclusive = true)
        @Option(names = "--ffn-multiplier", defaultValue = "1.3", description = "(default: ${DEFAULT-VALUE})")
        float ffnMultiplier;

        @Range(min = 1, max = 1 << 20)
        @Option(names = "--multiple-of", defaultValue = "32", description = "(default: ${DEFAULT-VALUE})")
        int multipleOf;

        /** A custom shape must make a valid config (head counts divide, the parameter count fits). */
        @Override
        public void checkTogether() {
            config();
        }

        Llama3Config config() {
            if (!name.equals("custom")) return Llama3Config.fromName(name);
            return new Llama3Config(
                    maxSeqLen,
                    vocab,
                    layers,
                    heads,
                    kvHeads,
                    channels,
                    ffnMultiplier,
                    multipleOf,
                    1e-5f,
                    500000f,
                    true,
                    3,
                    1);
        }
    }

    @Command(
            name = "init",
            mixinStandardHelpOptions = true,
            description = "Write a randomly initialised Llama 3 checkpoint (the reference's seeded init).")
    static final class Init implements Callable<Integer> {
        @Mixin
        Shape shape;

        @Option(
                names = {"-o", "--output"},
                required = true,
                paramLabel = "FILE")
        Path output;

        @Range
        @Option(names = "--seed", defaultValue = "42")
        long seed;

        @Option(names = "--bf16", description = "write version 5 (bf16) instead of 3 (fp32)")
        boolean bf16;

        @Override
        public Integer call() {
            try (var model = Llama3.randomInit(shape.config(), seed, Llama3Kernels.of(Llmc.kernels()))) {
                model.save(output, bf16 ? 5 : 3);
                System.out.println("wrote " + output + ": " + model.config.describe());
            }
            return 0;
        }
    }

    @Command(
            name = "import",
            mixinStandardHelpOptions = true,
            description = "Convert Hugging Face Llama 3 weights (model.safetensors) to a llama3-branch checkpoint.")
    static final class Import implements Callable<Integer> {
        @Mixin
        Shape shape;

        @Option(names = "--safetensors", required = true, paramLabel = "FILE")
        Path safetensors;

        @Option(
                names = {"-o", "--output"},
                required = true,
                paramLabel = "FILE")
        Path output;

        @Option(names = "--bf16", description = "write version 5 (bf16) instead of 3 (fp32)")
        boolean bf16;

        @Override
        public Integer call() {
            try (var model = SafeTensorsImport.load(safetensors, shape.config())) {
                model.save(output, bf16 ? 5 : 3);
                System.out.println("wrote " + output + ": " + model.config.describe());
            }
            return 0;
        }
    }

    @Command(
            name = "test",
            mixinStandardHelpOptions = true,
            description = {
                "Check Llama 3 against a debug state (llm.c's train_llama3.py or reference/llama3_reference.py):",
                "logits, loss and the 16 gradients (relative error <= 1e-5), then the recorded training steps replayed",
                "by llm.c's rule (AdamW lr 1e-5, betas 0.9/0.95, eps 1e-8, no weight decay, clipping at norm 1.0):",
                "losses within 1e-5, pre-clip grad norms within 1e-4 relative. Exit code 0 when all match."
            })
    static final class Test implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "FILE")
        Path modelFile;

        @Option(names = "--state", required = true, paramLabel = "FILE")
        Path stateFile;

        @Override
        public Integer call() {
            try (var model = Llama3.fromCheckpoint(modelFile, Llama3Kernels.of(Llmc.kernels()));
                    var state = Llama3DebugState.read(stateFile, model.config)) {
                return Llama3ParityCheck.run(model, state, System.out).ok() ? 0 : 1;
            }
        }
    }

    @Command(
            name = "sample",
            mixinStandardHelpOptions = true,
            description = "Generate text with a KV cache (prompt as one batch, then one token at a time).")
    static final class Sample implements Callable<Integer> {
        @Option(
                names = {"-e", "--model"},
                required = true,
                paramLabel = "FILE")
        Path modelFile;

        @Option(
                names = "--tokenizer",
                paramLabel = "FILE",
                description = "tokenizer.model (tiktoken format); without it, ids are printed")
        Path tokenizerFile;

        @Option(
                names = {"-p", "--prompt"},
                defaultValue = "",
                description = "text after <|begin_of_text|>")
        String prompt;

        @Range(min = 1, max = 1_000_000)
        @Option(
                names = {"-n", "--tokens"},
                defaultValue = "64",
                description = "tokens to generate (default: ${DEFAULT-VALUE})")
        int tokens;

        @Range(min = 0, max = 100)
        @Option(
                names = "--temperature",
                defaultValue = "0.8",
                description = "softmax temperature, 0: greedy (default: ${DEFAULT-VALUE})")
        float temperature;

        @Range(min = 0, max = Integer.MAX_VALUE)
        @Option(names = "--top-k", defaultValue = "0", description = "sample among the K most likely tokens (0: all)")
        int topK;

        @Range(min = 0, max = 1, minExclusive = true)
        @Option(
                names = "--top-p",
                defaultValue = "0.95",
                description = "nucleus: the most likely tokens reaching P together (default: ${DEFAULT-VALUE}; 1: all)")
        float topP;

        @Range
        @Option(names = "--seed", defaultValue = "1337")
        long seed;

        @Option(
                names = "--weights",
                paramLabel = "fp32|bf16",
                defaultValue = "fp32",
                converter = WeightsPrecision.class,
                description =
                        "precision each new token reads the weights in (default: ${DEFAULT-VALUE}); bf16: half the bytes")
        Precision weights;

        @Override
        public Integer call() {
            try (var model = Llama3.fromCheckpoint(modelFile, Llama3Kernels.of(Llmc.kernels()));
                    var generationWeights = model.inferenceWeights(weights)) {
                FiniteParameters.require(
                        model.parameters(),
                        Llama3Config.PARAMETER_NAMES,
                        model.config.parameterSizes(),
                        modelFile.toString());
                Llama3Tokenizer tokenizer = tokenizerFile == null ? null : Llama3Tokenizer.load(tokenizerFile);
                int[] promptTokens;
                int[] stops;
                if (tokenizer != null) {
                    int[] text = tokenizer.encode(prompt);
                    promptTokens = new int[text.length + 1];
                    promptTokens[0] = tokenizer.beginOfText();
                    System.arraycopy(text, 0, promptTokens, 1, text.length);
                    stops = new int[] {tokenizer.endOfText(), tokenizer.endOfTurn()};
                    System.out.print(prompt);
                } else {
                    if (!prompt.isEmpty()) throw new LlmcException("--prompt needs --tokenizer");
                    promptTokens = new int[] {beginOfText(model.config.vocabSize())};
                    stops = new int[0];
                }
                var printer = new TokenPrinter(tokenizer);
                var sampler = new Sampler(new XorShift(seed), temperature, topK, topP);
                var stats = model.generate(
                        promptTokens,
                        tokens,
                        sampler,
                        stops,
                        token -> {
                            System.out.print(printer.text(token));
                            System.out.flush();
                        },
                        generationWeights);
                System.out.printf(
                        "%n[%d prompt tokens in %.2f s, %d new tokens at %.2f tokens/s, %s weights]%n",
                        stats.promptTokens(),
                        stats.promptSeconds(),
                        stats.generatedTokens(),
                        stats.tokensPerSecond(),
                        WeightsPrecision.name(weights));
            }
            return 0;
        }
    }

    /** <|begin_of_text|> (128000), or the last id of a smaller vocabulary: where samples start without a tokenizer. */
    static int beginOfText(int vocabSize) {
        return Math.min(128000, vocabSize - 1);
    }

    /** Turns tokens into printable text: ids without a tokenizer; bytes of a character split across tokens wait. */
    static final class TokenPrinter {
        private final Llama3Tokenizer tokenizer;
        private final ByteArrayOutputStream pending = new ByteArrayOutputStream();

        TokenPrinter(Llama3Tokenizer tokenizer) {
            this.tokenizer = tokenizer;
        }

        String text(int token) {
            if (tokenizer == null) return token + " ";
            if (tokenizer.isSpecial(token)) return "";
            pending.writeBytes(tokenizer.decodeBytes(token));
            String text = pending.toString(StandardCharsets.UTF_8);
            if (text.endsWith("\uFFFD")) return ""; // an incomplete character: wait for its other bytes
            pending.reset();
            return text;
        }
    }

    @Command(
            name = "train",
            sortOptions = false,
            description = {
                "Train Llama 3 with the shared trainer of ./llmc train (llm.c's loop: AdamW, gradient accumulation,",
                "clipping at norm 1.0, LR schedules, validation, sampling, checkpoints, exact resume) on Llama 3 token",
                "shards (uint32, magic 20240801; make them with ./llmc data tinyshakespeare --model llama3 --tokenizer FILE).",
                "Starts from -e FILE, or a random init of the shape options.",
                "Several processes (CPU, MPI): mpirun -np 2 ./llmc llama3 train ... (each reads its slice of every batch;",
                "-z 1 shards AdamW's state)"
            })
    static final class Train implements Callable<Integer> {
        @Option(
                names = {"-e", "--model"},
                paramLabel = "FILE",
                description = "start from this checkpoint (else random init of the shape options)")
        Path modelFile;

        @Mixin
        Shape shape;

        @Range
        @Option(names = "--seed", defaultValue = "42", description = "random init seed (default: ${DEFAULT-VALUE})")
        long seed;

        @Option(
                names = {"-i", "--train-data"},
                required = true,
                paramLabel = "GLOB",
                description = "train shards (uint32 Llama 3 shards)")
        String trainPattern;

        @Option(
                names = {"-j", "--val-data"},
                required = true,
                paramLabel = "GLOB",
                description = "val shards")
        String valPattern;

        @Mixin
        TrainingOptions training;

        @Mixin
        DistributedOptions distributed;

        @Option(
                names = "--tokenizer",
                paramLabel = "FILE",
                description = "tokenizer.model (tiktoken format) for printing samples; without it, ids")
        Path tokenizerFile;

        @Mixin
        MonitorOptions monitor;

        @Override
        public Integer call() {
            distributed.setupCpuOnly(); // -pi tcp|fs, or -pn N without mpirun: one line, before anything is loaded
            distributed.trainOnCpu(comm -> {
                var config = training.toConfig(trainPattern, valPattern, null, comm.size(), comm.rank());
                PrintStream out = DistributedOptions.rankZeroOut(comm.rank());
                Llama3Tokenizer tokenizer = tokenizerFile == null ? null : Llama3Tokenizer.load(tokenizerFile);
                var printer = new TokenPrinter(tokenizer);
                MemoryEstimate memory = checkMemory(config);
                try (var model = buildModel(config);
                        var ui = monitor.open(
                                model,
                                config,
                                "Llama 3 " + model.config.describe(),
                                id -> tokenizer == null
                                        ? String.valueOf(id)
                                        : new String(tokenizer.decodeBytes(id), StandardCharsets.UTF_8),
                                out)) {
                    out.printf("[Llama 3] %s, %,d parameters%n", model.config.describe(), model.numParameters());
                    // llm.c's llama3 branch starts samples from the tokenizer's "EOT", which for Llama 3 is
                    // <|begin_of_text|>
                    int start = tokenizer != null ? tokenizer.beginOfText() : beginOfText(model.config.vocabSize());
                    var sampleText = new Trainer.SampleText(
                            start, token -> printer.text(token).getBytes(StandardCharsets.UTF_8));
                    var trainer = new Trainer(model, config, out, sampleText, comm, distributed.zeroStage, memory);
                    training.attachHellaSwag(trainer, out);
                    if (ui != null) trainer.listen(ui.monitor());
                    var result = trainer.run();
                    if (comm.rank() == 0)
                        LossChart.writeIfOutput(config.outputDir(), result, "Llama 3 " + model.config.describe());
                }
            });
            return 0;
        }

        /** What this rank will hold, from the model's shape before it is built; refused when the machine lacks it. */
        private MemoryEstimate checkMemory(TrainingConfig config) {
            Path checkpoint = config.resume() ? TrainCommand.resumeModelFile(config.outputDir()) : modelFile;
            Llama3Config shapeToTrain;
            if (checkpoint == null) {
                shapeToTrain = shape.config();
            } else {
                try (var file = Llama3Checkpoint.read(checkpoint)) {
                    shapeToTrain = file.config();
                }
            }
            int samples = config.sampleEvery() > 0 ? config.genTokens() : 0;
            var memory = Llama3.memoryEstimate(
                            shapeToTrain,
                            config.batchSize(),
                            config.seqLen(),
                            config.numProcesses(),
                            distributed.zeroStage,
                            samples)
                    .data(DataLoader.expand(List.of(config.trainPattern(), config.valPattern())))
                    .jvm()
                    .build();
            memory.requireFits(
                    "-b (now %d) or -t (now %d), or the model's size".formatted(config.batchSize(), config.seqLen()));
            return memory;
        }

        private Llama3 buildModel(TrainingConfig config) {
            var kernels = Llama3Kernels.of(Llmc.kernels());
            if (config.resume())
                return Llama3.fromCheckpoint(TrainCommand.resumeModelFile(config.outputDir()), kernels);
            return modelFile != null
                    ? Llama3.fromCheckpoint(modelFile, kernels)
                    : Llama3.randomInit(shape.config(), seed, kernels);
        }
    }
}
