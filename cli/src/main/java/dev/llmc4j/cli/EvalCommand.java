package dev.llmc4j.cli;

import dev.llmc4j.data.EvalFile;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.llama3.Llama3;
import dev.llmc4j.train.HellaSwagEval;
import dev.llmc4j.train.TrainableModel;
import dev.llmc4j.util.LlmcException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/** {@code ./llmc eval hellaswag}: a checkpoint's HellaSwag accuracy, as llm.c's trainer measures it with -h 1. */
@Command(
        name = "eval",
        mixinStandardHelpOptions = true,
        description = "Evaluate a checkpoint on a multiple-choice eval file.",
        subcommands = {EvalCommand.HellaSwagCommand.class})
public final class EvalCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(
            name = "hellaswag",
            mixinStandardHelpOptions = true,
            description = {
                "HellaSwag accuracy of a GPT-2 or Llama 3 checkpoint on llm.c's eval file (make it with",
                "./llmc data hellaswag): each completion scored by its mean loss over its tokens, the lowest one predicted",
                "(completion style, acc_norm; llm.c's -h 1). The file's tokens must fit the model's vocabulary."
            })
    static final class HellaSwagCommand implements Callable<Integer> {
        @Spec
        CommandSpec spec;

        @Option(
                names = {"-e", "--model"},
                required = true,
                paramLabel = "FILE",
                description = "GPT-2 or Llama 3 checkpoint (.bin)")
        Path modelFile;

        @Option(
                names = {"-f", "--file"},
                paramLabel = "FILE",
                defaultValue = "data/hellaswag/hellaswag_val.bin",
                description = "eval file (default: ${DEFAULT-VALUE})")
        Path evalFile;

        @Range(min = 4, max = TrainingOptions.MAX_B_OR_T)
        @Option(
                names = {"-b", "--batch-size"},
                paramLabel = "B",
                defaultValue = "4",
                description = "rows per forward, a multiple of 4: B/4 examples at a time (default: ${DEFAULT-VALUE})")
        int batchSize;

        @Range(min = 1, max = TrainingOptions.MAX_B_OR_T, also = 0)
        @Option(
                names = {"-t", "--seq-len"},
                paramLabel = "T",
                defaultValue = "0",
                description =
                        "row length (default: the longest example plus one, rounded up to 64, at most the model's context)")
        int seqLen;

        @Option(
                names = "--verbose",
                description = "print every example's four mean completion losses and its prediction")
        boolean verbose;

        @Override
        public Integer call() {
            PrintWriter out = spec.commandLine().getOut();
            var examples = EvalFile.read(evalFile);
            try (TrainableModel model = switch (ModelFile.of(modelFile)) {
                case GPT2 -> GPT2.fromCheckpoint(modelFile);
                case LLAMA3 -> Llama3.fromCheckpoint(modelFile);
            }) {
                int T = seqLen > 0 ? seqLen : defaultSeqLen(examples, model.maxSeqLen());
                if (T > model.maxSeqLen())
                    throw new LlmcException("-t " + T + " exceeds the model's context length " + model.maxSeqLen());
                for (var example : examples) {
                    for (int[] tokens : example.completions())
                        checkVocabulary(tokens, model.vocabSize(), example.index());
                    checkVocabulary(example.context(), model.vocabSize(), example.index());
                }
                long start = System.nanoTime();
                var result = HellaSwagEval.run(model, examples, batchSize, T, 0, 1);
                if (verbose) {
                    for (var example : examples) {
                        float[] losses = result.completionLosses()[example.index()];
                        out.println(String.format(
                                Locale.ROOT,
                                "%d: losses %.6f %.6f %.6f %.6f predicted %d label %d",
                                example.index(),
                                losses[0],
                                losses[1],
                                losses[2],
                                losses[3],
                                result.predictions()[example.index()],
                                example.label()));
                    }
                }
                out.println(String.format(
                        Locale.ROOT,
                        "HellaSwag: %d/%d = %f (B=%d, T=%d, %.1f s)",
                        result.correct(),
                        result.total(),
                        result.accuracy(),
                        batchSize,
                        T,
                        (System.nanoTime() - start) / 1e9));
            }
            return 0;
        }

        private void checkVocabulary(int[] tokens, int vocabSize, int example) {
            for (int token : tokens) {
                if (token >= vocabSize)
                    throw new LlmcException(
                            "%s, example %d: token id: expected below the model's vocabulary size %d, found %d"
                                    .formatted(evalFile, example, vocabSize, token));
            }
        }

        private static int defaultSeqLen(List<EvalFile.Example> examples, int maxSeqLen) {
            int longest = 0;
            for (var example : examples) {
                for (int[] completion : example.completions())
                    longest = Math.max(longest, example.context().length + completion.length);
            }
            return Math.min(maxSeqLen, (longest + 1 + 63) / 64 * 64);
        }
    }
}
