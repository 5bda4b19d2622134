package dev.llmc4j.bench;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Kernels;
import dev.llmc4j.model.GPT2Config;
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.Arrays;
import java.util.Random;

/**
 * Times GPT-2 training steps (forward, backward, AdamW) on random tokens from llm.c's random init.
 *
 * <pre>
 *   StepBench MODEL B T [STEPS [WARMUP [RECOMPUTE]]]   e.g. d12 4 64 10 3 0: prints each step and the medians
 *   StepBench --serve MODEL B T [RECOMPUTE]            one line per command on stdin: "step" or "forward" runs
 *                                                      one and prints its ms, "peak" a short round of the fp32
 *                                                      FMA peak (GFLOP/s), "quit" ends (bench/cpu_vs_pytorch.py)
 * </pre>
 *
 * The machine's fp32 FMA peak and read bandwidth, to quote a step against: {@link MachineLimits}.
 */
public final class StepBench {
    private final GPT2 model;
    private final int B, T;
    private final int[] inputs, targets;
    private int step;

    StepBench(String descriptor, int B, int T, int recompute) {
        this(GPT2Config.fromDescriptor(descriptor), B, T, recompute);
    }

    /** A random-init model of {@code config} with the kernels -Dllmc.kernels names, and fixed random tokens. */
    StepBench(GPT2Config config, int B, int T, int recompute) {
        var kernels = GPT2Kernels.of(CpuKernels.Choice.parse(System.getProperty("llmc.kernels", "vectorized")));
        this.model = GPT2.randomInit(config, kernels).recompute(recompute);
        this.B = B;
        this.T = T;
        var random = new Random(1234);
        this.inputs = random.ints(B * T, 0, config.vocabSize()).toArray();
        this.targets = random.ints(B * T, 0, config.vocabSize()).toArray();
    }

    /** One training step; returns {forward, backward, update} in ms. */
    double[] trainStep() {
        long t0 = System.nanoTime();
        model.forward(inputs, targets, B, T);
        long t1 = System.nanoTime();
        model.zeroGrad();
        model.backward();
        long t2 = System.nanoTime();
        model.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.0f, ++step);
        long t3 = System.nanoTime();
        return new double[] {(t1 - t0) / 1e6, (t2 - t1) / 1e6, (t3 - t2) / 1e6};
    }

    double forwardOnly() {
        long t0 = System.nanoTime();
        model.forward(inputs, targets, B, T);
        return (System.nanoTime() - t0) / 1e6;
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
    }

    public static void main(String[] args) throws Exception {
        if (args.length >= 1 && args[0].equals("--serve")) {
            var bench = new StepBench(
                    args[1],
                    Integer.parseInt(args[2]),
                    Integer.parseInt(args[3]),
                    args.length > 4 ? Integer.parseInt(args[4]) : 0);
            System.out.println("ready");
            var in = new BufferedReader(new InputStreamReader(System.in));
            for (String line; (line = in.readLine()) != null && !line.equals("quit"); ) {
                double ms = switch (line.trim()) {
                    case "step" -> Arrays.stream(bench.trainStep()).sum();
                    case "forward" -> bench.forwardOnly();
                    case "peak" -> MachineLimits.fmaPeakRound(40);
                    default -> throw new IllegalArgumentException("unknown command " + line);
                };
                System.out.println(ms);
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
        var bench = new StepBench(args[0], B, T, recompute);
        System.out.printf(
                "GPT-2 %s B=%d T=%d recompute=%d threads=%d kernels=%s; activations %,d floats (%.1f MiB)%n",
                args[0],
                B,
                T,
                recompute,
                Parallel.threads(),
                bench.model.kernels().name(),
                bench.activationFloats(),
                bench.activationFloats() * 4 / 1048576.0);
        double[][] times = new double[3][steps];
        for (int s = 0; s < warmup + steps; s++) {
            double[] t = bench.trainStep();
            System.out.printf(
                    "%s %2d: forward %8.1f ms  backward %8.1f ms  update %7.1f ms  total %8.1f ms%n",
                    s < warmup ? "warmup" : "step  ", s, t[0], t[1], t[2], t[0] + t[1] + t[2]);
            if (s >= warmup) for (int k = 0; k < 3; k++) times[k][s - warmup] = t[k];
        }
        double[] total = new double[steps];
        for (int s = 0; s < steps; s++) total[s] = times[0][s] + times[1][s] + times[2][s];
        System.out.printf(
                "median of %d: forward %.1f ms  backward %.1f ms  update %.1f ms  step %.1f ms%n",
                steps, median(times[0]), median(times[1]), median(times[2]), median(total));
        // matmul flops as benchmarks/scripts/cpu_vs_pytorch.py counts them: 2 per multiply-add over the 12 L C^2
        // weights and the lm head, plus attention's two (T x T) products; a training step is 3x the forward
        var config = GPT2Config.fromDescriptor(args[0]);
        long L = config.numLayers(), C = config.channels(), Vp = config.paddedVocabSize(), BT = (long) B * T;
        double stepFlops = 3.0 * (2.0 * BT * (12 * L * C * C + Vp * C) + 4.0 * L * BT * T * C);
        double gflops = stepFlops / median(total) / 1e6, peak = MachineLimits.measureFmaPeak();
        System.out.printf(
                "step: %.1f GFLOP, %.1f GFLOP/s, %.1f%% of the fp32 FMA peak measured after the steps (%.1f GFLOP/s)%n",
                stepFlops / 1e9, gflops, 100 * gflops / peak, peak);
    }

    long activationFloats() {
        model.forward(inputs, targets, B, T);
        return model.numActivations();
    }
}
