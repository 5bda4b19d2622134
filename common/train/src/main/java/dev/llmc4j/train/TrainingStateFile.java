package dev.llmc4j.train;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.Headers;
import dev.llmc4j.random.MersenneTwister;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * llm.c's training-state file ({@code state_%08d_%05d.bin}, one per process), read and written byte for byte:
 * a header of 256 int32 (magic 20240527, version 1, process count, rank, master-weights flag, shuffle flag,
 * step, rng states, loader position), then AdamW's m and v, then — when the header's master-weights flag is set —
 * the fp32 master weights, then — when the loader shuffles — its shard and sample permutations and the raw
 * 2520-byte mt19937 state.
 * <pre>
 * int32[256] header   [0] magic  [1] version  [2] processes  [3] rank  [4] master weights?  [5] shuffle?
 *                     [10] step  [20..21] rng_state  [22..23] rng_state_last_update (uint64, little-endian)
 *                     [30..31] shard position  [32..33] sample position (uint64)
 *                     [40] fp16 loss scale (float)  [41] its good steps: ours, llm.c has no loss scaler; others 0
 * fp32[shard_N]       AdamW m          shard_N = all parameters, or under ZeRO-1 this rank's shard
 * fp32[shard_N]       AdamW v
 * fp32[shard_N]       master weights   only if header[4] = 1
 * loader tail         only if header[5] = 1
 * </pre>
 * A model without master weights, rounding rng or loss scaler (the CPU models) writes [4] = 0, rng states 0 and no
 * loss scale: the file a CPU
 * run writes is the same, byte for byte, as before these fields were filled in.
 */
public final class TrainingStateFile {
    private TrainingStateFile() {}

    public static final int MAGIC = 20240527;
    public static final int VERSION = 1;
    private static final int MT_STRUCT_BYTES = 2520; // uint64 seed, int32 left, uint32 next, uint32[624], uint32[2]

    /**
     * What a state file holds besides the float blocks (which are copied straight into the model's buffers).
     *
     * @param masterWeights      header[4]: fp32 master weights follow v
     * @param rngState           header[20..21]: the stochastic-rounding generator's state now (0: none)
     * @param rngStateLastUpdate header[22..23]: its state when the last update began (0: none)
     * @param lossScale          header[40]: an fp16 run's loss scale (0: no loss scaler)
     * @param lossScaleGoodSteps header[41]: the scaler's good steps since the scale last changed
     */
    public record Header(
            int numProcesses,
            int rank,
            boolean masterWeights,
            boolean shuffle,
            int step,
            long rngState,
            long rngStateLastUpdate,
            int shardPosition,
            long samplePosition,
            float lossScale,
            int lossScaleGoodSteps) {

        /** A header without a loss scaler (everything but fp16 runs): header[40..41] stay 0. */
        public Header(
                int numProcesses,
                int rank,
                boolean masterWeights,
                boolean shuffle,
                int step,
                long rngState,
                long rngStateLastUpdate,
                int shardPosition,
                long samplePosition) {
            this(
                    numProcesses,
                    rank,
                    masterWeights,
                    shuffle,
                    step,
                    rngState,
                    rngStateLastUpdate,
                    shardPosition,
                    samplePosition,
                    0,
                    0);
        }
    }

    /**
     * Writes a state file; {@code masterWeights} (numParameters floats, or null) must be given exactly when the
     * header says so. {@code numParameters} is shard_N: the floats in each of m, v and the master weights.
     */
    public static void write(
            Path file,
            Header header,
            MemorySegment m,
            MemorySegment v,
            MemorySegment masterWeights,
            long numParameters,
            DataLoader.State loader) {
        if (header.masterWeights() != (masterWeights != null))
            throw new IllegalArgumentException(
                    "header[4] says master weights " + (header.masterWeights() ? "follow" : "do not follow")
                            + " but they are " + (masterWeights != null ? "given" : "not given"));
        AtomicFiles.write(file, channel -> {
            var head = ByteBuffer.allocate(1024).order(ByteOrder.LITTLE_ENDIAN);
            head.putInt(0, MAGIC)
                    .putInt(4, VERSION)
                    .putInt(8, header.numProcesses())
                    .putInt(12, header.rank());
            head.putInt(16, header.masterWeights() ? 1 : 0)
                    .putInt(20, header.shuffle() ? 1 : 0)
                    .putInt(40, header.step());
            head.putLong(80, header.rngState()).putLong(88, header.rngStateLastUpdate());
            head.putLong(120, header.shardPosition()).putLong(128, header.samplePosition());
            // our extension, in slots llm.c leaves 0 (it has no loss scaler): fp16's scale and its good-step count
            head.putFloat(160, header.lossScale()).putInt(164, header.lossScaleGoodSteps());
            writeFully(channel, head);
            writeFloats(channel, m, numParameters);
            writeFloats(channel, v, numParameters);
            if (masterWeights != null) writeFloats(channel, masterWeights, numParameters);
            if (header.shuffle()) {
                int[] shards = loader.shardOrder(), samples = loader.sampleOrder();
                var tail = ByteBuffer.allocate(8 + 4 * shards.length + 8 + 4 * samples.length + MT_STRUCT_BYTES)
                        .order(ByteOrder.LITTLE_ENDIAN);
                tail.putLong(shards.length);
                for (int s : shards) tail.putInt(s);
                tail.putLong(samples.length);
                for (int s : samples) tail.putInt(s);
                var rng = loader.rng();
                tail.putLong(42L + header.rank()); // llm.c leaves seed_ unset; we record the seed
                tail.putInt(rng.left()).putInt(rng.next());
                for (int word : rng.words()) tail.putInt(word);
                tail.putInt(0).putInt(0x9908b0df);
                writeFully(channel, tail.flip());
            }
        });
    }

    /** The result of {@link #read}: the header and, when shuffling, the loader state to restore. */
    public record Contents(Header header, DataLoader.State loader) {}

    /**
     * Reads a state file, copying m and v into the given segments, and the master weights, when the file has them
     * ({@code header().masterWeights()}), into {@code masterWeights} unless that is null; validates the file against
     * the run (numParameters = shard_N floats per block).
     */
    public static Contents read(
            Path file,
            long numParameters,
            int numProcesses,
            int rank,
            MemorySegment m,
            MemorySegment v,
            MemorySegment masterWeights) {
        try (var channel = Headers.openForReading(file);
                var arena = Arena.ofConfined()) {
            long size = channel.size();
            if (size < 1024) throw new FileFormatException(file, "header", "1024 bytes", size + " bytes");
            var head = ByteBuffer.allocate(1024).order(ByteOrder.LITTLE_ENDIAN);
            readFully(channel, head, 0);
            expect(file, "magic (header[0])", MAGIC, head.getInt(0));
            expect(file, "version (header[1])", VERSION, head.getInt(4));
            expect(file, "number of processes (header[2])", numProcesses, head.getInt(8));
            expect(file, "rank (header[3])", rank, head.getInt(12));
            boolean hasMasterWeights = flag(file, "master weights (header[4])", head.getInt(16));
            boolean shuffle = flag(file, "shuffle (header[5])", head.getInt(20));
            int step = head.getInt(40);
            if (step < 0) throw new FileFormatException(file, "step (header[10])", "0 or more", step);
            long shardPosition = head.getLong(120), samplePosition = head.getLong(128);
            if (shardPosition < 0 || shardPosition > Integer.MAX_VALUE)
                throw new FileFormatException(
                        file, "shard position (header[30..31])", "a shard index in [0, 2^31)", shardPosition);
            if (samplePosition < 0)
                throw new FileFormatException(file, "sample position (header[32..33])", "0 or more", samplePosition);
            float lossScale = head.getFloat(160);
            if (!(lossScale >= 0) || Float.isInfinite(lossScale))
                throw new FileFormatException(
                        file, "fp16 loss scale (header[40])", "0 (none) or a finite positive scale", lossScale);
            int goodSteps = head.getInt(164);
            if (goodSteps < 0)
                throw new FileFormatException(file, "loss scale good steps (header[41])", "0 or more", goodSteps);
            var header = new Header(
                    numProcesses,
                    rank,
                    hasMasterWeights,
                    shuffle,
                    step,
                    head.getLong(80),
                    head.getLong(88),
                    (int) shardPosition,
                    samplePosition,
                    lossScale,
                    goodSteps);
            long blockBytes = numParameters * Float.BYTES;
            long needed = 1024 + 2 * blockBytes;
            if (size < needed)
                throw new FileFormatException(
                        file,
                        "AdamW m and v",
                        "2 x " + numParameters + " floats (file of at least " + needed + " bytes)",
                        size + " bytes");
            if (hasMasterWeights) {
                if (size < needed + blockBytes)
                    throw new FileFormatException(
                            file,
                            "master weights (header[4] = 1)",
                            numParameters + " floats (" + blockBytes + " bytes) at offset " + needed,
                            (size - needed) + " bytes");
                needed += blockBytes;
            }
            var mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            MemorySegment.copy(mapped, 1024, m, 0, blockBytes);
            MemorySegment.copy(mapped, 1024 + blockBytes, v, 0, blockBytes);
            if (hasMasterWeights && masterWeights != null)
                MemorySegment.copy(mapped, 1024 + 2 * blockBytes, masterWeights, 0, blockBytes);
            DataLoader.State loader = null;
            if (shuffle) {
                long at = needed;
                var le = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
                var li = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
                // each count is checked against the bytes left (4 per entry, then the 2520-byte rng) before allocating
                int numShards = readCount(file, mapped, at, le, "number of shards (loader tail at " + at + ")");
                int[] shards = new int[numShards];
                for (int i = 0; i < numShards; i++) shards[i] = mapped.get(li, at + 8 + 4L * i);
                at += 8 + 4L * numShards;
                int numSamples = readCount(file, mapped, at, le, "shard_num_samples (loader tail at " + at + ")");
                int[] samples = new int[numSamples];
                for (int i = 0; i < numSamples; i++) samples[i] = mapped.get(li, at + 8 + 4L * i);
                at += 8 + 4L * numSamples;
                if (size != at + MT_STRUCT_BYTES)
                    throw new FileFormatException(file, "file size", at + MT_STRUCT_BYTES, size);
                int left = mapped.get(li, at + 8);
                int next = mapped.get(li, at + 12);
                int[] words = new int[624];
                for (int i = 0; i < 624; i++) words[i] = mapped.get(li, at + 16 + 4L * i);
                var rng = new MersenneTwister.State(words, left, next, false, 0);
                loader = new DataLoader.State(header.shardPosition(), header.samplePosition(), shards, samples, rng);
            } else if (size != needed) {
                throw new FileFormatException(file, "file size", needed, size);
            }
            return new Contents(header, loader);
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read the training state: " + e.getMessage());
        }
    }

    /** A uint64 count of int32 entries at {@code at}, which the rest of the file (and the rng after it) must hold. */
    private static int readCount(Path file, MemorySegment mapped, long at, ValueLayout.OfLong layout, String field) {
        if (at + 8 > mapped.byteSize())
            throw new FileFormatException(file, field, "8 more bytes at offset " + at, "end of file");
        long value = mapped.get(layout, at);
        long room = Math.max(0, (mapped.byteSize() - at - 8 - MT_STRUCT_BYTES) / 4);
        if (value < 0 || value > room)
            throw new FileFormatException(
                    file,
                    field,
                    "a count of at most " + room + " (the int32 entries the file has room for)",
                    Long.toUnsignedString(value));
        return (int) value;
    }

    private static boolean flag(Path file, String field, int value) {
        if (value != 0 && value != 1) throw new FileFormatException(file, field, "0 or 1", value);
        return value == 1;
    }

    private static void expect(Path file, String field, int expected, int found) {
        if (expected != found) throw new FileFormatException(file, field, expected, found);
    }

    private static void writeFloats(FileChannel channel, MemorySegment values, long count) throws IOException {
        long chunk = 1 << 20;
        for (long at = 0; at < count; at += chunk) {
            long n = Math.min(chunk, count - at);
            var buffer = ByteBuffer.allocate((int) (n * Float.BYTES)).order(ByteOrder.LITTLE_ENDIAN);
            MemorySegment.copy(
                    values,
                    ValueLayout.JAVA_FLOAT,
                    at * Float.BYTES,
                    MemorySegment.ofBuffer(buffer),
                    ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN),
                    0,
                    n);
            writeFully(channel, buffer);
        }
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) channel.write(buffer);
    }

    private static void readFully(FileChannel channel, ByteBuffer buffer, long position) throws IOException {
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0) break;
        }
        buffer.flip();
    }

    /** llm.c's find_max_step: the largest step with a DONE_ marker in the output folder, or -1 when there is none. */
    public static int latestCompletedStep(Path outputDir) {
        if (!Files.isDirectory(outputDir)) return -1;
        try (var files = Files.list(outputDir)) {
            return files.map(p -> p.getFileName().toString())
                    .filter(name -> name.matches("DONE_\\d{8}"))
                    .mapToInt(name -> Integer.parseInt(name.substring(5)))
                    .max()
                    .orElse(-1);
        } catch (IOException e) {
            throw new LlmcException("cannot list " + outputDir + ": " + e.getMessage(), e);
        }
    }
}
