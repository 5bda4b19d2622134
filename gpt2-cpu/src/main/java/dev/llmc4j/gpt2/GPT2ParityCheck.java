package dev.llmc4j.gpt2;

import dev.llmc4j.model.DebugState;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.ParityStep;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * llm.c's test_gpt2, made stricter: runs the model on a debug state's batch and compares logits, loss, all 16
 * gradient tensors and the losses of the training steps with the reference's.
 *
 * <p>Tensors are compared by relative error ||ours - ref|| / ||ref|| (and the max absolute difference is printed):
 * llm.c's absolute 2e-2 is too loose, at random init most gradient tensors are smaller than that everywhere.
 * The training steps follow llm.c's test rule: AdamW lr 1e-4, betas 0.9/0.999, eps 1e-8, weight decay 0.01 on
 * every parameter, no clipping.
 */
public final class GPT2ParityCheck {

    public static final double MAX_RELATIVE_ERROR = 1e-5;
    public static final double MAX_LOSS_DIFFERENCE = 1e-4;
    public static final int DEFAULT_STEPS = 10;

    /** One compared tensor. */
    public record TensorComparison(String name, double maxAbsDiff, double relativeError, boolean ok) {}

    public record Result(List<TensorComparison> tensors, List<ParityStep> steps, boolean ok) {
        public TensorComparison tensor(String name) {
            return tensors.stream()
                    .filter(t -> t.name().equals(name))
                    .findFirst()
                    .orElseThrow();
        }
    }

    private GPT2ParityCheck() {}

    public static Result run(GPT2 model, DebugState state, PrintStream out) {
        GPT2Config config = model.config;
        int B = state.batchSize(), T = state.seqLen(), V = config.vocabSize(), Vp = config.paddedVocabSize();
        var tensors = new ArrayList<TensorComparison>();
        var steps = new ArrayList<ParityStep>();
        out.printf("[GPT-2] %s, %,d parameters%n", config, config.numParameters());
        out.printf("[State] B=%d T=%d, %d reference step losses%n", B, T, state.expectedLosses().length);

        long start = System.nanoTime();
        float loss = model.forward(state.inputs(), state.targets(), B, T);
        model.zeroGrad();
        model.backward();
        out.printf("forward + backward: %.1f ms%n", (System.nanoTime() - start) / 1e6);

        // logits: ours are (B*T, Vp), the reference's (B*T, V)
        tensors.add(report(out, "logits", compare(model.logits(), Vp, state.logits(), V, (long) B * T)));
        double lossDiff = Math.abs(loss - state.loss());
        boolean lossOk = lossDiff <= MAX_LOSS_DIFFERENCE;
        tensors.add(new TensorComparison("loss", lossDiff, lossDiff / Math.abs(state.loss()), lossOk));
        out.printf(
                "%-9s ours %.6f ref %.6f |diff| %.2e %s%n",
                "loss", loss, state.loss(), lossDiff, lossOk ? "OK" : "NOT OK");

        long[] sizes = config.parameterSizes();
        long offset = 0;
        for (int i = 0; i < sizes.length; i++) {
            // the reference's wte gradient is padded too, but only the V real rows are compared
            long count = i == 0 ? (long) V * config.channels() : sizes[i];
            var ours = model.gradients().asSlice(offset * Float.BYTES, count * Float.BYTES);
            var reference = state.gradients().asSlice(offset * Float.BYTES, count * Float.BYTES);
            tensors.add(report(out, "d" + GPT2Config.PARAMETER_NAMES[i], compare(ours, count, reference, count, 1)));
            offset += sizes[i];
        }

        float[] expected = state.expectedLosses();
        int numSteps = expected.length > 0 ? expected.length : DEFAULT_STEPS;
        boolean stepsOk = true;
        for (int step = 0; step < numSteps; step++) {
            long stepStart = System.nanoTime();
            if (step > 0) { // step 0's forward and backward were done above
                loss = model.forward(state.inputs(), state.targets(), B, T);
                model.zeroGrad();
                model.backward();
            }
            model.update(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, step + 1);
            double ms = (System.nanoTime() - stepStart) / 1e6;
            if (expected.length > 0) {
                boolean ok = Math.abs(loss - expected[step]) <= MAX_LOSS_DIFFERENCE;
                stepsOk &= ok;
                steps.add(ParityStep.compared(out, step, loss, expected[step], ok, "PyTorch", ms));
            } else {
                steps.add(ParityStep.uncompared(out, step, loss, ms));
            }
        }
        boolean ok = stepsOk && tensors.stream().allMatch(TensorComparison::ok);
        out.println("overall okay: " + ok);
        return new Result(tensors, steps, ok);
    }

    private static TensorComparison report(PrintStream out, String name, double[] maxAbsAndRelative) {
        boolean ok = maxAbsAndRelative[1] <= MAX_RELATIVE_ERROR;
        out.printf(
                "%-9s max |diff| %.3e  relative error %.3e  %s%n",
                name, maxAbsAndRelative[0], maxAbsAndRelative[1], ok ? "OK" : "NOT OK");
        return new TensorComparison(name, maxAbsAndRelative[0], maxAbsAndRelative[1], ok);
    }

    /**
     * Compares {@code rows} rows of {@code width} = min(ourStride, refStride) floats; returns {max |diff|,
     * ||ours - ref|| / ||ref||}, accumulated in double.
     */
    static double[] compare(MemorySegment ours, long ourStride, MemorySegment reference, long refStride, long rows) {
        long width = Math.min(ourStride, refStride);
        double maxAbs = 0, diffSquares = 0, refSquares = 0;
        for (long r = 0; r < rows; r++) {
            for (long i = 0; i < width; i++) {
                double a = ours.getAtIndex(ValueLayout.JAVA_FLOAT, r * ourStride + i);
                double b = reference.getAtIndex(ValueLayout.JAVA_FLOAT, r * refStride + i);
                double diff = a - b;
                maxAbs = Math.max(maxAbs, Math.abs(diff));
                diffSquares += diff * diff;
                refSquares += b * b;
            }
        }
        double relative = refSquares == 0 ? Math.sqrt(diffSquares) : Math.sqrt(diffSquares / refSquares);
        if (Double.isNaN(maxAbs) || Double.isNaN(relative)) relative = Double.POSITIVE_INFINITY;
        return new double[] {maxAbs, relative};
    }
}
