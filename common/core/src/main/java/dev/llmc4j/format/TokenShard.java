package dev.llmc4j.format;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.ShortVector;
import jdk.incubator.vector.VectorOperators;

/**
 * A token data shard as llm.c's {@code dev/data/data_common.py} writes it: a 1024-byte header
 * ({@code [0]=magic, [1]=version, [2]=number of tokens}) followed by the token ids, uint16 for GPT-2 and uint32
 * for Llama 3. The tokens are memory-mapped, not copied: a shard can be larger than the heap.
 *
 * <pre>
 *   GPT-2   : magic 20240520, version 1, ntok x uint16   (file size = 1024 + 2 * ntok)
 *   Llama 3 : magic 20240801, version 7, ntok x uint32   (file size = 1024 + 4 * ntok)
 * </pre>
 */
public final class TokenShard {

    /** The two shard flavours; they differ in magic, version and token width. */
    public enum Kind {
        GPT2(20240520, 1, 2),
        LLAMA3(20240801, 7, 4);

        public final int magic;
        public final int version;
        /** Bytes per token id. */
        public final int tokenBytes;

        Kind(int magic, int version, int tokenBytes) {
            this.magic = magic;
            this.version = version;
            this.tokenBytes = tokenBytes;
        }

        /** Largest token id a shard of this kind can hold (uint16 for GPT-2; int range for Llama 3 in Java). */
        public long maxTokenId() {
            return tokenBytes == 2 ? 0xFFFF : Integer.MAX_VALUE;
        }

        static Kind ofMagic(int magic) {
            for (Kind kind : values()) if (kind.magic == magic) return kind;
            return null;
        }
    }

    public static final int HEADER_BYTES = ShardHeaders.HEADER_BYTES;

    private static final ValueLayout.OfShort UINT16 =
            ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    private static final ValueLayout.OfInt UINT32 = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    private final Path file;
    private final Kind kind;
    private final long numTokens;
    private final MemorySegment tokens; // the bytes after the header

    private TokenShard(Path file, Kind kind, long numTokens, MemorySegment tokens) {
        this.file = file;
        this.kind = kind;
        this.numTokens = numTokens;
        this.tokens = tokens;
    }

    /**
     * Maps a shard read-only into {@code arena} (the mapping lives as long as the arena) after checking magic,
     * version, token count and exact file size.
     */
    public static TokenShard open(Path file, Arena arena) {
        try (var channel = FileChannel.open(file, StandardOpenOption.READ)) {
            int[] header = ShardHeaders.read(file, channel);
            Kind kind = Kind.ofMagic(header[0]);
            if (kind == null) {
                throw new FileFormatException(
                        file,
                        "magic (header[0])",
                        Kind.GPT2.magic + " (GPT-2 shard) or " + Kind.LLAMA3.magic + " (Llama 3 shard)",
                        header[0]);
            }
            if (header[1] != kind.version) {
                throw new FileFormatException(
                        file, "version (header[1]) of a " + kind + " shard", kind.version, header[1]);
            }
            long numTokens = header[2];
            if (numTokens <= 0) {
                throw new FileFormatException(file, "token count (header[2])", "> 0", numTokens);
            }
            long expectedSize = HEADER_BYTES + kind.tokenBytes * numTokens;
            long size = channel.size();
            if (size != expectedSize) {
                throw new FileFormatException(
                        file,
                        "file size",
                        expectedSize + " bytes (1024 + " + kind.tokenBytes + " x " + numTokens + " tokens)",
                        size + " bytes" + (size < expectedSize ? " (truncated)" : " (trailing bytes)"));
            }
            MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, HEADER_BYTES, size - HEADER_BYTES, arena);
            return new TokenShard(file, kind, numTokens, mapped);
        } catch (NoSuchFileException e) {
            throw new FileFormatException(file, "no such file (a token shard)");
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read the token shard: " + e.getMessage());
        }
    }

    /**
     * Checks every token of the shard against the vocabulary, so that a bad id fails when the shard is opened, not
     * hours into a run that reaches it. The mapped tokens are read in vector-wide blocks: the largest token (as an
     * unsigned number) decides, and only a failing shard is scanned again for the position of its first bad id.
     * Cost: one pass over the file at memory speed (see the docs for the measured figure).
     *
     * @throws FileFormatException naming the file, the position of the first id {@code >= vocabSize} and the id
     */
    public void checkTokensBelow(int vocabSize) {
        if (vocabSize <= 0) throw new IllegalArgumentException("vocabulary size must be positive, got " + vocabSize);
        long largest = kind == Kind.GPT2 ? largestUint16() : largestUint32();
        if (largest < vocabSize) return;
        for (long i = 0; i < numTokens; i++) {
            long id = kind == Kind.GPT2
                    ? Short.toUnsignedLong(tokens.getAtIndex(UINT16, i))
                    : Integer.toUnsignedLong(tokens.getAtIndex(UINT32, i));
            if (id >= vocabSize)
                throw new FileFormatException(
                        file, "token at position " + i, "an id in [0, " + vocabSize + ") (the model's vocabulary)", id);
        }
    }

    // unsigned maxima: flipping the sign bit maps unsigned order onto signed order, so the signed max lane-wise works
    private long largestUint16() {
        var species = ShortVector.SPECIES_PREFERRED;
        long bytes = numTokens * Short.BYTES, step = species.vectorByteSize(), at = 0;
        var max = ShortVector.broadcast(species, Short.MIN_VALUE);
        for (; at + step <= bytes; at += step) {
            max = max.max(ShortVector.fromMemorySegment(species, tokens, at, ByteOrder.LITTLE_ENDIAN)
                    .lanewise(VectorOperators.XOR, Short.MIN_VALUE));
        }
        long largest = Short.toUnsignedLong((short) (max.reduceLanes(VectorOperators.MAX) ^ Short.MIN_VALUE));
        for (long i = at / Short.BYTES; i < numTokens; i++)
            largest = Math.max(largest, Short.toUnsignedLong(tokens.getAtIndex(UINT16, i)));
        return largest;
    }

    private long largestUint32() {
        var species = IntVector.SPECIES_PREFERRED;
        long bytes = numTokens * Integer.BYTES, step = species.vectorByteSize(), at = 0;
        var max = IntVector.broadcast(species, Integer.MIN_VALUE);
        for (; at + step <= bytes; at += step) {
            max = max.max(IntVector.fromMemorySegment(species, tokens, at, ByteOrder.LITTLE_ENDIAN)
                    .lanewise(VectorOperators.XOR, Integer.MIN_VALUE));
        }
        long largest = Integer.toUnsignedLong(max.reduceLanes(VectorOperators.MAX) ^ Integer.MIN_VALUE);
        for (long i = at / Integer.BYTES; i < numTokens; i++)
            largest = Math.max(largest, Integer.toUnsignedLong(tokens.getAtIndex(UINT32, i)));
        return largest;
    }

    /** Opens a shard whose mapping is released when the shard becomes unreachable. */
    public static TokenShard open(Path file) {
        return open(file, Arena.ofAuto());
    }

    public Path file() {
        return file;
    }

    public Kind kind() {
        return kind;
    }

    public long numTokens() {
        return numTokens;
    }

    /** Token id at position {@code i} (0-based, after the header). */
    public int token(long i) {
        if (i < 0 || i >= numTokens)
            throw new IndexOutOfBoundsException("token " + i + " of " + numTokens + " in " + file);
        return kind == Kind.GPT2 ? Short.toUnsignedInt(tokens.getAtIndex(UINT16, i)) : tokens.getAtIndex(UINT32, i);
    }

    /** Copies {@code count} token ids starting at {@code start} into {@code destination[offset..]}. */
    public void read(long start, int[] destination, int offset, int count) {
        if (start < 0 || count < 0 || start + count > numTokens) {
            throw new IndexOutOfBoundsException(
                    "tokens [" + start + ", " + (start + count) + ") of " + numTokens + " in " + file);
        }
        if (kind == Kind.GPT2) {
            for (int i = 0; i < count; i++)
                destination[offset + i] = Short.toUnsignedInt(tokens.getAtIndex(UINT16, start + i));
        } else {
            MemorySegment.copy(tokens, UINT32, start * Integer.BYTES, destination, offset, count);
        }
    }

    /** All tokens as an array (for small shards and tests). */
    public int[] toArray() {
        if (numTokens > Integer.MAX_VALUE - 8)
            throw new LlmcException(file + ": too many tokens for one array: " + numTokens);
        int[] all = new int[(int) numTokens];
        read(0, all, 0, all.length);
        return all;
    }

    /**
     * Writes a shard atomically. Token ids must fit the kind's width (0..65535 for GPT-2; non-negative for Llama 3),
     * and the count must fit the int32 header slot.
     */
    public static void write(Path file, Kind kind, int[] tokens) {
        if (tokens.length == 0) throw new LlmcException("cannot write " + file + ": a shard needs at least one token");
        if ((long) kind.tokenBytes * tokens.length > Integer.MAX_VALUE - HEADER_BYTES) {
            throw new LlmcException("cannot write " + file + ": " + tokens.length
                    + " tokens do not fit one buffer; split into more shards");
        }
        for (int i = 0; i < tokens.length; i++) {
            if (tokens[i] < 0 || tokens[i] > kind.maxTokenId()) {
                throw new LlmcException("cannot write %s: token %d at position %d does not fit a %s shard (0..%d)"
                        .formatted(file, tokens[i], i, kind, kind.maxTokenId()));
            }
        }
        var body = ByteBuffer.allocate(kind.tokenBytes * tokens.length).order(ByteOrder.LITTLE_ENDIAN);
        if (kind == Kind.GPT2) {
            for (int token : tokens) body.putShort((short) token);
        } else {
            body.asIntBuffer().put(tokens);
        }
        body.rewind();
        var header = ShardHeaders.create(kind.magic, kind.version, tokens.length);
        AtomicFiles.write(file, channel -> {
            while (header.hasRemaining()) channel.write(header);
            while (body.hasRemaining()) channel.write(body);
        });
    }

    @Override
    public String toString() {
        return "TokenShard[" + file + ", " + kind + ", " + numTokens + " tokens]";
    }
}
