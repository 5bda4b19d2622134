package dev.llmc4j.model;

import dev.llmc4j.format.BinaryWriter;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.Headers;
import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.util.AtomicFiles;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * llm.c's GPT-2 debug state ({@code gpt2_124M_debug_state.bin}): one batch and what PyTorch computed for it, the
 * yardstick for the forward and backward pass.
 *
 * <pre>
 * header  int32[256]        [0] 20240327  [1] 2  [2] B  [3] T  [4] S (our extension, 0 in llm.c's files)
 * x       int32[B*T]        input tokens
 * y       int32[B*T]        target tokens
 * logits  fp32[B*T*V]       unpadded: row stride V, not Vp
 * loss    fp32              mean cross-entropy
 * grads   fp32[N]           parameter gradients in checkpoint order, wte padded to Vp rows
 * losses  fp32[S]           our extension: the losses of S training steps (llm.c's test ignores trailing bytes)
 * </pre>
 *
 * The arrays are handed out as they are, not copied.
 *
 * @param batchSize      B
 * @param seqLen         T
 * @param inputs         x, (B, T)
 * @param targets        y, (B, T)
 * @param logits         (B, T, V) little-endian fp32, mapped read-only
 * @param loss           the mean loss of the batch
 * @param gradients      N little-endian fp32, mapped read-only
 * @param expectedLosses S losses of the reference's training steps (length 0 for llm.c's own files)
 */
public record DebugState(
        int batchSize,
        int seqLen,
        int[] inputs,
        int[] targets,
        MemorySegment logits,
        float loss,
        MemorySegment gradients,
        float[] expectedLosses) {

    public static final int MAGIC = 20240327;
    public static final int VERSION = 2;

    /**
     * Reads and checks a debug state for a model of shape {@code config}; logits and gradients stay mapped for as
     * long as {@code arena} lives. Every problem is a {@link FileFormatException} naming the file, the field,
     * expected and found.
     */
    public static DebugState read(Path file, GPT2Config config, Arena arena) {
        try (FileChannel channel = Headers.openForReading(file)) {
            int[] header = Headers.readInts(file, channel);
            Headers.expectMagic(file, header, MAGIC);
            if (header[1] != VERSION)
                throw new FileFormatException(
                        file,
                        Headers.field("version", 1),
                        VERSION,
                        header[1]
                                + (header[1] == 1
                                        ? " (an old llm.c debug state with unpadded vocab; regenerate it)"
                                        : ""));
            int batchSize = Headers.requirePositive(file, header, 2, "B");
            int seqLen = Headers.requirePositive(file, header, 3, "T");
            if (seqLen > config.maxSeqLen())
                throw new FileFormatException(
                        file, Headers.field("T", 3), "at most maxT = " + config.maxSeqLen(), seqLen);
            long tokens = (long) batchSize * seqLen;
            if (tokens > Integer.MAX_VALUE / 2)
                throw new FileFormatException(
                        file, "B*T (header[2]*header[3])", "at most " + Integer.MAX_VALUE / 2, tokens);
            int steps = header[4];
            if (steps < 0) throw new FileFormatException(file, Headers.field("S", 4), "0 or more", steps);

            // byte offsets of the sections
            long vocab = config.vocabSize(), numParameters = config.numParameters();
            long xAt = Headers.BYTES;
            long yAt = xAt + 4 * tokens;
            long logitsAt = yAt + 4 * tokens;
            long lossAt = logitsAt + logitsBytes(file, tokens, vocab);
            long gradsAt = lossAt + 4;
            long lossesAt = gradsAt + 4 * numParameters;
            long end = lossesAt + 4L * steps;
            Headers.expectFileSize(
                    file,
                    channel,
                    end,
                    "1024 + 8*B*T + 4*B*T*V + 4 + 4*N + 4*S for B=%d T=%d V=%d N=%d S=%d"
                            .formatted(batchSize, seqLen, vocab, numParameters, steps));

            MemorySegment all = channel.map(FileChannel.MapMode.READ_ONLY, 0, end, arena);
            int[] inputs = readTokens(file, all, xAt, (int) tokens, "x", seqLen, config.vocabSize());
            int[] targets = readTokens(file, all, yAt, (int) tokens, "y", seqLen, config.vocabSize());
            float loss = all.get(LittleEndian.FLOAT32, lossAt);
            float[] losses = new float[steps];
            MemorySegment.copy(all, LittleEndian.FLOAT32, lossesAt, losses, 0, steps);
            return new DebugState(
                    batchSize,
                    seqLen,
                    inputs,
                    targets,
                    all.asSlice(logitsAt, lossAt - logitsAt),
                    loss,
                    all.asSlice(gradsAt, lossesAt - gradsAt),
                    losses);
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read it: " + e.getMessage());
        }
    }

    /** 4*B*T*V, which only an absurd header could push past a long. */
    private static long logitsBytes(Path file, long tokens, long vocab) {
        try {
            return Math.multiplyExact(4 * tokens, vocab);
        } catch (ArithmeticException e) {
            throw new FileFormatException(
                    file, "B*T (header[2]*header[3])", "logits under 2^63 bytes with V = " + vocab, tokens);
        }
    }

    /** Token ids must index the vocabulary; a bad one is named with its batch row and position. */
    private static int[] readTokens(
            Path file, MemorySegment all, long offset, int count, String name, int seqLen, int vocab) {
        int[] ids = new int[count];
        MemorySegment.copy(all, LittleEndian.INT32, offset, ids, 0, count);
        for (int i = 0; i < count; i++) {
            if (ids[i] < 0 || ids[i] >= vocab)
                throw new FileFormatException(
                        file,
                        "%s[%d] (batch row %d, position %d)".formatted(name, i, i / seqLen, i % seqLen),
                        "a token id in [0, " + vocab + ")",
                        ids[i]);
        }
        return ids;
    }

    /** Number of reference training steps appended, S. */
    public int numSteps() {
        return expectedLosses.length;
    }

    /**
     * Writes a debug state atomically. {@code logitsBTV} and {@code grads} hold native-order floats and are written
     * whole (so they must be exactly B*T*V and N floats); {@code losses} (may be null or empty) become the S
     * appended step losses.
     */
    public static void write(
            Path file,
            int B,
            int T,
            int[] x,
            int[] y,
            MemorySegment logitsBTV,
            float loss,
            MemorySegment grads,
            float[] losses) {
        long tokens = (long) B * T;
        if (B <= 0 || T <= 0 || x.length != tokens || y.length != tokens)
            throw new IllegalArgumentException(
                    "B=%d T=%d need x and y of B*T ids, got %d and %d".formatted(B, T, x.length, y.length));
        if (logitsBTV.byteSize() % (4 * tokens) != 0)
            throw new IllegalArgumentException(
                    "logits hold " + logitsBTV.byteSize() + " bytes, not a multiple of 4*B*T");
        if (grads.byteSize() % 4 != 0)
            throw new IllegalArgumentException("gradients hold " + grads.byteSize() + " bytes, not whole floats");
        float[] steps = losses == null ? new float[0] : losses;
        AtomicFiles.write(file, channel -> {
            try (var out = new BinaryWriter(channel)) {
                out.header(MAGIC, VERSION, B, T, steps.length)
                        .ints(x)
                        .ints(y)
                        .floats(logitsBTV, logitsBTV.byteSize() / 4)
                        .floats(loss)
                        .floats(grads, grads.byteSize() / 4)
                        .floats(steps);
            }
        });
    }
}
