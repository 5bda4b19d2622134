package dev.llmc4j.format;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Optional;

/**
 * llm.c's decode-only tokenizer file, {@code gpt2_tokenizer.bin}: a 1024-byte header
 * ({@code [0]=20240328, [1]=version, [2]=number of tokens, [3]=EOT id} in version 2; version 1 has no EOT slot and
 * implies 50257 tokens with EOT 50256), then for every token id one unsigned length byte L (1..255) and L raw
 * bytes. The bytes are the token's exact bytes, which may be a partial UTF-8 sequence.
 */
public final class TokenizerFile {
    public static final int MAGIC = 20240328;
    public static final int VERSION = 2;
    /** Version 1 files carry no EOT id: they must be GPT-2's 50257-token vocabulary, with EOT 50256. */
    private static final int LEGACY_VOCAB_SIZE = 50257;

    private static final int LEGACY_EOT = 50256;

    private final byte[][] tokenBytes;
    private final int eotToken;

    public TokenizerFile(byte[][] tokenBytes, int eotToken) {
        if (eotToken < 0 || eotToken >= tokenBytes.length) {
            throw new IllegalArgumentException(
                    "EOT id " + eotToken + " outside the vocabulary of " + tokenBytes.length);
        }
        this.tokenBytes = tokenBytes;
        this.eotToken = eotToken;
    }

    /** Reads a version 1 or 2 file. */
    public static TokenizerFile read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new FileFormatException(file, "no such file (the tokenizer)");
        } catch (IOException e) {
            throw new LlmcException("cannot read tokenizer file " + file + ": " + e.getMessage(), e);
        }
        if (bytes.length < ShardHeaders.HEADER_BYTES) {
            throw new FileFormatException(
                    file, "header", ShardHeaders.HEADER_BYTES + " bytes", bytes.length + " bytes (file too short)");
        }
        var buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int magic = buffer.getInt(0);
        int version = buffer.getInt(4);
        int vocabSize = buffer.getInt(8);
        if (magic != MAGIC) throw new FileFormatException(file, "magic (header[0])", MAGIC, magic);
        int eot;
        if (version == 1) {
            if (vocabSize != LEGACY_VOCAB_SIZE) {
                throw new FileFormatException(
                        file, "token count (header[2]) of a version 1 tokenizer", LEGACY_VOCAB_SIZE, vocabSize);
            }
            eot = LEGACY_EOT;
        } else if (version == 2) {
            eot = buffer.getInt(12);
        } else {
            throw new FileFormatException(file, "version (header[1])", "1 or 2", version);
        }
        if (vocabSize <= 0) throw new FileFormatException(file, "token count (header[2])", "> 0", vocabSize);
        // every token takes at least 2 bytes (its length and one byte): a count the file cannot hold is refused
        // before the table is allocated
        long mostTokens = (bytes.length - (long) ShardHeaders.HEADER_BYTES) / 2;
        if (vocabSize > mostTokens) {
            throw new FileFormatException(
                    file,
                    "token count (header[2])",
                    "at most " + mostTokens + " (2 bytes per token in the " + bytes.length + "-byte file)",
                    vocabSize);
        }
        if (eot < 0 || eot >= vocabSize) {
            throw new FileFormatException(file, "EOT id (header[3])", "0.." + (vocabSize - 1), eot);
        }
        byte[][] tokens = new byte[vocabSize][];
        int position = ShardHeaders.HEADER_BYTES;
        for (int id = 0; id < vocabSize; id++) {
            if (position >= bytes.length) {
                throw new FileFormatException(
                        file, "length byte of token " + id, "1 byte at offset " + position, "end of file (truncated)");
            }
            int length = Byte.toUnsignedInt(bytes[position++]);
            if (length == 0) throw new FileFormatException(file, "length of token " + id, "1..255", 0);
            if (position + length > bytes.length) {
                throw new FileFormatException(
                        file,
                        "bytes of token " + id,
                        length + " bytes",
                        (bytes.length - position) + " bytes (truncated)");
            }
            tokens[id] = java.util.Arrays.copyOfRange(bytes, position, position + length);
            position += length;
        }
        if (position != bytes.length) {
            throw new FileFormatException(
                    file, "file size", position + " bytes", bytes.length + " bytes (trailing bytes)");
        }
        return new TokenizerFile(tokens, eot);
    }

    /**
     * Reads the file if it exists. llm.c treats a missing tokenizer as non-fatal (it prints token ids instead of
     * text), so callers get an empty Optional and choose whether to warn.
     */
    public static Optional<TokenizerFile> readIfPresent(Path file) {
        return Files.exists(file) ? Optional.of(read(file)) : Optional.empty();
    }

    /** Writes a version 2 file atomically. */
    public static void write(Path file, byte[][] tokenBytes, int eotToken) {
        new TokenizerFile(tokenBytes, eotToken); // validates the EOT id
        var body = new ByteArrayOutputStream();
        for (int id = 0; id < tokenBytes.length; id++) {
            int length = tokenBytes[id].length;
            if (length < 1 || length > 255) {
                throw new LlmcException("cannot write " + file + ": token " + id + " has " + length
                        + " bytes; the format allows 1..255");
            }
            body.write(length);
            body.write(tokenBytes[id], 0, length);
        }
        var header = ShardHeaders.create(MAGIC, VERSION, tokenBytes.length, eotToken);
        var content = ByteBuffer.wrap(body.toByteArray());
        AtomicFiles.write(file, channel -> {
            while (header.hasRemaining()) channel.write(header);
            while (content.hasRemaining()) channel.write(content);
        });
    }

    public int vocabSize() {
        return tokenBytes.length;
    }

    public int eotToken() {
        return eotToken;
    }

    /** The exact bytes of a token (a copy). */
    public byte[] decode(int id) {
        if (id < 0 || id >= tokenBytes.length) {
            throw new LlmcException("invalid token id " + id + " (vocabulary has " + tokenBytes.length + " tokens)");
        }
        return tokenBytes[id].clone();
    }

    /**
     * The bytes llm.c would print for a token ({@code safe_printf}): nothing for an empty piece or for a one-byte
     * piece whose byte is neither printable nor whitespace in the C locale (control bytes, and bytes >= 0x80 that
     * are half of a UTF-8 character); otherwise the bytes as they are. Ids outside the vocabulary print nothing.
     */
    public byte[] printable(int id) {
        if (id < 0 || id >= tokenBytes.length) return new byte[0];
        byte[] piece = tokenBytes[id];
        return isSafeToPrint(piece) ? piece.clone() : new byte[0];
    }

    /** llm.c's {@code safe_printf} rule, see {@link #printable(int)}. */
    public static boolean isSafeToPrint(byte[] piece) {
        if (piece.length == 0) return false;
        if (piece.length == 1) {
            int b = Byte.toUnsignedInt(piece[0]);
            boolean isPrint = b >= 0x20 && b <= 0x7E;
            boolean isSpace = b == ' ' || (b >= 0x09 && b <= 0x0D);
            return isPrint || isSpace;
        }
        return true;
    }
}
