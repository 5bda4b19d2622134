package dev.llmc4j.tutorials.step01;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Step 1: llm.c's token shard, written and read by hand.
 *
 * <pre>
 *   bytes 0..1023   header: 256 little-endian int32 slots; [0] magic 20240520, [1] version 1, [2] token count
 *   bytes 1024..    the token ids, one little-endian uint16 each (GPT-2 has 50,257 tokens: 16 bits are enough)
 * </pre>
 */
public final class ShardFile {
    private ShardFile() {}

    // tag::format[]
    public static final int MAGIC = 20240520;
    public static final int VERSION = 1;
    public static final int HEADER_BYTES = 256 * Integer.BYTES;

    /** The bytes of a shard holding {@code tokens}. */
    public static byte[] encode(int[] tokens) {
        var buffer = ByteBuffer.allocate(HEADER_BYTES + 2 * tokens.length).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(0, MAGIC).putInt(4, VERSION).putInt(8, tokens.length); // slots 3..255 stay zero
        buffer.position(HEADER_BYTES);
        for (int token : tokens) {
            if (token < 0 || token > 0xFFFF)
                throw new IllegalArgumentException("token " + token + " does not fit uint16");
            buffer.putShort((short) token);
        }
        return buffer.array();
    }

    /** The token ids of a shard, after checking magic, version and size. */
    public static int[] decode(byte[] bytes) {
        var buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        if (buffer.getInt(0) != MAGIC)
            throw new IllegalArgumentException("magic: expected " + MAGIC + ", found " + buffer.getInt(0));
        if (buffer.getInt(4) != VERSION)
            throw new IllegalArgumentException("version: expected " + VERSION + ", found " + buffer.getInt(4));
        int count = buffer.getInt(8);
        if (bytes.length != HEADER_BYTES + 2 * count)
            throw new IllegalArgumentException(
                    "size: expected " + (HEADER_BYTES + 2 * count) + " bytes, found " + bytes.length);
        int[] tokens = new int[count];
        for (int i = 0; i < count; i++) tokens[i] = Short.toUnsignedInt(buffer.getShort(HEADER_BYTES + 2 * i));
        return tokens;
    }
    // end::format[]

    /** One (B, T) batch: the model reads {@code inputs} and must predict {@code targets}, the same tokens moved by one. */
    public record Batch(int[] inputs, int[] targets) {}

    // tag::batch[]
    /**
     * Batch number {@code index} of an unshuffled pass over one shard: the B*T+1 tokens from index*B*T on; the
     * inputs are the first B*T of them, the targets the last B*T. Row b of the batch is inputs[b*T .. b*T+T).
     */
    public static Batch batch(int[] tokens, int index, int B, int T) {
        int start = index * B * T;
        int[] inputs = new int[B * T], targets = new int[B * T];
        System.arraycopy(tokens, start, inputs, 0, B * T);
        System.arraycopy(tokens, start + 1, targets, 0, B * T);
        return new Batch(inputs, targets);
    }

    /** How many batches one shard gives: the last target must still be inside, hence the -1. */
    public static int numBatches(int numTokens, int B, int T) {
        return (numTokens - 1) / (B * T);
    }
    // end::batch[]
}
