package dev.llmc4j.data;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * A corpus of any size into llm.c's token shards, as its dev/data/fineweb.py prepares FineWeb: every document becomes
 * the section-start token (GPT-2's EOT) followed by its tokens; the stream is cut into shards of exactly
 * {@code shardSize} tokens (a document that does not fit goes on in the next shard), the last one shorter; shard 0
 * is the validation shard. Names: {@code NAME_val_000000.bin}, {@code NAME_train_000001.bin}, ...
 *
 * <p>Memory stays bounded whatever the corpus size: the reader holds one document, at most {@code 2 * threads}
 * batches of about {@link #BATCH_CHARS} characters are being tokenized (all cores, in parallel), and a shard goes to
 * disk as it fills (a temporary file renamed when complete; see {@link AtomicFiles.Pending}).
 *
 * <p>Resuming: after each completed shard, {@code .NAME.progress} records how many shards are done and where in the
 * input the next one starts (file, byte offset of the document, tokens of it already written). A run with the same
 * inputs and options picks up there: the finished shards are neither re-tokenized nor rewritten.
 */
public final class ShardedDatasetBuilder {
    private ShardedDatasetBuilder() {}

    /** Characters of text per tokenizer task: large enough to amortise the hand-off, small enough to bound memory. */
    public static final int BATCH_CHARS = 1 << 20;

    /**
     * What to build.
     *
     * @param jsonField null for text files; else each line of each file is a JSON object whose FIELD is a document
     */
    public record Options(
            List<Path> files,
            String jsonField,
            Path outputDir,
            String name,
            long shardSize,
            int threads,
            TextEncoder encoder) {}

    /** What a run did: shards written now, shards found done by an earlier run, all tokens, the time taken now. */
    public record Result(List<Path> shards, int skippedShards, long tokens, long newTokens, double seconds) {
        public double tokensPerSecond() {
            return seconds > 0 ? newTokens / seconds : 0;
        }
    }

    /** Called now and then and after each shard (from the writing thread) with the tokens so far and this run's rate. */
    public interface Progress {
        void update(long tokens, int shard, double tokensPerSecond);
    }

    public static String shardName(String name, int index) {
        return "%s_%s_%06d.bin".formatted(name, index == 0 ? "val" : "train", index);
    }

    public static Result build(Options options, Progress progress) {
        if (options.files().isEmpty()) throw new LlmcException("no input files given");
        if (options.shardSize() < 1 || options.shardSize() > Integer.MAX_VALUE)
            throw new LlmcException("--shard-size: expected 1.." + Integer.MAX_VALUE + " tokens (int32 header), found "
                    + options.shardSize());
        if (options.threads() < 1) throw new LlmcException("threads: expected at least 1, found " + options.threads());
        for (Path file : options.files()) {
            if (!Files.isRegularFile(file)) throw new LlmcException("text file not found: " + file);
        }
        var resume = ProgressFile.read(options);
        if (resume.complete()) {
            var shards = new ArrayList<Path>();
            for (int i = 0; i < resume.shards(); i++)
                shards.add(options.outputDir().resolve(shardName(options.name(), i)));
            return new Result(shards, resume.shards(), resume.tokens(), 0, 0);
        }
        long started = System.nanoTime();
        var writer = new ShardWriter(options, resume, progress, started);
        ExecutorService pool = Executors.newFixedThreadPool(options.threads(), runnable -> {
            var thread = new Thread(runnable, "tokenizer");
            thread.setDaemon(true);
            return thread;
        });
        try (var reader = new CorpusReader(options.files(), options.jsonField(), resume.position())) {
            var inFlight = new ArrayDeque<Future<Batch>>();
            var starts = new ArrayList<CorpusReader.Position>();
            var texts = new ArrayList<String>();
            long chars = 0;
            CorpusReader.Document document;
            while ((document = reader.next()) != null) {
                starts.add(document.start());
                texts.add(document.text());
                chars += document.text().length();
                if (chars >= BATCH_CHARS) {
                    inFlight.add(submit(pool, options.encoder(), starts, texts));
                    starts = new ArrayList<>();
                    texts = new ArrayList<>();
                    chars = 0;
                    while (inFlight.size() > 2 * options.threads()) writer.add(take(inFlight.poll()));
                }
            }
            if (!texts.isEmpty()) inFlight.add(submit(pool, options.encoder(), starts, texts));
            while (!inFlight.isEmpty()) writer.add(take(inFlight.poll()));
            writer.finish();
        } finally {
            pool.shutdownNow();
            writer.abandon();
        }
        return new Result(
                writer.shards,
                resume.shards(),
                writer.tokens,
                writer.tokens - resume.tokens(),
                (System.nanoTime() - started) / 1e9);
    }

    /** Tokens of each document of a batch: the section start, then its encoding. */
    private record Batch(List<CorpusReader.Position> starts, List<int[]> tokens) {}

    private static Future<Batch> submit(
            ExecutorService pool, TextEncoder encoder, List<CorpusReader.Position> starts, List<String> texts) {
        return pool.submit(() -> {
            var tokens = new ArrayList<int[]>(texts.size());
            for (String text : texts) {
                int[] encoded = encoder.encode(text);
                int[] document = new int[encoded.length + 1];
                document[0] = encoder.sectionStart();
                System.arraycopy(encoded, 0, document, 1, encoded.length);
                tokens.add(document);
            }
            return new Batch(starts, tokens);
        });
    }

    private static Batch take(Future<Batch> future) {
        try {
            return future.get();
        } catch (ExecutionException e) {
            if (e.getCause() instanceof RuntimeException runtime) throw runtime;
            throw new LlmcException("tokenizing failed: " + e.getCause(), e.getCause());
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LlmcException("interrupted while tokenizing");
        }
    }

    /** Fills shards in order; after each completed shard records the progress file. */
    private static final class ShardWriter {
        private final Options options;
        private final TokenShard.Kind kind;
        private final Progress progress;
        private final long started;
        private final List<Path> shards = new ArrayList<>();
        private final ByteBuffer buffer = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
        private int shardIndex;
        private long inShard;
        private long tokens;
        private long skipTokens; // of the first document after a resume: already in a finished shard
        private final long resumedTokens;
        private AtomicFiles.Pending file;
        private CorpusReader.Position documentStart;
        private long documentWritten; // tokens of the current document written so far
        private long lastReport;

        ShardWriter(Options options, ProgressFile.Record resume, Progress progress, long started) {
            this.options = options;
            this.kind = options.encoder().shardKind();
            this.progress = progress;
            this.started = started;
            this.shardIndex = resume.shards();
            this.tokens = resume.tokens();
            this.resumedTokens = resume.tokens();
            this.skipTokens = resume.skip();
            for (int i = 0; i < shardIndex; i++) shards.add(options.outputDir().resolve(shardName(options.name(), i)));
        }

        void add(Batch batch) {
            for (int d = 0; d < batch.tokens().size(); d++) {
                int[] document = batch.tokens().get(d);
                documentStart = batch.starts().get(d);
                int from = (int) Math.min(skipTokens, document.length);
                documentWritten = from;
                skipTokens = 0;
                while (from < document.length) {
                    if (file == null) open();
                    int take = (int) Math.min(document.length - from, options.shardSize() - inShard);
                    write(document, from, take);
                    from += take;
                    documentWritten = from;
                    if (inShard == options.shardSize()) close(from < document.length);
                }
            }
            long now = System.nanoTime();
            if (progress != null && now - lastReport > 500_000_000L) {
                lastReport = now;
                progress.update(tokens, shardIndex, (tokens - resumedTokens) / Math.max(1e-9, (now - started) / 1e9));
            }
        }

        private void open() {
            file = AtomicFiles.begin(options.outputDir().resolve(shardName(options.name(), shardIndex)));
            inShard = 0;
            try {
                file.channel().position(TokenShard.HEADER_BYTES); // the header, with the count, goes in at the end
            } catch (IOException e) {
                throw new LlmcException("cannot write a shard in " + options.outputDir() + ": " + e.getMessage(), e);
            }
        }

        private void write(int[] document, int from, int count) {
            for (int i = from; i < from + count; i++) {
                int token = document[i];
                if (token < 0 || token > kind.maxTokenId())
                    throw new LlmcException(
                            "token %d does not fit a %s shard (0..%d)".formatted(token, kind, kind.maxTokenId()));
                if (buffer.remaining() < 4) flush();
                if (kind.tokenBytes == 2) buffer.putShort((short) token);
                else buffer.putInt(token);
            }
            inShard += count;
            tokens += count;
        }

        private void flush() {
            buffer.flip();
            try {
                while (buffer.hasRemaining()) file.channel().write(buffer);
            } catch (IOException e) {
                throw new LlmcException("cannot write a shard in " + options.outputDir() + ": " + e.getMessage(), e);
            }
            buffer.clear();
        }

        /** Completes the shard; {@code midDocument}: the current document goes on in the next one. */
        private void close(boolean midDocument) {
            flush();
            var header = ByteBuffer.allocate(TokenShard.HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            header.putInt(kind.magic).putInt(kind.version).putInt((int) inShard).rewind();
            try {
                file.channel().write(header, 0);
                file.commit();
            } catch (IOException e) {
                throw new LlmcException("cannot write a shard in " + options.outputDir() + ": " + e.getMessage(), e);
            }
            file = null;
            shards.add(options.outputDir().resolve(shardName(options.name(), shardIndex)));
            shardIndex++;
            // the next shard starts inside the current document (or at the one after it)
            ProgressFile.write(
                    options,
                    new ProgressFile.Record(
                            shardIndex, tokens, documentStart, midDocument ? documentWritten : -1, false));
            if (progress != null)
                progress.update(
                        tokens,
                        shardIndex,
                        (tokens - resumedTokens) / Math.max(1e-9, (System.nanoTime() - started) / 1e9));
        }

        void finish() {
            if (file != null && inShard > 0) close(false);
            ProgressFile.write(
                    options, new ProgressFile.Record(shardIndex, tokens, new CorpusReader.Position(0, 0), 0, true));
            if (progress != null)
                progress.update(
                        tokens,
                        shardIndex,
                        (tokens - resumedTokens) / Math.max(1e-9, (System.nanoTime() - started) / 1e9));
        }

        void abandon() {
            if (file != null) file.close();
        }
    }

    /**
     * {@code OUT/.NAME.progress}: a few {@code key=value} lines. {@code skip = -1} means the next shard starts at the
     * document after the one recorded; the run's options are recorded too, and a different run refuses to use it.
     */
    static final class ProgressFile {
        record Record(int shards, long tokens, CorpusReader.Position next, long skipInDocument, boolean complete) {
            CorpusReader.Position position() {
                return next;
            }

            long skip() {
                return skipInDocument;
            }
        }

        static Path path(Options options) {
            return options.outputDir().resolve("." + options.name() + ".progress");
        }

        static String signature(Options options) {
            var files = new StringBuilder();
            for (Path file : options.files())
                files.append(file.toAbsolutePath().normalize()).append('|');
            return "shard_size=" + options.shardSize() + ",kind="
                    + options.encoder().shardKind() + ",start="
                    + options.encoder().sectionStart() + ",jsonl=" + options.jsonField() + ",files=" + files;
        }

        static Record read(Options options) {
            Path file = path(options);
            if (!Files.isRegularFile(file)) return new Record(0, 0, new CorpusReader.Position(0, 0), 0, false);
            Map<String, String> values = new LinkedHashMap<>();
            try {
                for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                    int eq = line.indexOf('=');
                    if (eq > 0) values.put(line.substring(0, eq), line.substring(eq + 1));
                }
                if (!signature(options).equals(values.get("run")))
                    throw new LlmcException(file + " belongs to a run with other inputs or options ("
                            + values.get("run") + "); delete it (and the shards) or write to another folder");
                var record = new Record(
                        Integer.parseInt(values.get("shards")),
                        Long.parseLong(values.get("tokens")),
                        new CorpusReader.Position(
                                Integer.parseInt(values.get("file")), Long.parseLong(values.get("offset"))),
                        Long.parseLong(values.get("skip")),
                        Boolean.parseBoolean(values.get("complete")));
                for (int i = 0; i < record.shards(); i++) {
                    Path shard = options.outputDir().resolve(shardName(options.name(), i));
                    if (!Files.isRegularFile(shard))
                        throw new LlmcException(file + " says " + record.shards() + " shards are done, but " + shard
                                + " is missing; delete " + file + " to start again");
                }
                return record.skip() >= 0
                        ? record
                        : new Record(
                                record.shards(), record.tokens(), afterDocument(options, record), 0, record.complete());
            } catch (IOException | RuntimeException e) {
                if (e instanceof LlmcException llmc) throw llmc;
                throw new LlmcException(
                        file + ": cannot read the progress record (" + e.getMessage() + "); delete it to start again");
            }
        }

        /** The position of the document after the recorded one (the shard ended exactly at its end). */
        private static CorpusReader.Position afterDocument(Options options, Record record) {
            try (var reader = new CorpusReader(options.files(), options.jsonField(), record.position())) {
                reader.next();
                return reader.position();
            }
        }

        static void write(Options options, Record record) {
            String text = "run=" + signature(options) + "\nshards=" + record.shards() + "\ntokens=" + record.tokens()
                    + "\nfile=" + record.next().file() + "\noffset="
                    + record.next().offset() + "\nskip="
                    + record.skipInDocument() + "\ncomplete=" + record.complete() + "\n";
            AtomicFiles.write(path(options), text.getBytes(StandardCharsets.UTF_8));
        }
    }
}
