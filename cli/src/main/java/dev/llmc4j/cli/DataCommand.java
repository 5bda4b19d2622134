package dev.llmc4j.cli;

import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.data.EvalFile;
import dev.llmc4j.data.HellaSwag;
import dev.llmc4j.data.ShardedDatasetBuilder;
import dev.llmc4j.data.TextEncoder;
import dev.llmc4j.data.TinyShakespeare;
import dev.llmc4j.llama3.Llama3Tokenizer;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.util.LlmcException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;
import picocli.CommandLine.Spec;

/** {@code llmc data}: turn text into the GPT-2 or Llama 3 token shards the trainers read. */
@Command(
        name = "data",
        mixinStandardHelpOptions = true,
        description = {
            "Prepare training data: GPT-2 token shards (llm.c format) plus gpt2_tokenizer.bin,",
            "or with --model llama3 --tokenizer tokenizer.model Llama 3 shards (uint32) for ./llmc llama3 train."
        },
        subcommands = {
            DataCommand.TinyShakespeareCommand.class,
            DataCommand.TextCommand.class,
            DataCommand.HellaSwagCommand.class
        })
public final class DataCommand implements Runnable {
    @Spec
    CommandSpec spec;

    @Override
    public void run() {
        spec.commandLine().usage(spec.commandLine().getOut());
    }

    /** {@code --model gpt2|llama3} and {@code --tokenizer FILE}: whose tokens the shards hold (llm.c's {@code --model}). */
    static final class ModelChoice {
        @Option(
                names = "--model",
                paramLabel = "gpt2|llama3",
                defaultValue = "gpt2",
                description = "whose tokens: gpt2 (uint16 shards and gpt2_tokenizer.bin) or llama3 (uint32 shards,"
                        + " <|begin_of_text|> before each section; needs --tokenizer) (default: ${DEFAULT-VALUE})")
        String model;

        @Option(
                names = "--tokenizer",
                paramLabel = "FILE",
                description =
                        "--model llama3: Meta's tokenizer.model (tiktoken format), which you supply; llmc never downloads it")
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
                    throw new LlmcException(
                            "--tokenizer is for --model llama3; GPT-2's tokenizer is built in (leave --tokenizer out)");
                return TextEncoder.gpt2();
            }
            if (tokenizer == null)
                throw new LlmcException(
                        "--model llama3 needs --tokenizer FILE: Meta's Llama 3 tokenizer.model (tiktoken format), which you supply");
            if (!Files.isRegularFile(tokenizer) || !Files.isReadable(tokenizer))
                throw new LlmcException(
                        "--tokenizer " + tokenizer + ": no readable file there (Meta's Llama 3 tokenizer.model)");
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

        @Option(
                names = {"-o", "--output"},
                paramLabel = "DIR",
                description =
                        "Where the shards go (default: data/tinyshakespeare, or data/tinyshakespeare-llama3 for --model llama3,"
                                + " under the current folder; llm.c uses dev/data/tinyshakespeare).")
        Path output;

        @Mixin
        ModelChoice model;

        @Option(
                names = "--input",
                paramLabel = "FILE",
                description = "Use this copy of input.txt instead of downloading (its SHA-256 must match).")
        Path input;

        @Option(
                names = "--cache",
                paramLabel = "DIR",
                description =
                        "Where the downloaded text is kept (default: $XDG_CACHE_HOME/llmc4j/tinyshakespeare, else ~/.cache/llmc4j/tinyshakespeare).")
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
                "Tokenize your own corpus, of any size, into llm.c's token shards (as its fineweb.py): streamed, on all cores.",
                "",
                "Inputs: any number of UTF-8 text files or globs (in the order given, each glob's matches sorted), or with",
                "--jsonl FIELD JSON lines whose FIELD is one document each. Text files are cut into sections at blank lines",
                "(tinyshakespeare's rule). Each document or section starts with <|endoftext|> (<|begin_of_text|> for",
                "--model llama3). The token stream is cut into shards of --shard-size tokens, the first one the val shard:",
                "NAME_val_000000.bin, NAME_train_000001.bin, ... plus gpt2_tokenizer.bin (llama3: uint32 shards, no tokenizer file).",
                "Memory stays bounded; a run that stopped is resumed by running the same command (finished shards are kept).",
                "--val-fraction F: the small-text mode instead: the whole text in memory, NAME_val.bin and NAME_train.bin."
            })
    static final class TextCommand implements Runnable {
        @Spec
        CommandSpec spec;

        @Parameters(
                arity = "1..*",
                paramLabel = "FILE|GLOB",
                description = "UTF-8 text (or --jsonl) files, or globs such as 'corpus/*.txt'.")
        List<String> inputs;

        @Option(
                names = "--jsonl",
                paramLabel = "FIELD",
                description = "the inputs are JSON lines; each line's FIELD (a string) is a document")
        String jsonField;

        @Range(min = 1, max = Integer.MAX_VALUE)
        @Option(
                names = "--shard-size",
                paramLabel = "TOKENS",
                defaultValue = "100000000",
                description = "tokens per shard (default: ${DEFAULT-VALUE}, llm.c's FineWeb shards)")
        long shardSize;

        @Range(min = 1, max = 4096)
        @Option(names = "--threads", paramLabel = "N", description = "tokenizing threads (default: all cores)")
        Integer threads;

        @Range(min = 0, max = 1, minExclusive = true, maxExclusive = true)
        @Option(
                names = "--val-fraction",
                paramLabel = "F",
                description =
                        "small-text mode: the first fraction F (0 < F < 1) of the tokens is NAME_val.bin, the rest NAME_train.bin")
        Double valFraction;

        @Option(
                names = {"-o", "--output"},
                paramLabel = "DIR",
                description = "Output folder (default: data/<name>, or data/<name>-llama3 for --model llama3).")
        Path output;

        @Mixin
        ModelChoice model;

        @Option(
                names = "--name",
                paramLabel = "NAME",
                description = "Shard name prefix (default: the first file's name without extension).")
        String name;

        @Override
        public void run() {
            List<Path> files = InputFiles.expand(inputs);
            String prefix = name != null
                    ? name
                    : stripExtension(files.getFirst().getFileName().toString());
            if (prefix.isBlank())
                throw new LlmcException("cannot derive a shard name from " + files.getFirst() + "; pass --name");
            TextEncoder encoder = model.encoder();
            Path folder = output != null ? output : model.defaultFolder(Path.of("data", prefix));
            PrintWriter out = spec.commandLine().getOut();
            if (valFraction != null) {
                if (jsonField != null) throw new LlmcException("--val-fraction reads text files; leave out --jsonl");
                report(out, DatasetBuilder.buildText(files, valFraction, folder, prefix, encoder));
                return;
            }
            int threadCount = threads != null ? threads : Runtime.getRuntime().availableProcessors();
            var bar = TokenProgress.forTerminal();
            var result = ShardedDatasetBuilder.build(
                    new ShardedDatasetBuilder.Options(
                            files, jsonField, folder, prefix, shardSize, threadCount, encoder),
                    bar);
            bar.finish();
            if (result.skippedShards() > 0)
                out.println(
                        String.format(Locale.ROOT, "kept %d shards an earlier run finished", result.skippedShards()));
            out.println(String.format(
                    Locale.ROOT,
                    "wrote %,d tokens in %d shards to %s (%s .. %s): %,.0f tokens/s on %d threads",
                    result.tokens(),
                    result.shards().size(),
                    folder,
                    result.shards().getFirst().getFileName(),
                    result.shards().getLast().getFileName(),
                    result.tokensPerSecond(),
                    threadCount));
            Path tokenizerFile = encoder.writeTokenizer(folder);
            if (tokenizerFile != null) out.println("wrote " + tokenizerFile);
            out.flush();
        }

        private static String stripExtension(String fileName) {
            int dot = fileName.lastIndexOf('.');
            return dot > 0 ? fileName.substring(0, dot) : fileName;
        }
    }

    /** A one-line tokens and tokens/s bar on an interactive terminal (stderr); silent when output is a file or pipe. */
    static final class TokenProgress implements ShardedDatasetBuilder.Progress {
        private final boolean terminal;
        private boolean drawn;

        private TokenProgress(boolean terminal) {
            this.terminal = terminal;
        }

        static TokenProgress forTerminal() {
            var console = System.console();
            return new TokenProgress(console != null && console.isTerminal());
        }

        @Override
        public void update(long tokens, int shard, double tokensPerSecond) {
            if (!terminal) return;
            System.err.print(String.format(
                    Locale.ROOT,
                    "\rtokenizing: %,d tokens, shard %d, %,.0f tokens/s   ",
                    tokens,
                    shard,
                    tokensPerSecond));
            System.err.flush();
            drawn = true;
        }

        void finish() {
            if (drawn) System.err.println();
        }
    }

    @Command(
            name = "hellaswag",
            mixinStandardHelpOptions = true,
            description = {
                "Write llm.c's HellaSwag eval file (dev/data/hellaswag.py's hellaswag_val.bin, byte for byte) from",
                "HellaSwag's JSONL, which you supply (llmc works offline: e.g. hellaswag_val.jsonl of rowanz/hellaswag).",
                "GPT-2 tokens: each context as encode(ctx), each ending as encode(\" \" + ending); 10,042 val examples."
            })
    static final class HellaSwagCommand implements Runnable {
        @Spec
        CommandSpec spec;

        @Option(
                names = "--input",
                paramLabel = "FILE.jsonl",
                description = "HellaSwag JSON lines (ctx, endings, label)")
        Path input;

        @Option(
                names = {"-o", "--output"},
                paramLabel = "FILE",
                defaultValue = "data/hellaswag/hellaswag_val.bin",
                description =
                        "the eval file (default: ${DEFAULT-VALUE}; llm.c's is dev/data/hellaswag/hellaswag_val.bin)")
        Path output;

        @Override
        public void run() {
            if (input == null)
                throw new LlmcException(
                        "data hellaswag needs --input FILE.jsonl: llmc downloads nothing here; get HellaSwag's "
                                + "hellaswag_val.jsonl yourself and pass it");
            var tokenizer = GPT2Tokenizer.get();
            var examples = HellaSwag.render(input, text -> {
                // tiktoken's encode, which llm.c's script calls, refuses special-token text
                if (text.contains(GPT2Tokenizer.EOT_TEXT))
                    throw new LlmcException(
                            input + ": text contains " + GPT2Tokenizer.EOT_TEXT + ", which GPT-2's encode refuses");
                return tokenizer.encodeOrdinary(text);
            });
            EvalFile.write(output, examples);
            var out = spec.commandLine().getOut();
            out.println(String.format(Locale.ROOT, "wrote %,d examples to %s", examples.size(), output));
            out.flush();
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
                line = String.format(
                        Locale.ROOT,
                        "\r%s [%s%s] %3d%% %,d / %,d KiB",
                        label,
                        "#".repeat(filled),
                        " ".repeat(WIDTH - filled),
                        100 * done / total,
                        done / 1024,
                        total / 1024);
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
