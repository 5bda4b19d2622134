package dev.llmc4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The streaming sharder gives exactly the in-memory token stream, cut into llm.c's shards, and resumes. */
class ShardedDatasetBuilderTest {
    @TempDir
    Path folder;

    private static final TextEncoder GPT2 = TextEncoder.gpt2();

    private List<Path> corpus() throws IOException {
        var files = new ArrayList<Path>();
        for (int f = 0; f < 3; f++) {
            var text = new StringBuilder();
            for (int s = 0; s < 40; s++)
                text.append("Section ")
                        .append(f)
                        .append('.')
                        .append(s)
                        .append(": Été 日本 ")
                        .append("word ".repeat(s % 7))
                        .append(s % 5 == 0 ? "\r\n\r\n" : "\n\n\n");
            Path file = folder.resolve("part" + f + ".txt");
            Files.writeString(file, text.toString() + (f == 2 ? "the end" : ""), StandardCharsets.UTF_8);
            files.add(file);
        }
        return files;
    }

    private static int[] inMemory(List<Path> files) {
        var all = IntStream.builder();
        for (Path file : files) {
            String text = DatasetBuilder.readUtf8(file).replace("\r\n", "\n").replace('\r', '\n');
            for (int t : DatasetBuilder.tokenizeSections(GPT2, text)) all.add(t);
        }
        return all.build().toArray();
    }

    private static int[] readAll(List<Path> shards, long shardSize) {
        var all = IntStream.builder();
        for (int i = 0; i < shards.size(); i++) {
            var shard = TokenShard.open(shards.get(i));
            if (i < shards.size() - 1) assertEquals(shardSize, shard.numTokens(), shards.get(i) + " is full");
            for (long t = 0; t < shard.numTokens(); t++) all.add(shard.token(t));
        }
        return all.build().toArray();
    }

    private ShardedDatasetBuilder.Result build(
            List<Path> files, String json, Path out, long shardSize, ShardedDatasetBuilder.Progress progress) {
        return ShardedDatasetBuilder.build(
                new ShardedDatasetBuilder.Options(files, json, out, "corpus", shardSize, 3, GPT2), progress);
    }

    @Test
    void shardsHoldTheInMemoryTokenStreamUnderLlmcsNames() throws IOException {
        var files = corpus();
        var result = build(files, null, folder.resolve("out"), 500, null);
        int[] expected = inMemory(files);
        assertArrayEquals(expected, readAll(result.shards(), 500));
        assertEquals(expected.length, result.tokens());
        assertEquals((expected.length + 499) / 500, result.shards().size());
        assertEquals(
                "corpus_val_000000.bin", result.shards().get(0).getFileName().toString());
        assertEquals(
                "corpus_train_000001.bin", result.shards().get(1).getFileName().toString());
    }

    @Test
    void jsonLinesAreOneDocumentEach() throws IOException {
        Path jsonl = folder.resolve("docs.jsonl");
        Files.writeString(
                jsonl,
                "{\"text\": \"Hello world.\\n\\nSecond paragraph.\", \"id\": 1}\n\n{\"id\": 2, \"text\": \"Caf\\u00e9\"}\n");
        var result = build(List.of(jsonl), "text", folder.resolve("j"), 1000, null);
        var expected = IntStream.builder();
        for (String doc : List.of("Hello world.\n\nSecond paragraph.", "Café")) {
            expected.add(GPT2Tokenizer.EOT);
            for (int t : GPT2.encode(doc)) expected.add(t);
        }
        assertArrayEquals(expected.build().toArray(), readAll(result.shards(), 1000));

        Path bad = Files.writeString(folder.resolve("bad.jsonl"), "{\"body\": \"x\"}\n");
        var error = assertThrows(LlmcException.class, () -> build(List.of(bad), "text", folder.resolve("b"), 10, null));
        assertTrue(
                error.getMessage().contains("field text") && error.getMessage().contains("byte 0"), error.getMessage());
    }

    @Test
    void aSectionLongerThanTheLimitIsCutWhereTheTokensDoNotChange() throws IOException {
        String text = "lorem ipsum, dolor sit amet 42 ".repeat(3 * CorpusReader.MAX_SECTION_BYTES / 31 + 5);
        Path file = Files.writeString(folder.resolve("long.txt"), text);
        var result = build(List.of(file), null, folder.resolve("l"), 1 << 20, null);
        int[] tokens = readAll(result.shards(), 1 << 20);
        int starts =
                (int) IntStream.of(tokens).filter(t -> t == GPT2Tokenizer.EOT).count();
        assertTrue(starts >= 3, "cut into pieces: " + starts);
        int[] withoutStarts =
                IntStream.of(tokens).filter(t -> t != GPT2Tokenizer.EOT).toArray();
        assertArrayEquals(GPT2.encode(text), withoutStarts);
    }

    @Test
    void aStoppedRunResumesAfterItsFinishedShards() throws IOException {
        var files = corpus();
        var reference = build(files, null, folder.resolve("ref"), 300, null);
        Path out = folder.resolve("resumed");
        // the first run stops (as a killed process would) once 3 shards are done
        var stop = new RuntimeException("stop");
        assertThrows(
                RuntimeException.class,
                () -> build(files, null, out, 300, (tokens, shard, rate) -> {
                    if (shard == 3) throw stop;
                }));
        assertTrue(Files.exists(out.resolve("corpus_train_000002.bin"))
                && !Files.exists(out.resolve("corpus_train_000003.bin")));
        long firstShardTime =
                Files.getLastModifiedTime(out.resolve("corpus_val_000000.bin")).toMillis();
        var resumed = build(files, null, out, 300, null);
        assertEquals(3, resumed.skippedShards());
        assertEquals(reference.shards().size(), resumed.shards().size());
        for (int i = 0; i < reference.shards().size(); i++)
            assertEquals(
                    -1L,
                    Files.mismatch(reference.shards().get(i), resumed.shards().get(i)),
                    "shard " + i);
        assertEquals(
                firstShardTime,
                Files.getLastModifiedTime(out.resolve("corpus_val_000000.bin")).toMillis());
        // a finished run has nothing left to do; another run's options are refused
        assertEquals(
                reference.shards().size(), build(files, null, out, 300, null).skippedShards());
        var other = assertThrows(LlmcException.class, () -> build(files, null, out, 301, null));
        assertTrue(other.getMessage().contains(".corpus.progress"), other.getMessage());
    }
}
