package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.model.DebugState;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.ParityStep;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

/**
 * llm.c's test_gpt2.cu for {@link GPT2Cuda}: runs the model on a debug state's batch and compares logits, loss,
 * the 16 gradient tensors and the losses of 10 training steps with the reference's, under tolerances that fit the
 * precision (llm.c reference spec, section 2.2):
 * <ul>
 *   <li>bf16/fp16: every logit within 25.0; every gradient element within thr + 0.079 |ref| with a per-tensor thr;
 *       losses within 0.05;</li>
 *   <li>fp32: the CPU check's rule, relative error ||ours - ref|| / ||ref|| at most 1e-5 per tensor, losses within
 *       1e-4.</li>
 * </ul>
 * The per-tensor lines have the CPU check's shape ({@code name max |diff| ... relative error ... OK}) whatever the
 * rule, so the two outputs read side by side.
 *
 * <p>Training steps: when the state records the reference's step losses (our fixtures), the steps use the rule
 * that produced them, llm.c's CPU test rule (AdamW lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on every
 * tensor, no clipping). llm.c's own state files record none; then the steps follow test_gpt2.cu (betas 0.9/0.95,
 * no weight decay, clipping at norm 1) and, for GPT-2 124M at B=4, T=64, compare with test_gpt2.cu's loss list.
 */
public final class CudaParityCheck {
    private CudaParityCheck() {}

    /** How one tensor is judged. */
    public sealed interface Rule {
        boolean accepts(TensorComparison comparison);

        /** llm.c test_gpt2.cu: every element |ours - ref| &lt;= threshold + relative * |ref|. */
        record Elementwise(double threshold, double relative) implements Rule {
            @Override
            public boolean accepts(TensorComparison c) {
                return c.elementsOutside() == 0;
            }
        }

        /** The CPU check: ||ours - ref|| / ||ref|| &lt;= maxRelativeError over the whole tensor. */
        record RelativeNorm(double maxRelativeError) implements Rule {
            @Override
            public boolean accepts(TensorComparison c) {
                return c.relativeError() <= maxRelativeError;
            }
        }
    }

    /** The rules for one precision: logits, each of the 16 gradient tensors (checkpoint order), losses. */
    public record Tolerances(Rule logits, List<Rule> gradients, double loss, double stepLoss) {}

    // test_gpt2.cu's numbers (spec 2.2)
    public static final double LOGITS_16BIT = 25.0;
    public static final double GRADIENT_RELATIVE = 0.079;
    /** thr per gradient tensor for bf16, in checkpoint order wte, wpe, ln1w, ln1b, qkvw, qkvb, attprojw, ... lnfb. */
    public static final double[] GRADIENT_THRESHOLDS_16BIT = {
        5e-1, 4e-3, 1e-1, 4e-2, 5e-2, 3.5e-2, 2e-2, 3e-2, 5e-2, 3e-2, 3e-2, 3e-2, 2e-2, 1e-2, 1e-1, 2e-2
    };

    public static final double LOSS_16BIT = 0.05;
    // fp32: the CPU check's rule (GPT2ParityCheck)
    public static final double MAX_RELATIVE_ERROR_FP32 = 1e-5;
    public static final double LOSS_FP32 = 1e-4;
    /** test_gpt2.cu's step losses for llm.c's gpt2_124M debug state (its rule: betas 0.9/0.95, wd 0, clip 1). */
    public static final float[] LLMC_CUDA_STEP_LOSSES = {
        5.270009f, 4.060681f, 3.320085f, 2.717550f, 2.181066f, 1.653923f, 1.168050f, 0.736873f, 0.401021f, 0.187493f
    };

    public static final int DEFAULT_STEPS = 10;

    public static Tolerances tolerances(Precision precision) {
        var gradients = new ArrayList<Rule>();
        for (int i = 0; i < GPT2Config.PARAMETER_NAMES.length; i++) {
            gradients.add(
                    precision == Precision.FP32
                            ? new Rule.RelativeNorm(MAX_RELATIVE_ERROR_FP32)
                            : new Rule.Elementwise(GRADIENT_THRESHOLDS_16BIT[i], GRADIENT_RELATIVE));
        }
        return precision == Precision.FP32
                ? new Tolerances(
                        new Rule.RelativeNorm(MAX_RELATIVE_ERROR_FP32), List.copyOf(gradients), LOSS_FP32, LOSS_FP32)
                : new Tolerances(new Rule.Elementwise(LOGITS_16BIT, 0), List.copyOf(gradients), LOSS_16BIT, LOSS_16BIT);
    }

    /**
     * One compared tensor: the largest |ours - ref|, the relative error of the whole tensor, how many elements fall
     * outside thr + rel |ref| (for an elementwise rule; 0 otherwise) and the verdict.
     */
    public record TensorComparison(
            String name, double maxAbsDiff, double relativeError, long elementsOutside, boolean ok) {}

    public record Result(List<TensorComparison> tensors, List<ParityStep> steps, boolean ok) {
        public TensorComparison tensor(String name) {
            return tensors.stream()
                    .filter(t -> t.name().equals(name))
                    .findFirst()
                    .orElseThrow();
        }
    }

    /**
     * Compares {@code rows} rows of {@code width} values: ours from a float array (row stride {@code ourStride},
     * from {@code ourOffset}), the reference's little-endian fp32 (row stride {@code refStride}, from
     * {@code refOffset}, in floats). Sums in double; NaN anywhere fails.
     */
    public static TensorComparison compare(
            String name,
            float[] ours,
            long ourOffset,
            long ourStride,
            MemorySegment reference,
            long refOffset,
            long refStride,
            long rows,
            long width,
            Rule rule) {
        double threshold = 0, relative = 0;
        boolean elementwise = rule instanceof Rule.Elementwise;
        if (rule instanceof Rule.Elementwise(double thr, double rel)) {
            threshold = thr;
            relative = rel;
        }
        double maxAbs = 0, diffSquares = 0, refSquares = 0;
        long outside = 0;
        boolean nan = false;
        for (long r = 0; r < rows; r++) {
            for (long i = 0; i < width; i++) {
                double a = ours[Math.toIntExact(ourOffset + r * ourStride + i)];
                double b = reference.getAtIndex(LittleEndian.FLOAT32, refOffset + r * refStride + i);
                double diff = Math.abs(a - b);
                if (Double.isNaN(diff)) {
                    nan = true;
                    outside++;
                    continue;
                }
                maxAbs = Math.max(maxAbs, diff);
                diffSquares += diff * diff;
                refSquares += b * b;
                if (elementwise && diff > threshold + relative * Math.abs(b)) outside++;
            }
        }
        double relativeError = refSquares == 0 ? Math.sqrt(diffSquares) : Math.sqrt(diffSquares / refSquares);
        if (nan) {
            maxAbs = Double.NaN;
            relativeError = Double.POSITIVE_INFINITY;
        }
        var unjudged = new TensorComparison(name, maxAbs, relativeError, outside, false);
        boolean ok = !nan && rule.accepts(unjudged);
        return new TensorComparison(name, maxAbs, relativeError, outside, ok);
    }

    /** The CPU check's per-tensor line, plus the count of elements outside an elementwise rule when it fails. */
    static String line(TensorComparison c) {
        String outside = c.ok() || c.elementsOutside() == 0
                ? ""
                : " (%d elements outside thr + 0.079|ref|)".formatted(c.elementsOutside());
        return "%-9s max |diff| %.3e  relative error %.3e  %s%s"
                .formatted(c.name(), c.maxAbsDiff(), c.relativeError(), c.ok() ? "OK" : "NOT OK", outside);
    }

    /** Whether a step loss matches: |ours - expected| &lt; tolerance (NaN fails). */
    static boolean lossOk(float ours, float expected, double tolerance) {
        double diff = Math.abs((double) ours - expected);
        return diff <= tolerance;
    }

    /** True for llm.c's own GPT-2 124M debug state, the one test_gpt2.cu's loss list belongs to. */
    static boolean isLlmcGpt2Small(GPT2Config config, int B, int T) {
        return config.numLayers() == 12
                && config.channels() == 768
                && config.numHeads() == 12
                && config.vocabSize() == 50257
                && B == 4
                && T == 64;
    }

    /** Runs the check, printing one line per tensor and step, then {@code overall okay: true|false}. */
    public static Result run(GPT2Cuda model, DebugState state, PrintStream out) {
        GPT2Config config = model.config();
        Precision precision = model.precision();
        Tolerances tolerances = tolerances(precision);
        int B = state.batchSize(), T = state.seqLen(), V = config.vocabSize(), Vp = config.paddedVocabSize();
        var tensors = new ArrayList<TensorComparison>();
        var steps = new ArrayList<ParityStep>();
        out.printf(
                "[GPT-2] %s, %,d parameters, on %s (%s, %s attention, recompute %d)%n",
                config,
                config.numParameters(),
                model.deviceName(),
                precision.name().toLowerCase(),
                model.options().attention().name().toLowerCase(),
                model.options().recompute());
        out.printf("[State] B=%d T=%d, %d reference step losses%n", B, T, state.expectedLosses().length);
        out.println(
                precision == Precision.FP32
                        ? "[Rule]  fp32: relative error <= 1e-5 per tensor, losses within 1e-4"
                        : "[Rule]  16-bit (llm.c test_gpt2.cu): logits |diff| < 25, gradients |diff| <= thr + 0.079|ref|, losses within 0.05");

        long start = System.nanoTime();
        float loss = model.forward(state.inputs(), state.targets(), B, T);
        float[] logits = new float[Math.toIntExact((long) B * T * Vp)];
        model.copyLogitsToHost(logits); // before backward, which overwrites them with their gradient
        model.zeroGrad();
        model.backward(1);
        float[] gradients = new float[Math.toIntExact(model.numParameters())];
        model.copyGradientsToHost(gradients);
        out.printf("forward + backward: %.1f ms%n", (System.nanoTime() - start) / 1e6);

        // logits: ours are (B*T, Vp), the reference's (B*T, V); only the V real columns count
        var logitsComparison =
                compare("logits", logits, 0, Vp, state.logits(), 0, V, (long) B * T, V, tolerances.logits());
        tensors.add(logitsComparison);
        out.println(line(logitsComparison));
        double lossDiff = Math.abs(loss - state.loss());
        boolean lossOk = lossOk(loss, state.loss(), tolerances.loss());
        tensors.add(new TensorComparison("loss", lossDiff, lossDiff / Math.abs(state.loss()), lossOk ? 0 : 1, lossOk));
        out.printf(
                "%-9s ours %.6f ref %.6f |diff| %.2e %s%n",
                "loss", loss, state.loss(), lossDiff, lossOk ? "OK" : "NOT OK");

        long[] sizes = config.parameterSizes();
        long offset = 0;
        for (int i = 0; i < sizes.length; i++) {
            // wte's gradient is padded to Vp rows on both sides; as in the CPU check only the V real rows count
            long count = i == 0 ? (long) V * config.channels() : sizes[i];
            var c = compare(
                    "d" + GPT2Config.PARAMETER_NAMES[i],
                    gradients,
                    offset,
                    0,
                    state.gradients(),
                    offset,
                    0,
                    1,
                    count,
                    tolerances.gradients().get(i));
            tensors.add(c);
            out.println(line(c));
            offset += sizes[i];
        }

        // training steps on the same batch (step 0's forward and backward are the ones above)
        float[] expected = state.expectedLosses();
        boolean referenceRule = expected.length > 0;
        if (!referenceRule && isLlmcGpt2Small(config, B, T)) expected = LLMC_CUDA_STEP_LOSSES;
        int numSteps = expected.length > 0 ? expected.length : DEFAULT_STEPS;
        boolean stepsOk = true;
        for (int step = 0; step < numSteps; step++) {
            long stepStart = System.nanoTime();
            if (step > 0) {
                loss = model.forward(state.inputs(), state.targets(), B, T);
                model.zeroGrad();
                model.backward(1);
            }
            if (referenceRule) {
                model.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, false, 1.0f, step + 1);
            } else {
                float norm = model.gradNorm();
                model.update(1e-4f, 0.9f, 0.95f, 1e-8f, 0.0f, norm > 1.0f ? 1.0f / norm : 1.0f, step + 1);
            }
            double ms = (System.nanoTime() - stepStart) / 1e6;
            if (expected.length > 0) {
                boolean ok = lossOk(loss, expected[step], tolerances.stepLoss());
                stepsOk &= ok;
                steps.add(ParityStep.compared(
                        out, step, loss, expected[step], ok, referenceRule ? "PyTorch" : "llm.c", ms));
            } else {
                steps.add(ParityStep.uncompared(out, step, loss, ms));
            }
        }
        boolean ok = stepsOk && tensors.stream().allMatch(TensorComparison::ok);
        out.println("overall okay: " + ok);
        return new Result(tensors, steps, ok);
    }
}
