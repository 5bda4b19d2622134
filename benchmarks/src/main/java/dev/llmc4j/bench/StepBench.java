package dev.llmc4j.bench;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.llama3.Llama3Kernels;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.CpuTrainableModel;
import dev.llmc4j.util.LlmcException;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Arrays;
import java.util.Locale;
import java.util.Random;

/**
 * Times training steps (forward, backward, AdamW) of GPT-2 or Llama 3 on random tokens from a random init.
 *
 * <pre>
 *   StepBench MODEL B T [STEPS [WARMUP [RECOMPUTE]]]   e.g. d12 4 64 10 3 0: prints each step and the medians
 *   StepBench --serve MODEL B T [RECOMPUTE]            one line per command on stdin: "step" or "forward" runs
 *                                                      one and prints its ms, "peak" a short round of the fp32
 *                                                      FMA peak (GFLOP/s), "config" the Llama 3 shape as
 *                                                      key=value fields, "quit" ends (scripts/cpu_vs_pytorch.py)
 * </pre>
 *
 * MODEL is a GPT-2 depth (d6, d12, ... or gpt2:d12; llm.c's init) or a Llama 3 shape ({@link Llama3Descriptor}:
 * llama3, llama3:L4,C512,NH8,NKV2,V32768, llama3:3.2-1B; the reference's seeded init). RECOMPUTE is GPT-2's
 * activation recomputation (llm.c's -r). The machine's fp32 FMA peak and read bandwidth, to quote a step against:
 * {@link MachineLimits}.
 */
public final class StepBench {
    private final CpuTrainableModel model;
    private final String modelName;
    private final int B, T;
    private final int[] inputs, targets;
    private int step;

    StepBench(String descriptor, int B, int T, int recompute) {
        this(
                model(descriptor, T, recompute),
                (Llama3Descriptor.matches(descriptor) ? "Llama 3 " : "GPT-2 ") + descriptor,
                B,
                T);
    }

    /** A random-init GPT-2 of {@code config} with the kernels -Dllmc.kernels names, and fixed random tokens. */
    StepBench(GPT2Config config, int B, int T, int recompute) {
        this(
                GPT2.randomInit(config, GPT2Kernels.of(kernelChoice())).recompute(recompute),
                "GPT-2 L" + config.numLayers() + " C" + config.channels(),
                B,
                T);
    }

    private StepBench(CpuTrainableModel model, String modelName, int B, int T) {
        this.model = model;
        this.modelName = modelName;
        this.B = B;
        this.T = T;
        var random = new Random(1234);
        this.inputs = random.ints(B * T, 0, model.vocabSize()).toArray();
        this.targets = random.ints(B * T, 0, model.vocabSize()).toArray();
    }

    private static CpuKernels.Choice kernelChoice() {
        return CpuKernels.Choice.parse(System.getProperty("llmc.kernels", "vectorized"));
    }

    /** The model a descriptor names: a Llama 3 shape ({@link Llama3Descriptor}) or a GPT-2 depth. */
    private static CpuTrainableModel model(String descriptor, int T, int recompute) {
        if (!Llama3Descriptor.matches(descriptor))
            return GPT2.randomInit(GPT2Config.fromDescriptor(descriptor), GPT2Kernels.of(kernelChoice()))
                    .recompute(recompute);
        var config = Llama3Descriptor.parse(descriptor);
        if (recompute != 0)
            throw new LlmcException(
                    "recompute: only GPT-2 recomputes activations, found " + recompute + " for " + descriptor);
        if (T > config.maxSeqLen())
            throw new LlmcException("T: expected at most the model's maxT " + config.maxSeqLen() + ", found " + T
                    + " (add MAXT" + T + " to the descriptor)");
        return Llama3.randomInit(config, 42, Llama3Kernels.of(kernelChoice()));
    }

    /** The model it steps (for the tests). */
    CpuTrainableModel model() {
        return model;
    }

    /** One training step; returns {forward, backward, update} in ms. */
    double[] trainStep() {
        long t0 = System.nanoTime();
        model.forward(inputs, targets, B, T);
        long t1 = System.nanoTime();
        model.zeroGrad();
        model.backward(1);
        long t2 = System.nanoTime();
        // AdamW through the training loop's interface (no weight decay, gradient scale 1: no clipping)
        model.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, 1.0f, ++step);
        long t3 = System.nanoTime();
        return new double[] {(t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6};
    }

    double forwardOnly() {
        long t0 = System.nanoTime();
        model.forward(inputs, targets, B, T);
        return (System.nanoTime() - t0) / 1e6;
    }

    /**
     * Matmul flops of one forward, counted as benchmarks/scripts/cpu_vs_pytorch.py counts them: 2 per multiply-add
     * over the matmul weights (GPT-2: the 12 L C^2 of the blocks and the lm head; Llama 3: q/k/v, the attention
     * projection, SwiGLU's three matrices and the lm head; the embeddings are lookups), plus attention's two
     * (T x T) products counted in full, as PyTorch computes them. A training step is 3x the forward.
     */
    double forwardFlops() {
        double BT = (double) B * T;
        return switch (model) {
            case GPT2 gpt2 -> {
                long L = gpt2.config.numLayers(), C = gpt2.config.channels(), Vp = gpt2.config.paddedVocabSize();
                yield 2.0 * BT * (12 * L * C * C + Vp * C) + 4.0 * L * BT * T * C;
            }
            case Llama3 llama -> {
                var c = llama.config;
                yield 2.0 * BT * matmulWeights(c) + 4.0 * c.numLayers() * BT * T * c.channels();
            }
            default -> throw new IllegalStateException("no flop count for " + model.getClass());
        };
    }

    /** N of a Llama 3: the weights a token's forward multiplies, L (qkv rows C + C^2 + 3 H C) + V C. */
    static long matmulWeights(Llama3Config c) {
        long C = c.channels(), H = c.ffnHidden();
        return c.numLayers() * (c.qkvRows() * C + C * C + 3 * H * C) + (long) c.vocabSize() * C;
    }

    /**
     * The Llama 3 shape as key=value fields, for the PyTorch side to build the same model (H, N: for it to check
     * its own sizing against ours).
     */
    String describeConfig() {
        if (!(model instanceof Llama3 llama)) throw new LlmcException("config: only a Llama 3 model has one here");
        var c = llama.config;
        return String.format(
                Locale.ROOT,
                "maxT=%d V=%d L=%d NH=%d NKV=%d C=%d ffn=%s multipleOf=%d eps=%s theta=%s scaledRope=%b H=%d N=%d",
                c.maxSeqLen(),
                c.vocabSize(),
                c.numLayers(),
                c.numHeads(),
                c.numKvHeads(),
                c.channels(),
                Float.toString(c.ffnDimMultiplier()),
                c.multipleOf(),
                Float.toString(c.normEps()),
                Float.toString(c.ropeTheta()),
                c.useScaledRope(),
                c.ffnHidden(),
                matmulWeights(c));
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    public static void main(String[] args) throws Exception {
        try {
            run(args);
        } catch (LlmcException | NumberFormatException e) {
            System.err.println("StepBench: " + e.getMessage());
            System.exit(2);
        }
    }

    private static void run(String[] args) throws Exception {
        if (args.length >= 4 && args[0].equals("--serve")) {
            var bench = new StepBench(
                    args[1],
                    Integer.parseInt(args[2]),
                    Integer.parseInt(args[3]),
                    args.length > 4 ? Integer.parseInt(args[4]) : 0);
            System.out.println("ready");
            var in = new BufferedReader(new InputStreamReader(System.in));
            for (String line; (line = in.readLine()) != null && !line.equals("quit"); ) {
                String answer = switch (line.trim()) {
                    case "step" ->
                        String.valueOf(Arrays.stream(bench.trainStep()).sum());
                    case "forward" -> String.valueOf(bench.forwardOnly());
                    case "peak" -> String.valueOf(MachineLimits.fmaPeakRound(200)); // ~38 ms: long enough to be steady
                    case "config" -> bench.describeConfig();
                    default -> throw new IllegalArgumentException("unknown command " + line);
                };
                System.out.println(answer);
            }
            return;
        }
        if (args.length < 3) {
            System.err.println(
                    "usage: StepBench MODEL B T [STEPS [WARMUP [RECOMPUTE]]] | --serve MODEL B T [RECOMPUTE]");
            System.exit(2);
        }
        int B = Integer.parseInt(args[1]), T = Integer.parseInt(args[2]);
        int steps = args.length > 3 ? Integer.parseInt(args[3]) : 10;
        int warmup = args.length > 4 ? Integer.parseInt(args[4]) : 3;
        int recompute = args.length > 5 ? Integer.parseInt(args[5]) : 0;
        var compilations = new CompilationFailureWatch(); // from the start: C1 compiles the kernels in the warm-up
        var bench = new StepBench(args[0], B, T, recompute);
        switch (bench.model) {
            case GPT2 gpt2 -> {
                long activations = bench.activationFloats(gpt2);
                System.out.printf(
                        "%s B=%d T=%d recompute=%d threads=%d kernels=%s; activations %,d floats (%.1f MiB)%n",
                        bench.modelName,
                        B,
                        T,
                        recompute,
                        Parallel.threads(),
                        gpt2.kernels().name(),
                        activations,
                        activations * 4 / 1048576.0);
            }
            case Llama3 llama ->
                System.out.printf(
                        "%s B=%d T=%d threads=%d kernels=%s; %s%n",
                        bench.modelName,
                        B,
                        T,
                        Parallel.threads(),
                        llama.kernels().name(),
                        llama.config.describe());
            default -> throw new IllegalStateException("unknown model " + bench.model.getClass());
        }
        for (int s = 0; s < warmup; s++) printStep("warmup", s, bench.trainStep());
        double[][] times = new double[3][steps];
        try (var watch = new DeoptimizationWatch()) { // the JIT's deoptimizations during the timed steps only
            for (int s = 0; s < steps; s++) {
                double[] t = bench.trainStep();
                printStep("step  ", warmup + s, t);
                for (int k = 0; k < 3; k++) times[k][s] = t[k];
            }
            System.out.println(DeoptimizationWatch.summary(watch.stop()));
        }
        try (compilations) {
            System.out.println(CompilationFailureWatch.summary(compilations.stop()));
        }
        double[] total = new double[steps];
        for (int s = 0; s < steps; s++) total[s] = times[0][s] + times[1][s] + times[2][s];
        System.out.printf(
                "median of %d: forward %.1f ms  backward %.1f ms  update %.1f ms  step %.1f ms%n",
                steps, median(times[0]), median(times[1]), median(times[2]), median(total));
        double stepFlops = 3.0 * bench.forwardFlops();
        double gflops = stepFlops / median(total) / 1e6, peak = MachineLimits.measureFmaPeak();
        System.out.printf(
                "step: %.1f GFLOP (6·N·tokens over the matmul weights + attention's T x T products), %.1f GFLOP/s,"
                        + " %.1f%% of the fp32 FMA peak measured after the steps (%.1f GFLOP/s)%n",
                stepFlops / 1e9, gflops, 100 * gflops / peak, peak);
    }

    private static void printStep(String kind, int step, double[] t) {
        System.out.printf(
                "%s %2d: forward %8.1f ms  backward %8.1f ms  update %7.1f ms  total %8.1f ms%n",
                kind, step, t[0], t[1], t[2], t[0] + t[1] + t[2]);
    }

    /** Floats allocated for GPT-2's activations (as many again for their gradients), after one forward. */
    long activationFloats(GPT2 gpt2) {
        gpt2.forward(inputs, targets, B, T);
        return gpt2.numActivations();
    }

    /** The same for the GPT-2 this bench was built with (the speed ladder's rungs are GPT-2 only). */
    long activationFloats() {
        if (model instanceof GPT2 gpt2) return activationFloats(gpt2);
        throw new IllegalStateException("activation floats: GPT-2 only, found " + modelName);
    }
}
