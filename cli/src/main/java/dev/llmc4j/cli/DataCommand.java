package dev.llmc4j.cli;

import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.data.TinyShakespeare;
import dev.llmc4j.util.LlmcException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code llmc data}: turn text into the GPT-2 token shards the trainer reads. */
@Command(
        name = "data",
        mixinStandardHelpOptions = true,
        description = "Prepare training data: GPT-2 token shards (llm.c format) plus gpt2_tokenizer.bin.",
        subcommands = {DataCommand.TinyShakespeareCommand.class, DataCommand.TextCommand.class})
public final class DataCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    @Command(
            name = "tinyshakespeare",
            mixinStandardHelpOptions = true,
            description = {
                "Download tinyshakespeare and tokenize it exactly as llm.c.",
                "",
                "Downloads char-rnn's input.txt (1.1 MB, SHA-256 checked) into a cache folder and tokenizes it as llm.c's",
                "dev/data/tinyshakespeare.py: tiny_shakespeare_val.bin (first 32,768 tokens),",
                "tiny_shakespeare_train.bin (305,260 tokens) and gpt2_tokenizer.bin.",
                "Offline? Pass a copy with --input FILE, or put it at <cache>/input.txt yourself."
            })
    static final class TinyShakespeareCommand implements Runnable {
        @Spec
        CommandSpec spec;

        @Option(names = {"-o", "--output"}, paramLabel = "DIR", defaultValue = "data/tinyshakespeare",
                description = "Where the shards go (default: ${DEFAULT-VALUE}, under the current folder; llm.c uses dev/data/tinyshakespeare).")
        Path output;

        @Option(names = "--input", paramLabel = "FILE",
                description = "Use this copy of input.txt instead of downloading (its SHA-256 must match).")
        Path input;

        @Option(names = "--cache", paramLabel = "DIR",
                description = "Where the downloaded text is kept (default: $XDG_CACHE_HOME/llmc4j/tinyshakespeare, else ~/.cache/llmc4j/tinyshakespeare).")
        Path cache;

        @Override
        public void run() {
            PrintWriter out = spec.commandLine().getOut();
            Path cacheDir = cache != null ? cache : TinyShakespeare.defaultCacheDir();
            var bar = ProgressBar.forTerminal("downloading " + TinyShakespeare.FILE_NAME);
            Path text = TinyShakespeare.locate(input, cacheDir, bar);
            bar.finish();
            out.println("text: " + text + " (SHA-256 ok)");
            var written = DatasetBuilder.buildTinyShakespeare(DatasetBuilder.readUtf8(text), output);
            report(out, written);
        }
    }

    @Command(
            name = "text",
            mixinStandardHelpOptions = true,
            description = {
                "Tokenize your own UTF-8 text files into GPT-2 shards.",
                "",
                "Same rules as tinyshakespeare (sections split at blank lines, each prefixed by <|endoftext|>);",
                "the first --val-fraction of the tokens is the validation shard.",
                "Writes <name>_val.bin, <name>_train.bin and gpt2_tokenizer.bin."
            })
    static final class TextCommand implements Runnable {
        @Spec
        CommandSpec spec;

        @Parameters(arity = "1..*", paramLabel = "FILE", description = "UTF-8 text files, tokenized in the order given.")
        List<Path> files;

        @Option(names = "--val-fraction", paramLabel = "F", defaultValue = "0.1",
                description = "Fraction of the tokens (from the start) used for validation, 0 < F < 1 (default: ${DEFAULT-VALUE}).")
        double valFraction;

        @Option(names = {"-o", "--output"}, paramLabel = "DIR", description = "Output folder (default: data/<name>).")
        Path output;

        @Option(names = "--name", paramLabel = "NAME", description = "Shard name prefix (default: the first file's name without extension).")
        String name;

        @Override
        public void run() {
            String prefix = name != null ? name : stripExtension(files.getFirst().getFileName().toString());
            if (prefix.isBlank()) throw new LlmcException("cannot derive a shard name from " + files.getFirst() + "; pass --name");
            Path folder = output != null ? output : Path.of("data", prefix);
            report(spec.commandLine().getOut(), DatasetBuilder.buildText(files, valFraction, folder, prefix));
        }

        private static String stripExtension(String fileName) {
            int dot = fileName.lastIndexOf('.');
            return dot > 0 ? fileName.substring(0, dot) : fileName;
        }
    }

    private static void report(PrintWriter out, DatasetBuilder.Written written) {
        out.println(String.format(Locale.ROOT, "wrote %,d tokens to %s", written.valTokens(), written.valFile()));
        out.println(String.format(Locale.ROOT, "wrote %,d tokens to %s", written.trainTokens(), written.trainFile()));
        out.println("wrote " + written.tokenizerFile());
        out.flush();
    }

    /** A one-line download bar on an interactive terminal; silent when output goes to a file or pipe. */
    static final class ProgressBar implements TinyShakespeare.Progress {
        private static final int WIDTH = 30;
        private final String label;
        private boolean drawn;

        private ProgressBar(String label) {
            this.label = label;
        }

        static ProgressBar forTerminal(String label) {
            var console = System.console();
            return console != null && console.isTerminal() ? new ProgressBar(label) : new ProgressBar(null);
        }

        @Override
        public void update(long done, long total) {
            if (label == null) return;
            String line;
            if (total > 0) {
                int filled = (int) (WIDTH * done / total);
                line = String.format(Locale.ROOT, "\r%s [%s%s] %3d%% %,d / %,d KiB", label, "#".repeat(filled),
                        " ".repeat(WIDTH - filled), 100 * done / total, done / 1024, total / 1024);
            } else {
                line = String.format(Locale.ROOT, "\r%s %,d KiB", label, done / 1024);
            }
            System.err.print(line);
            System.err.flush();
            drawn = true;
        }

        void finish() {
            if (drawn) System.err.println();
        }
    }
}
