package dev.llmc4j.train;

import dev.llmc4j.data.EvalFile;
import dev.llmc4j.util.LlmcException;
import java.util.Arrays;
import java.util.List;

/**
 * HellaSwag accuracy as llm.c's trainer measures it (llmc/dataloader.h's EvalLoader, "acc_norm", completion style):
 * B/4 examples per batch of B rows of T tokens; each example fills 4 rows with the shared context followed by one
 * completion; the targets are the inputs shifted by one and a mask marks the positions that predict a completion
 * token. A completion's score is its mean loss over those positions; the prediction is the completion with the lowest
 * score (the first on a tie); an example counts when the prediction is its label.
 * <pre>
 *   row 4i+c:  inputs  = ctx_0 .. ctx_{n-1} end_0 .. end_{m-1}  0 ...                      (T tokens)
 *              targets = .. at n-1+j: end_j (j &lt; m)                                         mask there
 * </pre>
 * With several processes each takes ceil(n/P) consecutive examples (the last fewer), as llm.c splits them; the
 * caller sums {@link Result#correct()} over the processes.
 */
public final class HellaSwagEval {
    private HellaSwagEval() {}

    /**
     * What this process evaluated.
     *
     * @param completionLosses per example index, the 4 mean completion losses (null for examples of other processes)
     * @param predictions      per example index, the predicted completion (-1 for examples of other processes)
     */
    public record Result(int correct, int evaluated, int total, float[][] completionLosses, int[] predictions) {
        public double accuracy() {
            return evaluated == 0 ? 0 : (double) correct / evaluated;
        }
    }

    /** Checks that llm.c's loader could read these examples at batch size B and length T (its asserts, as errors). */
    public static void check(List<EvalFile.Example> examples, int B, int T, String source) {
        if (B < EvalFile.COMPLETIONS)
            throw new LlmcException("HellaSwag: batch size -b " + B + " is below 4 (each example takes 4 rows); "
                    + "raise -b or turn HellaSwag off with -h 0");
        for (var example : examples) {
            int context = example.context().length;
            if (context == 0) throw new LlmcException(source + ", example " + example.index() + ": empty context");
            for (int c = 0; c < example.completions().length; c++) {
                int length = example.completions()[c].length;
                if (length == 0 || context + length >= T)
                    throw new LlmcException(
                            "%s, example %d, completion %d: context + completion = %d tokens, expected 1..%d (below -t %d)"
                                    .formatted(source, example.index(), c, context + length, T - 1, T));
            }
        }
    }

    /** Evaluates this process's share of the examples (rank of processes) with batches of B rows of T tokens. */
    public static Result run(
            TrainableModel model, List<EvalFile.Example> examples, int B, int T, int rank, int processes) {
        check(examples, B, T, "HellaSwag");
        int n = examples.size();
        int perProcess = (n + processes - 1) / processes;
        int start = Math.min(n, perProcess * rank), end = Math.min(n, perProcess * (rank + 1));
        int examplesPerBatch = B / EvalFile.COMPLETIONS;
        var losses = new float[n][];
        var predictions = new int[n];
        Arrays.fill(predictions, -1);
        int correct = 0;
        int[] inputs = new int[B * T], targets = new int[B * T];
        boolean[] mask = new boolean[B * T];
        for (int first = start; first < end; first += examplesPerBatch) {
            int count = Math.min(examplesPerBatch, end - first);
            Arrays.fill(inputs, 0);
            Arrays.fill(targets, 0);
            Arrays.fill(mask, false);
            for (int i = 0; i < count; i++)
                fillRows(examples.get(first + i), i * EvalFile.COMPLETIONS, T, inputs, targets, mask);
            model.forward(inputs, targets, B, T);
            float[] tokenLosses = model.tokenLosses();
            for (int i = 0; i < count; i++) {
                var example = examples.get(first + i);
                float[] scores = new float[EvalFile.COMPLETIONS];
                int best = 0;
                for (int c = 0; c < EvalFile.COMPLETIONS; c++) {
                    int row = (i * EvalFile.COMPLETIONS + c) * T;
                    float sum = 0; // float, in position order, as llm.c sums
                    int tokens = 0;
                    for (int t = 0; t < T; t++) {
                        if (mask[row + t]) {
                            sum += tokenLosses[row + t];
                            tokens++;
                        }
                    }
                    scores[c] = sum / tokens;
                    if (scores[c] < scores[best]) best = c;
                }
                losses[example.index()] = scores;
                predictions[example.index()] = best;
                if (best == example.label()) correct++;
            }
        }
        return new Result(correct, end - start, n, losses, predictions);
    }

    /** Rows base..base+3: the context, then completion c; targets and mask at the positions predicting completion tokens. */
    private static void fillRows(
            EvalFile.Example example, int base, int T, int[] inputs, int[] targets, boolean[] mask) {
        int[] context = example.context();
        for (int c = 0; c < EvalFile.COMPLETIONS; c++) {
            int row = (base + c) * T;
            System.arraycopy(context, 0, inputs, row, context.length);
            int[] completion = example.completions()[c];
            for (int j = 0; j < completion.length; j++) {
                int position = context.length + j;
                inputs[row + position] = completion[j];
                targets[row + position - 1] = completion[j];
                mask[row + position - 1] = true;
            }
        }
    }
}
