package dev.llmc4j.cli;

import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.data.TextEncoder;
import dev.llmc4j.data.TinyShakespeare;
import dev.llmc4j.llama3.Llama3Tokenizer;
import dev.llmc4j.util.LlmcException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;
import picocli.CommandLine.Model.CommandSpec;

/** {@code llmc data}: turn text into the GPT-2 or Llama 3 token shards the trainers read. */
@Command(
        name = "data",
        mixinStandardHelpOptions = true,
        description = {"Prepare training data: GPT-2 token shards (llm.c format) plus gpt2_tokenizer.bin,",
            "or with --model llama3 --tokenizer tokenizer.model Llama 3 shards (uint32) for ./llmc llama3 train."},
        subcommands = {DataCommand.TinyShakespeareCommand.class, DataCommand.TextCommand.class})
public final class DataCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code --model gpt2|llama3} and {@code --tokenizer FILE}: whose tokens the shards hold (llm.c's {@code --model}). */
    static final class ModelChoice {
        @Option(names = "--model", paramLabel = "gpt2|llama3", defaultValue = "gpt2",
                description = "whose tokens: gpt2 (uint16 shards and gpt2_tokenizer.bin) or llama3 (uint32 shards,"
                        + " <|begin_of_text|> before each section; needs --tokenizer) (default: ${DEFAULT-VALUE})")
        String model;

        @Option(names = "--tokenizer", paramLabel = "FILE",
                description = "--model llama3: Meta's tokenizer.model (tiktoken format), which you supply; llmc never downloads it")
        Path tokenizer;

        boolean isLlama3() {
            return switch (model) {
                case "gpt2" -> false;
                case "llama3" -> true;
                default -> throw new LlmcException("--model: expected gpt2 or llama3, found " + model);
            };
        }

        /** The encoder, the tokenizer loaded and checked first so that a wrong option stops before any work. */
        TextEncoder encoder() {
            if (!isLlama3()) {
                if (tokenizer != null)
                    throw new LlmcException("--tokenizer is for --model llama3; GPT-2's tokenizer is built in (leave --tokenizer out)");
                return TextEncoder.gpt2();
            }
            if (tokenizer == null)
                throw new LlmcException("--model llama3 needs --tokenizer FILE: Meta's Llama 3 tokenizer.model (tiktoken format), which you supply");
            if (!Files.isRegularFile(tokenizer) || !Files.isReadable(tokenizer))
                throw new LlmcException("--tokenizer " + tokenizer + ": no readable file there (Meta's Llama 3 tokenizer.model)");
            try {
                return Llama3Tokenizer.load(tokenizer).shardEncoder();
            } catch (LlmcException e) {
                throw new LlmcException("--tokenizer " + tokenizer + ": " + e.getMessage(), e);
            }
        }

        /** The default output folder: {@code base} for GPT-2, {@code base-llama3} for Llama 3 (same file names as llm.c). */
        Path defaultFolder(Path base) {
            return isLlama3() ? base.resolveSibling(base.getFileName() + "-llama3") : base;
        }
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
                "--model llama3 --tokenizer tokenizer.model: the script's --model llama-3, uint32 shards of the same names",
                "(32,768 val and 276,224 train tokens) in data/tinyshakespeare-llama3.",
                "Offline? Pass a copy with --input FILE, or put it at <cache>/input.txt yourself."
            })
    static final class TinyShakespeareCommand implements Runnable {
        @Spec
        CommandSpec spec;

        @Option(names = {"-o", "--output"}, paramLabel = "DIR",
                description = "Where the shards go (default: data/tinyshakespeare, or data/tinyshakespeare-llama3 for --model llama3,"
                        + " under the current folder; llm.c uses dev/data/tinyshakespeare).")
        Path output;

        @Mixin
        ModelChoice model;

        @Option(names = "--input", paramLabel = "FILE",
                description = "Use this copy of input.txt instead of downloading (its SHA-256 must match).")
        Path input;

        @Option(names = "--cache", paramLabel = "DIR",
                description = "Where the downloaded text is kept (default: $XDG_CACHE_HOME/llmc4j/tinyshakespeare, else ~/.cache/llmc4j/tinyshakespeare).")
        Path cache;

        @Override
        public void run() {
            PrintWriter out = spec.commandLine().getOut();
            TextEncoder encoder = model.encoder();
            Path folder = output != null ? output : model.defaultFolder(Path.of("data", "tinyshakespeare"));
            Path cacheDir = cache != null ? cache : TinyShakespeare.defaultCacheDir();
            var bar = ProgressBar.forTerminal("downloading " + TinyShakespeare.FILE_NAME);
            Path text = TinyShakespeare.locate(input, cacheDir, bar);
            bar.finish();
            out.println("text: " + text + " (SHA-256 ok)");
            var written = DatasetBuilder.buildTinyShakespeare(DatasetBuilder.readUtf8(text), folder, encoder);
            report(out, written);
        }
    }

    @Command(
            name = "text",
            mixinStandardHelpOptions = true,
            description = {
                "Tokenize your own UTF-8 text files into GPT-2 (or Llama 3) shards.",
                "",
                "Same rules as tinyshakespeare (sections split at blank lines, each prefixed by <|endoftext|>,",
                "or <|begin_of_text|> for --model llama3); the first --val-fraction of the tokens is the validation shard.",
                "Writes <name>_val.bin, <name>_train.bin and gpt2_tokenizer.bin (llama3: uint32 shards, no tokenizer file)."
            })
    static final class TextCommand implements Runnable {
        @Spec
        CommandSpec spec;

        @Parameters(arity = "1..*", paramLabel = "FILE", description = "UTF-8 text files, tokenized in the order given.")
        List<Path> files;

        @Range(min = 0, max = 1, minExclusive = true, maxExclusive = true)
        @Option(names = "--val-fraction", paramLabel = "F", defaultValue = "0.1",
                description = "Fraction of the tokens (from the start) used for validation, 0 < F < 1 (default: ${DEFAULT-VALUE}).")
        double valFraction;

        @Option(names = {"-o", "--output"}, paramLabel = "DIR", description = "Output folder (default: data/<name>, or data/<name>-llama3 for --model llama3).")
        Path output;

        @Mixin
        ModelChoice model;

        @Option(names = "--name", paramLabel = "NAME", description = "Shard name prefix (default: the first file's name without extension).")
        String name;

        @Override
        public void run() {
            String prefix = name != null ? name : stripExtension(files.getFirst().getFileName().toString());
            if (prefix.isBlank()) throw new LlmcException("cannot derive a shard name from " + files.getFirst() + "; pass --name");
            TextEncoder encoder = model.encoder();
            Path folder = output != null ? output : model.defaultFolder(Path.of("data", prefix));
            report(spec.commandLine().getOut(), DatasetBuilder.buildText(files, valFraction, folder, prefix, encoder));
        }

        private static String stripExtension(String fileName) {
            int dot = fileName.lastIndexOf('.');
            return dot > 0 ? fileName.substring(0, dot) : fileName;
        }
    }

    private static void report(PrintWriter out, DatasetBuilder.Written written) {
        out.println(String.format(Locale.ROOT, "wrote %,d tokens to %s", written.valTokens(), written.valFile()));
        out.println(String.format(Locale.ROOT, "wrote %,d tokens to %s", written.trainTokens(), written.trainFile()));
        if (written.tokenizerFile() != null) out.println("wrote " + written.tokenizerFile());
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
