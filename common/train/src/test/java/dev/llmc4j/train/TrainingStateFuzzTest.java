package dev.llmc4j.train;

import static dev.llmc4j.testing.FormatFuzzer.assertNoFailures;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.testing.FormatFuzzer;
import dev.llmc4j.testing.FormatFuzzer.Field;
import dev.llmc4j.testing.RandomTokens;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The training-state file, damaged by {@link FormatFuzzer} (seeded) and resumed as the trainer resumes it: read,
 * then the data loader restored from it and run for a few batches. Every case ends accepted or in one line of the
 * project's error naming the file (the rest of the formats: core's FormatFuzzTest).
 */
class TrainingStateFuzzTest {
    /** The parameter count of the fuzzed state (any will do: m and v are plain float blocks). */
    private static final long N = 2040;

    @TempDir
    Path dir;

    private static MemorySegment values(long count, int seed) {
        float[] values = new float[(int) count];
        for (int i = 0; i < values.length; i++) values[i] = (float) Math.sin(seed + i * 0.37);
        return MemorySegment.ofArray(values);
    }

    /** A shuffled run's state file (m, v and the loader's permutations and rng), resumed as the trainer does. */
    @Test
    void trainingState() throws Exception {
        Path shard = dir.resolve("train.bin");
        TokenShard.write(shard, TokenShard.Kind.GPT2, RandomTokens.of(400, 10, 6));
        int B = 2, T = 8;
        Path valid = dir.resolve("valid.bin");
        try (var loader = new DataLoader(shard.toString(), B, T, 0, 1, true, 10)) {
            for (int i = 0; i < 5; i++) loader.nextBatch();
            var header = new TrainingStateFile.Header(
                    1, 0, false, true, 5, 0, 0, loader.shardPosition(), loader.samplePosition());
            TrainingStateFile.write(valid, header, values(N, 7), values(N, 8), null, N, loader.state());
        }
        byte[] bytes = Files.readAllBytes(valid);
        var fields = new ArrayList<Field>();
        for (int slot : new int[] {0, 1, 2, 3, 4, 5, 10, 40, 41})
            fields.add(Field.int32("header[" + slot + "]", 4L * slot));
        for (int slot : new int[] {20, 22, 30, 32})
            fields.add(Field.int64("header[" + slot + ".." + (slot + 1) + "]", 4L * slot));
        long tail = 1024 + 8 * N;
        var le = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int numShards = (int) le.getLong((int) tail);
        fields.add(Field.int64("number of shards", tail));
        fields.add(Field.int32("shard order[0]", tail + 8));
        long samplesAt = tail + 8 + 4L * numShards;
        int numSamples = (int) le.getLong((int) samplesAt);
        fields.add(Field.int64("number of samples", samplesAt));
        fields.add(Field.int32("sample order[0]", samplesAt + 8));
        fields.add(Field.int32("sample order[last]", samplesAt + 8 + 4L * (numSamples - 1)));
        long rngAt = samplesAt + 8 + 4L * numSamples;
        fields.add(Field.int32("mt19937 left", rngAt + 8));
        fields.add(Field.int32("mt19937 next", rngAt + 12));
        assertNoFailures(new FormatFuzzer(dir, 20241205 + 30, 200)
                .fuzzBinary("training state", "state_00000005_00000.bin", bytes, fields, file -> {
                    try (var arena = Arena.ofConfined();
                            var loader = new DataLoader(shard.toString(), B, T, 0, 1, true, 10)) {
                        var m = arena.allocate(N * Float.BYTES);
                        var v = arena.allocate(N * Float.BYTES);
                        var contents = TrainingStateFile.read(file, N, 1, 0, m, v, null);
                        if (contents.loader() != null) loader.restore(contents.loader(), file);
                        else
                            loader.resume(
                                    contents.header().shardPosition(),
                                    contents.header().samplePosition(),
                                    file);
                        for (int i = 0; i < 3; i++) loader.nextBatch();
                    }
                }));
    }
}
