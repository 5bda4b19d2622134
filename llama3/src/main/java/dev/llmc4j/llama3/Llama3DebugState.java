package dev.llmc4j.llama3;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * What the PyTorch reference computed for one batch, to check our model against (llama3 branch, version 3):
 * int32[256] header {@code [20240803, 3, B, T, S]}, then x and y (int32, B*T each), logits (fp32, B*T*V), the
 * loss (fp32), the gradients of all parameters (fp32, the 16-slot layout of {@link Llama3Config}), and S losses
 * and S gradient norms from S training steps on the same batch.
 *
 * <p>The file does not carry the model shape; it is read against the config of the matching checkpoint.
 * Logits and gradients stay memory-mapped until {@link #close()}.
 */
public final class Llama3DebugState implements AutoCloseable {
    public static final int MAGIC = 20240803;
    public static final int VERSION = 3;
    private static final int HEADER_BYTES = 1024;

    private final int batchSize;
    private final int seqLen;
    private final int[] inputs;
    private final int[] targets;
    private final MemorySegment logits;
    private final float loss;
    private final MemorySegment grads;
    private final float[] losses;
    private final float[] gradNorms;
    private final Arena arena;

    private Llama3DebugState(
            int batchSize,
            int seqLen,
            int[] inputs,
            int[] targets,
            MemorySegment logits,
            float loss,
            MemorySegment grads,
            float[] losses,
            float[] gradNorms,
            Arena arena) {
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.inputs = inputs;
        this.targets = targets;
        this.logits = logits;
        this.loss = loss;
        this.grads = grads;
        this.losses = losses;
        this.gradNorms = gradNorms;
        this.arena = arena;
    }

    public int batchSize() {
        return batchSize;
    }

    public int seqLen() {
        return seqLen;
    }
    /** Input tokens (B*T). */
    public int[] inputs() {
        return inputs.clone();
    }
    /** Target tokens (B*T). */
    public int[] targets() {
        return targets.clone();
    }
    /** fp32 (B, T, V). */
    public MemorySegment logits() {
        return logits;
    }

    public float loss() {
        return loss;
    }
    /** fp32, numParameters() values in the 16-slot layout. */
    public MemorySegment grads() {
        return grads;
    }
    /** Loss before each of the S training steps (losses[0] == loss()). */
    public float[] losses() {
        return losses.clone();
    }
    /** Global L2 norm of the gradients at each of the S steps (before any clipping). */
    public float[] gradNorms() {
        return gradNorms.clone();
    }

    public static Llama3DebugState read(Path file, Llama3Config config) {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new LlmcException("debug state not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (size < HEADER_BYTES)
            throw new FileFormatException(file, "file size", ">= 1024 bytes (a header)", size + " bytes");
        Arena arena = Arena.ofShared();
        try (var channel = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment all = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            var state = parse(file, all, size, config, arena);
            arena = null;
            return state;
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        } finally {
            if (arena != null) arena.close();
        }
    }

    private static Llama3DebugState parse(Path file, MemorySegment all, long size, Llama3Config config, Arena arena) {
        int magic = all.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, 0);
        if (magic != MAGIC) throw new FileFormatException(file, "header[0] (magic)", MAGIC, magic);
        int version = all.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, 1);
        if (version != VERSION) throw new FileFormatException(file, "header[1] (version)", VERSION, version);
        int batchSize = all.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, 2);
        int seqLen = all.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, 3);
        int steps = all.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, 4);
        if (batchSize <= 0) throw new FileFormatException(file, "header[2] (B)", "> 0", batchSize);
        if (seqLen <= 0 || seqLen > config.maxSeqLen())
            throw new FileFormatException(file, "header[3] (T)", "1.." + config.maxSeqLen(), seqLen);
        if (steps < 0) throw new FileFormatException(file, "header[4] (S)", ">= 0", steps);
        long bt = (long) batchSize * seqLen;
        long logitCount = bt * config.vocabSize();
        long expected = HEADER_BYTES + 8 * bt + 4 * logitCount + 4 + 4 * config.numParameters() + 8L * steps;
        if (size != expected)
            throw new FileFormatException(
                    file,
                    "file size",
                    expected + " bytes (B=" + batchSize + ", T=" + seqLen + ", S=" + steps + ", " + config.describe()
                            + ")",
                    size + " bytes");
        long offset = HEADER_BYTES;
        int[] inputs = all.asSlice(offset, 4 * bt).toArray(ValueLayout.JAVA_INT_UNALIGNED);
        offset += 4 * bt;
        int[] targets = all.asSlice(offset, 4 * bt).toArray(ValueLayout.JAVA_INT_UNALIGNED);
        offset += 4 * bt;
        checkTokens(file, "x", inputs, config.vocabSize());
        checkTokens(file, "y", targets, config.vocabSize());
        MemorySegment logits = all.asSlice(offset, 4 * logitCount);
        offset += 4 * logitCount;
        float loss = all.get(ValueLayout.JAVA_FLOAT_UNALIGNED, offset);
        offset += 4;
        MemorySegment grads = all.asSlice(offset, 4 * config.numParameters());
        offset += 4 * config.numParameters();
        float[] losses = all.asSlice(offset, 4L * steps).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
        offset += 4L * steps;
        float[] norms = all.asSlice(offset, 4L * steps).toArray(ValueLayout.JAVA_FLOAT_UNALIGNED);
        return new Llama3DebugState(batchSize, seqLen, inputs, targets, logits, loss, grads, losses, norms, arena);
    }

    private static void checkTokens(Path file, String field, int[] tokens, int vocabSize) {
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocabSize)
                throw new FileFormatException(
                        file, field + "[" + i + "] (token id)", "0.." + (vocabSize - 1), tokens[i]);
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
