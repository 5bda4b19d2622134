package dev.llmc4j.bench;

import dev.llmc4j.bench.MachineLimits.ReadProbe;
import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Inference;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.model.GPT2Config;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.IntUnaryOperator;

/**
 * Generation with the KV cache at memory speed: tokens/s of GPT-2 and Llama 3 with fp32 and bf16 weights, each
 * beside its limit, the measured read bandwidth over the weight bytes one token reads ({@link MachineLimits}).
 *
 * <pre>
 *   GenerationBench [GPT2_MODEL [TOKENS [ROUNDS]]]     defaults: d12 64 5
 * </pre>
 *
 * Random weights (the speed does not depend on them), greedy decoding from one start token, {@code TOKENS} new
 * tokens per round; the rounds alternate fp32 and bf16 so that both see the same machine load, and the median
 * round is printed. Each round also reads a 512 MiB buffer first ({@link MachineLimits.ReadProbe}): the fraction
 * of the limit is the median over the rounds of each run against the bandwidth measured just before it, which
 * holds while other processes load the machine. The Llama 3 model is the training shape: L4, C512, 8 query and 2 key/value heads,
 * V 32,768.
 */
public final class GenerationBench {
    private GenerationBench() {}

    static final Llama3Config LLAMA3 = Llama3Descriptor.BENCHMARK_SHAPE;

    /** One model at one precision: runs a round of greedy generation and reports the seconds per new token. */
    interface Generator {
        String name();

        long bytesPerToken();

        double secondsPerToken(int tokens);
    }

    public static void main(String[] args) {
        String gpt2Model = args.length > 0 ? args[0] : "d12";
        int tokens = args.length > 1 ? Integer.parseInt(args[1]) : 64;
        int rounds = args.length > 2 ? Integer.parseInt(args[2]) : 5;
        var limits = MachineLimits.measure();
        System.out.println("machine: " + limits.describe());
        System.out.printf(
                Locale.ROOT,
                "KV-cache generation, %d new tokens per round, median of %d rounds after 1 warm-up, "
                        + "fp32 and bf16 alternating, %d threads%n",
                tokens,
                rounds,
                Parallel.threads());
        try (var probe = new ReadProbe()) {
            try (var gpt2 = GPT2.randomInit(GPT2Config.fromDescriptor(gpt2Model));
                    var gpt2Fp32 = new GPT2Inference(gpt2, Precision.FP32);
                    var gpt2Bf16 = new GPT2Inference(gpt2, Precision.BF16)) {
                compare(probe, tokens, rounds, List.of(gpt2(gpt2Model, gpt2Fp32), gpt2(gpt2Model, gpt2Bf16)));
            }
            try (var llama = Llama3.randomInit(LLAMA3, 42);
                    var fp32 = llama.inferenceWeights(Precision.FP32);
                    var bf16 = llama.inferenceWeights(Precision.BF16)) {
                compare(probe, tokens, rounds, List.of(llama3(llama, fp32), llama3(llama, bf16)));
            }
        }
    }

    static void compare(ReadProbe probe, int tokens, int rounds, List<Generator> generators) {
        double[] bandwidth = new double[rounds];
        var tokensPerSecond = new ArrayList<double[]>();
        for (var g : generators) tokensPerSecond.add(new double[rounds]);
        for (int round = -1; round < rounds; round++) {
            double gbps = probe.gigabytesPerSecond(3);
            if (round >= 0) bandwidth[round] = gbps;
            for (int i = 0; i < generators.size(); i++) {
                double perSecond = 1 / generators.get(i).secondsPerToken(tokens);
                if (round >= 0) tokensPerSecond.get(i)[round] = perSecond;
            }
        }
        System.out.printf(
                Locale.ROOT,
                "read bandwidth before each round: median %.1f GB/s (%.1f to %.1f)%n",
                median(bandwidth),
                Arrays.stream(bandwidth).min().orElse(0),
                Arrays.stream(bandwidth).max().orElse(0));
        for (int i = 0; i < generators.size(); i++) {
            var g = generators.get(i);
            long bytes = g.bytesPerToken();
            double[] fraction = new double[rounds];
            for (int r = 0; r < rounds; r++) fraction[r] = tokensPerSecond.get(i)[r] / (bandwidth[r] * 1e9 / bytes);
            System.out.printf(
                    Locale.ROOT,
                    "%-22s %7.1f tokens/s   limit %7.1f tokens/s (%.0f MB of weights per token)   "
                            + "%5.1f%% of the limit%n",
                    g.name(),
                    median(tokensPerSecond.get(i)),
                    median(bandwidth) * 1e9 / bytes,
                    bytes / 1e6,
                    100 * median(fraction));
        }
    }

    static Generator gpt2(String model, GPT2Inference inference) {
        return new Generator() {
            public String name() {
                return "GPT-2 " + model + " " + inference.precision().name().toLowerCase(Locale.ROOT);
            }

            public long bytesPerToken() {
                return inference.weightBytesPerToken();
            }

            public double secondsPerToken(int tokens) {
                inference.reset();
                return timeGreedy(tokens, 50256, token -> argmax(inference.next(token)));
            }
        };
    }

    static Generator llama3(Llama3 model, Llama3.InferenceWeights weights) {
        return new Generator() {
            public String name() {
                return "Llama 3 L4 C512 " + weights.precision().name().toLowerCase(Locale.ROOT);
            }

            public long bytesPerToken() {
                return weights.bytesPerToken();
            }

            public double secondsPerToken(int tokens) {
                try (var session = model.newSession(tokens + 1, weights)) {
                    return timeGreedy(tokens, 1, token -> argmax(session.forward(new int[] {token})));
                }
            }
        };
    }

    // the first token fills the cache untimed; then seconds per token over the next `tokens`
    private static double timeGreedy(int tokens, int start, IntUnaryOperator step) {
        int token = step.applyAsInt(start);
        long t0 = System.nanoTime();
        for (int i = 0; i < tokens; i++) token = step.applyAsInt(token);
        return (System.nanoTime() - t0) / 1e9 / tokens;
    }

    static int argmax(float[] logits) {
        int best = 0;
        for (int i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
        return best;
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }
}
