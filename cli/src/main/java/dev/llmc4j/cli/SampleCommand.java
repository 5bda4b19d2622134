package dev.llmc4j.cli;

import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Inference;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.gpt2.GPT2NoCacheGenerator;
import dev.llmc4j.model.FiniteParameters;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.train.TokenGenerator;
import dev.llmc4j.util.LlmcException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code ./llmc sample}: continue a prompt with a trained GPT-2, streaming the text as it comes. */
@Command(
        name = "sample",
        mixinStandardHelpOptions = true,
        sortOptions = false,
        description = {
            "Generate text with a GPT-2 checkpoint (KV cache; --no-kv-cache recomputes the whole sequence per",
            "token as llm.c does). With --temperature 1 and no --top-k or --top-p it samples exactly as llm.c (xorshift, seed 1337)."
        })
public final class SampleCommand implements Callable<Integer> {

    @Option(
            names = {"-e", "--model"},
            required = true,
            paramLabel = "FILE",
            description = "llm.c checkpoint (v3 or v5)")
    Path modelFile;

    @Option(
            names = {"-p", "--prompt"},
            paramLabel = "TEXT",
            defaultValue = "",
            description = "text to continue (default: start from <|endoftext|>)")
    String prompt;

    @Range(min = 1, max = 1_000_000)
    @Option(
            names = {"-g", "--gen-tokens"},
            paramLabel = "N",
            defaultValue = "200",
            description = "tokens to generate (default: ${DEFAULT-VALUE})")
    int genTokens;

    @Range(min = 0, max = 100, minExclusive = true)
    @Option(
            names = "--temperature",
            paramLabel = "T",
            defaultValue = "1.0",
            description = "softmax temperature (default: ${DEFAULT-VALUE})")
    float temperature;

    @Range(min = 0, max = Integer.MAX_VALUE)
    @Option(
            names = "--top-k",
            paramLabel = "K",
            defaultValue = "0",
            description = "sample among the K most likely tokens (0: all)")
    int topK;

    @Range(min = 0, max = 1, minExclusive = true)
    @Option(
            names = "--top-p",
            paramLabel = "P",
            defaultValue = "1.0",
            description = "sample among the most likely tokens whose probabilities reach P together (1: all)")
    float topP;

    @Range
    @Option(
            names = "--seed",
            paramLabel = "S",
            defaultValue = "1337",
            description = "sampler seed (default: ${DEFAULT-VALUE}, llm.c's)")
    long seed;

    @Option(
            names = "--no-kv-cache",
            description = "recompute the whole sequence for every token, as llm.c does (slower; for comparison)")
    boolean noKvCache;

    @Option(
            names = "--weights",
            paramLabel = "fp32|bf16",
            defaultValue = "fp32",
            converter = WeightsPrecision.class,
            description = {
                "precision the KV-cache generator keeps the weights in (default: ${DEFAULT-VALUE}); bf16 halves",
                "the bytes each token reads, so up to twice the tokens/s (a v5 checkpoint already is bf16)"
            })
    Precision weights;

    @Override
    public Integer call() {
        var tokenizer = GPT2Tokenizer.get();
        int[] promptTokens =
                prompt.isEmpty() ? new int[] {GPT2Tokenizer.EOT} : tokenizer.encodeWithSpecialTokens(prompt);
        try (var model = GPT2.fromCheckpoint(modelFile, GPT2Kernels.of(Llmc.kernels()))) {
            FiniteParameters.require(
                    model.parameters(),
                    GPT2Config.PARAMETER_NAMES,
                    model.config.parameterSizes(),
                    modelFile.toString());
            if (model.config.vocabSize() != GPT2Tokenizer.VOCAB_SIZE)
                throw new LlmcException("%s: vocab size %d, but the GPT-2 tokenizer has %d tokens"
                        .formatted(modelFile, model.config.vocabSize(), GPT2Tokenizer.VOCAB_SIZE));
            if (noKvCache && weights != Precision.FP32)
                throw new LlmcException(
                        "--weights " + WeightsPrecision.name(weights) + " needs the KV cache: drop --no-kv-cache");
            TokenGenerator generator = noKvCache ? new GPT2NoCacheGenerator(model) : new GPT2Inference(model, weights);
            var sampler = new Sampler(new XorShift(seed), temperature, topK, topP);
            var out = System.out;
            if (!prompt.isEmpty()) out.print(prompt);
            out.flush();
            long start = System.nanoTime();
            generator.generate(promptTokens, genTokens, sampler, token -> {
                byte[] bytes = tokenizer.tokenBytes(token); // may be part of a UTF-8 character: the terminal joins them
                out.write(bytes, 0, bytes.length);
                out.flush();
            });
            double seconds = (System.nanoTime() - start) / 1e9;
            System.err.printf(
                    "%n--- %d tokens in %.2f s: %.1f tokens/s (%s)%n",
                    genTokens,
                    seconds,
                    genTokens / seconds,
                    noKvCache
                            ? "full recomputation per token, as llm.c"
                            : "KV cache, " + WeightsPrecision.name(weights) + " weights");
        }
        return 0;
    }
}
