package dev.llmc4j.llama3;

import dev.llmc4j.cpu.Floats;
import java.io.PrintStream;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * llm.c's test_llama3 on the CPU: against a debug state, the logits, the loss and every gradient tensor must match
 * to a relative error of 1e-5 (||ours - ref|| / ||ref||: stricter than test_llama3.cu's per-element thresholds),
 * then the S recorded training steps are replayed by llm.c's rule (the one train_llama3.py records them with and
 * test_llama3.cu replays: AdamW lr 1e-5, betas 0.9/0.95, eps 1e-8, weight decay 0, gradients scaled by 1/norm when
 * the global norm exceeds 1.0). As test_llama3.cu does in fp32, each loss, rounded to 6 decimals, must be within
 * 1e-5 of the recorded one; we also check each pre-clip gradient norm, to 1e-4 relative.
 */
public final class Llama3ParityCheck {
    private Llama3ParityCheck() {}

    public static final double TENSOR_TOLERANCE = 1e-5;
    /** test_llama3.cu's fp32 loss threshold. */
    public static final double LOSS_TOLERANCE = 1e-5;

    public static final double NORM_TOLERANCE = 1e-4;

    /** The training rule of llm.c's llama3 branch (train_llama3.py defaults, test_llama3.cu's update). */
    public static final float LEARNING_RATE = 1e-5f, BETA1 = 0.9f, BETA2 = 0.95f, EPS = 1e-8f, WEIGHT_DECAY = 0f;

    public static final float CLIP_NORM = 1.0f;

    public record Result(boolean ok, double logitError, double[] gradientErrors, float[] losses, float[] gradNorms) {}

    /** ||ours - ref|| / ||ref|| over count floats (plain ||ours - ref|| when ref is zero, as the bias slots are). */
    public static double relativeError(
            MemorySegment ours, long oursOffset, MemorySegment ref, long refOffset, long count) {
        double diff = 0, norm = 0;
        for (long i = 0; i < count; i++) {
            double r = ref.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, refOffset + i);
            double o = Floats.get(ours, oursOffset + i);
            diff += (o - r) * (o - r);
            norm += r * r;
        }
        return norm == 0 ? Math.sqrt(diff) : Math.sqrt(diff / norm);
    }

    /** Runs the check on the model (which it trains), printing one line per item to out. */
    public static Result run(Llama3 model, Llama3DebugState state, PrintStream out) {
        var config = model.config;
        int B = state.batchSize(), T = state.seqLen();
        int[] x = state.inputs(), y = state.targets();
        boolean ok = true;

        float loss = model.forward(x, y, B, T);
        double logitError = relativeError(model.logits(), 0, state.logits(), 0, (long) B * T * config.vocabSize());
        boolean logitsOk = logitError <= TENSOR_TOLERANCE;
        boolean lossOk = Math.abs(loss - state.loss()) <= TENSOR_TOLERANCE * Math.max(1, Math.abs(state.loss()));
        out.printf("logits    relative error %.3e  %s%n", logitError, logitsOk ? "OK" : "NOT OK");
        out.printf("loss      %.6f (reference %.6f)  %s%n", loss, state.loss(), lossOk ? "OK" : "NOT OK");
        ok &= logitsOk & lossOk;

        model.zeroGrad();
        model.backward();
        long[] offsets = config.parameterOffsets(), sizes = config.parameterSizes();
        double[] gradientErrors = new double[16];
        for (int slot = 0; slot < 16; slot++) {
            gradientErrors[slot] =
                    relativeError(model.gradients(), offsets[slot], state.grads(), offsets[slot], sizes[slot]);
            boolean slotOk = gradientErrors[slot] <= TENSOR_TOLERANCE;
            out.printf(
                    "d%-9s relative error %.3e  %s%n",
                    Llama3Config.PARAMETER_NAMES[slot], gradientErrors[slot], slotOk ? "OK" : "NOT OK");
            ok &= slotOk;
        }

        float[] expectedLosses = state.losses(), expectedNorms = state.gradNorms();
        float[] losses = new float[expectedLosses.length], norms = new float[expectedLosses.length];
        for (int step = 0; step < expectedLosses.length; step++) {
            long start = System.nanoTime();
            losses[step] = model.forward(x, y, B, T);
            model.zeroGrad();
            model.backward();
            norms[step] = model.gradientNorm();
            float gradScale = norms[step] > CLIP_NORM ? CLIP_NORM / norms[step] : 1.0f;
            model.update(LEARNING_RATE, BETA1, BETA2, EPS, WEIGHT_DECAY, gradScale, step + 1);
            // test_llama3.cu compares the loss after rounding it to the 6 decimals it prints
            double rounded = Math.round(losses[step] * 1e6) / 1e6;
            boolean stepOk = Math.abs(rounded - expectedLosses[step]) < LOSS_TOLERANCE
                    && Math.abs(norms[step] - expectedNorms[step]) <= NORM_TOLERANCE * expectedNorms[step];
            out.printf(
                    "step %d: loss %.6f (reference %.6f) grad norm %.6f (reference %.6f)  %s (took %.1f ms)%n",
                    step,
                    losses[step],
                    expectedLosses[step],
                    norms[step],
                    expectedNorms[step],
                    stepOk ? "OK" : "NOT OK",
                    (System.nanoTime() - start) / 1e6);
            ok &= stepOk;
        }
        out.println("overall okay: " + ok);
        return new Result(ok, logitError, gradientErrors, losses, norms);
    }
}
