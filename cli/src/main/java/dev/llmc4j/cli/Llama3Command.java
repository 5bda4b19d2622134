package dev.llmc4j.cli;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.llama3.Llama3DebugState;
import dev.llmc4j.llama3.Llama3ParityCheck;
import dev.llmc4j.llama3.Llama3Tokenizer;
import dev.llmc4j.llama3.SafeTensorsImport;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;

/** {@code ./llmc llama3 init|import|test|sample|train}: Llama 3 on the CPU. */
@Command(name = "llama3", mixinStandardHelpOptions = true,
        description = "Llama 3 (3.1 / 3.2) on the CPU: make, import, check, sample and train models.",
        subcommands = {Llama3Command.Init.class, Llama3Command.Import.class, Llama3Command.Test.class,
            Llama3Command.Sample.class, Llama3Command.Train.class})
public final class Llama3Command implements Runnable {

    @picocli.CommandLine.Spec
    picocli.CommandLine.Model.CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(System.out);
    }

    /** A model shape: a released one by name, or a custom one. */
    static final class Shape {
        @Option(names = "--config", paramLabel = "NAME", defaultValue = "custom",
                description = "3.1-8B, 3.2-1B, 3.2-3B or custom (default: ${DEFAULT-VALUE}, with the options below)")
        String name;
        @Option(names = "--layers", defaultValue = "2", description = "L (default: ${DEFAULT-VALUE})") int layers;
        @Option(names = "--heads", defaultValue = "4", description = "NH (default: ${DEFAULT-VALUE})") int heads;
        @Option(names = "--kv-heads", defaultValue = "2", description = "NKV (default: ${DEFAULT-VALUE})") int kvHeads;
        @Option(names = "--channels", defaultValue = "64", description = "C (default: ${DEFAULT-VALUE})") int channels;
        @Option(names = "--vocab", defaultValue = "128256", description = "V (default: ${DEFAULT-VALUE})") int vocab;
        @Option(names = "--max-seq-len", defaultValue = "1024", description = "maxT (default: ${DEFAULT-VALUE})") int maxSeqLen;
        @Option(names = "--ffn-multiplier", defaultValue = "1.3", description = "(default: ${DEFAULT-VALUE})") float ffnMultiplier;
        @Option(names = "--multiple-of", defaultValue = "32", description = "(default: ${DEFAULT-VALUE})") int multipleOf;

        Llama3Config config() {
            if (!name.equals("custom")) return Llama3Config.fromName(name);
            return new Llama3Config(maxSeqLen, vocab, layers, heads, kvHeads, channels, ffnMultiplier, multipleOf,
                    1e-5f, 500000f, true, 3, 1);
        }
    }

    @Command(name = "init", mixinStandardHelpOptions = true,
            description = "Write a randomly initialised Llama 3 checkpoint (the reference's seeded init).")
    static final class Init implements Callable<Integer> {
        @Mixin Shape shape;
        @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE") Path output;
        @Option(names = "--seed", defaultValue = "42") long seed;
        @Option(names = "--bf16", description = "write version 5 (bf16) instead of 3 (fp32)") boolean bf16;

        @Override
        public Integer call() {
            try (var model = Llama3.randomInit(shape.config(), seed)) {
                model.save(output, bf16 ? 5 : 3);
                System.out.println("wrote " + output + ": " + model.config.describe());
            }
            return 0;
        }
    }

    @Command(name = "import", mixinStandardHelpOptions = true,
            description = "Convert Hugging Face Llama 3 weights (model.safetensors) to a llama3-branch checkpoint.")
    static final class Import implements Callable<Integer> {
        @Mixin Shape shape;
        @Option(names = "--safetensors", required = true, paramLabel = "FILE") Path safetensors;
        @Option(names = {"-o", "--output"}, required = true, paramLabel = "FILE") Path output;
        @Option(names = "--bf16", description = "write version 5 (bf16) instead of 3 (fp32)") boolean bf16;

        @Override
        public Integer call() {
            try (var model = SafeTensorsImport.load(safetensors, shape.config())) {
                model.save(output, bf16 ? 5 : 3);
                System.out.println("wrote " + output + ": " + model.config.describe());
            }
            return 0;
        }
    }

    @Command(name = "test", mixinStandardHelpOptions = true,
            description = {"Check Llama 3 against a debug state of reference/llama3_reference.py: logits, loss and the",
                "16 gradients (relative error <= 1e-5), then the recorded training steps. Exit code 0 when all match."})
    static final class Test implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "FILE") Path modelFile;
        @Option(names = "--state", required = true, paramLabel = "FILE") Path stateFile;

        @Override
        public Integer call() {
            try (var model = Llama3.fromCheckpoint(modelFile);
                 var state = Llama3DebugState.read(stateFile, model.config)) {
                return Llama3ParityCheck.run(model, state, System.out).ok() ? 0 : 1;
            }
        }
    }

    @Command(name = "sample", mixinStandardHelpOptions = true,
            description = "Generate text with a KV cache (prompt as one batch, then one token at a time).")
    static final class Sample implements Callable<Integer> {
        @Option(names = "--model", required = true, paramLabel = "FILE") Path modelFile;
        @Option(names = "--tokenizer", paramLabel = "FILE", description = "tokenizer.model (tiktoken format); without it, ids are printed") Path tokenizerFile;
        @Option(names = "--prompt", defaultValue = "", description = "text after <|begin_of_text|>") String prompt;
        @Option(names = {"-n", "--tokens"}, defaultValue = "64") int tokens;
        @Option(names = "--temperature", defaultValue = "0.8") float temperature;
        @Option(names = "--top-p", defaultValue = "0.95") float topP;
        @Option(names = "--seed", defaultValue = "1337") long seed;

        @Override
        public Integer call() {
            try (var model = Llama3.fromCheckpoint(modelFile)) {
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
                    promptTokens = new int[] {Math.min(128000, model.config.vocabSize() - 1)};
                    stops = new int[0];
                }
                var pending = new ByteArrayOutputStream(); // bytes of a character split across tokens wait here
                var stats = model.generate(promptTokens, tokens, temperature, topP, seed, stops, token -> {
                    if (tokenizer == null) {
                        System.out.print(token + " ");
                    } else if (!tokenizer.isSpecial(token)) {
                        pending.writeBytes(tokenizer.decodeBytes(token));
                        String text = pending.toString(StandardCharsets.UTF_8);
                        if (!text.endsWith("\uFFFD")) {
                            System.out.print(text);
                            pending.reset();
                        }
                    }
                    System.out.flush();
                });
                System.out.printf("%n[%d prompt tokens in %.2f s, %d new tokens at %.2f tokens/s]%n", stats.promptTokens(),
                        stats.promptSeconds(), stats.generatedTokens(), stats.tokensPerSecond());
            }
            return 0;
        }
    }

    @Command(name = "train", mixinStandardHelpOptions = true,
            description = "Train on Llama 3 token shards (uint32, magic 20240801): AdamW, gradient clipping at 1.0.")
    static final class Train implements Callable<Integer> {
        @Option(names = "--model", paramLabel = "FILE", description = "start from this checkpoint (else random init of the shape options)") Path modelFile;
        @Mixin Shape shape;
        @Option(names = {"-i", "--train"}, required = true, paramLabel = "PATTERN", description = "training shards (glob)") String trainPattern;
        @Option(names = {"-b", "--batch"}, defaultValue = "4") int batchSize;
        @Option(names = {"-t", "--seq"}, defaultValue = "64") int seqLen;
        @Option(names = {"-x", "--steps"}, defaultValue = "20") int steps;
        @Option(names = {"-l", "--lr"}, defaultValue = "1e-4") float learningRate;
        @Option(names = {"-c", "--weight-decay"}, defaultValue = "0.0") float weightDecay;
        @Option(names = {"-o", "--output"}, paramLabel = "FILE", description = "checkpoint to write at the end") Path output;

        @Override
        public Integer call() {
            try (var model = modelFile != null ? Llama3.fromCheckpoint(modelFile) : Llama3.randomInit(shape.config(), 42);
                 var loader = new DataLoader(trainPattern, batchSize, seqLen, 0, 1, false, model.config.vocabSize())) {
                System.out.println(model.config.describe());
                for (int step = 1; step <= steps; step++) {
                    long start = System.nanoTime();
                    loader.nextBatch();
                    float loss = model.forward(loader.inputs(), loader.targets(), batchSize, seqLen);
                    model.zeroGrad();
                    model.backward();
                    float norm = model.gradientNorm();
                    float scale = norm > 1.0f ? 1.0f / norm : 1.0f; // clip the global norm at 1.0
                    model.update(learningRate, 0.9f, 0.95f, 1e-8f, weightDecay, true, scale, step);
                    double ms = (System.nanoTime() - start) / 1e6;
                    System.out.printf("step %d/%d: loss %.6f norm %.4f (%.1f ms, %.0f tok/s)%n", step, steps, loss, norm,
                            ms, batchSize * seqLen / (ms / 1000));
                }
                if (output != null) {
                    model.save(output, 3);
                    System.out.println("wrote " + output);
                }
            }
            return 0;
        }
    }
}
