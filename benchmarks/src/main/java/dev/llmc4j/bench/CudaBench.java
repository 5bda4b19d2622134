package dev.llmc4j.bench;

import dev.llmc4j.gpt2.cuda.CudaDriver;
import dev.llmc4j.gpt2.cuda.CudaException;
import dev.llmc4j.gpt2.cuda.GPT2Cuda;
import dev.llmc4j.gpt2.cuda.GPT2CudaModel;
import dev.llmc4j.gpt2.cuda.PeakFlops;
import dev.llmc4j.gpt2.cuda.Precision;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * Training-step benchmark for a GPU machine: ms/step, tokens/s and bf16 MFU of full training steps (zeroGrad,
 * forward, backward, grad norm, AdamW) on random tokens with llm.c's random init. gpt2-cuda/scripts/device-check.sh
 * runs it (phases 4 and 5).
 *
 * <pre>
 *   java -cp ... dev.llmc4j.bench.CudaBench --model d12 --seq 1024 --batch 16,32,64 --attention flash \
 *        --precision bf16 --steps 10 --warmup 3
 * </pre>
 * Each configuration prints one human line and one {@code RESULT key=value ...} line for scripts. A configuration
 * that does not fit in memory prints {@code RESULT ... status=oom} and the run goes on.
 */
public final class CudaBench {
    private CudaBench() {}

    record Config(
            String model,
            Precision precision,
            GPT2Cuda.Attention attention,
            int batch,
            int seq,
            int recompute,
            int steps,
            int warmup) {}

    public static void main(String[] args) {
        try {
            bench(args);
        } catch (LlmcException e) {
            System.err.println("error: " + e.getMessage());
            System.exit(1);
        }
    }

    static void bench(String[] args) {
        String model = "d12";
        List<Integer> batches = List.of(16, 32, 64);
        List<GPT2Cuda.Attention> attentions = List.of(GPT2Cuda.Attention.FLASH);
        Precision precision = Precision.BF16;
        int seq = 1024, steps = 10, warmup = 3, recompute = 1;
        for (int i = 0; i < args.length; i++) {
            String a = args[i];
            String v = i + 1 < args.length ? args[i + 1] : null;
            switch (a) {
                case "--model" -> {
                    model = v;
                    i++;
                }
                case "--batch" -> {
                    batches = parseInts(v);
                    i++;
                }
                case "--seq" -> {
                    seq = Integer.parseInt(v);
                    i++;
                }
                case "--steps" -> {
                    steps = Integer.parseInt(v);
                    i++;
                }
                case "--warmup" -> {
                    warmup = Integer.parseInt(v);
                    i++;
                }
                case "--recompute" -> {
                    recompute = Integer.parseInt(v);
                    i++;
                }
                case "--precision" -> {
                    precision = Precision.parse(v);
                    i++;
                }
                case "--attention" -> {
                    var list = new ArrayList<GPT2Cuda.Attention>();
                    for (String s : v.split(","))
                        list.add(GPT2Cuda.Attention.valueOf(s.trim().toUpperCase(Locale.ROOT)));
                    attentions = list;
                    i++;
                }
                default ->
                    throw new LlmcException("unknown option " + a
                            + " (known: --model --batch --seq --steps --warmup --recompute --precision --attention)");
            }
        }
        var cuda = CudaDriver.get();
        String device = cuda.deviceName(cuda.device(0));
        System.out.printf(
                Locale.ROOT,
                "device: %s, bf16 peak %.1f TFLOPS, driver %d%n",
                device,
                PeakFlops.bf16Tflops(device),
                cuda.driverVersion());
        for (var attention : attentions)
            for (int batch : batches)
                run(new Config(model, precision, attention, batch, seq, recompute, steps, warmup), device);
    }

    static List<Integer> parseInts(String csv) {
        var out = new ArrayList<Integer>();
        for (String s : csv.split(",")) out.add(Integer.parseInt(s.trim()));
        return out;
    }

    static void run(Config c, String device) {
        GPT2Config config = GPT2Config.fromDescriptor(c.model());
        String tag = String.format(
                Locale.ROOT,
                "model=%s precision=%s attention=%s B=%d T=%d recompute=%d",
                c.model(),
                c.precision().name().toLowerCase(Locale.ROOT),
                c.attention().name().toLowerCase(Locale.ROOT),
                c.batch(),
                c.seq(),
                c.recompute());
        var options = new GPT2Cuda.Options(c.precision(), c.attention(), c.recompute(), true, true);
        try (var trainable = GPT2CudaModel.randomInit(config, options)) {
            GPT2Cuda model = trainable.gpu();
            var rng = new Random(42);
            int bt = c.batch() * c.seq();
            int[] inputs = new int[bt], targets = new int[bt];
            for (int i = 0; i < bt; i++) {
                inputs[i] = rng.nextInt(config.vocabSize());
                targets[i] = rng.nextInt(config.vocabSize());
            }
            double totalMs = 0;
            float loss = 0;
            for (int step = 0; step < c.warmup() + c.steps(); step++) {
                model.synchronize();
                long start = System.nanoTime();
                model.zeroGrad();
                loss = model.forward(inputs, targets, c.batch(), c.seq());
                model.backward();
                float norm = model.gradNorm();
                model.update(3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, norm > 1 ? 1 / norm : 1, step + 1);
                model.synchronize();
                double ms = (System.nanoTime() - start) / 1e6;
                if (step >= c.warmup()) totalMs += ms;
            }
            double msPerStep = totalMs / c.steps();
            double tokensPerSecond = bt / (msPerStep / 1000);
            double mfu = PeakFlops.mfu(config, c.seq(), bt, msPerStep / 1000, device);
            System.out.printf(
                    Locale.ROOT,
                    "%-80s %9.2f ms/step %10.0f tok/s  MFU %5.1f%%  loss %.4f%n",
                    tag,
                    msPerStep,
                    tokensPerSecond,
                    mfu * 100,
                    loss);
            System.out.printf(
                    Locale.ROOT,
                    "RESULT %s status=ok ms_per_step=%.3f tok_per_s=%.1f mfu=%.4f loss=%.4f%n",
                    tag,
                    msPerStep,
                    tokensPerSecond,
                    mfu,
                    loss);
        } catch (CudaException e) {
            String status = e.errorName().contains("OUT_OF_MEMORY") ? "oom" : "error";
            System.out.printf(Locale.ROOT, "%-80s %s: %s%n", tag, status, e.getMessage());
            System.out.printf(Locale.ROOT, "RESULT %s status=%s%n", tag, status);
        }
    }
}
