package dev.llmc4j.data;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * llm.c's multiple-choice eval file (HellaSwag, MMLU; written by dev/data/data_common.py's write_evalfile, read by
 * llmc/dataloader.h's EvalLoader). Little-endian throughout:
 * <pre>
 *   int32[256] header: [0] = 20240522 magic, [1] = 1 version, [2] = number of examples,
 *                      [3] = the longest example's size in bytes, the rest 0
 *   then per example a stream of uint16:
 *     65535 (start delimiter), example bytes (this whole record, delimiter included), example index, label,
 *     number of completions (4), context length, context tokens..., then per completion: length, tokens...
 * </pre>
 * Token ids must be below 65535 (the delimiter), so the format holds GPT-2 tokens, not Llama 3's 128k vocabulary.
 */
public final class EvalFile {
    private EvalFile() {}

    public static final int MAGIC = 20240522;
    public static final int VERSION = 1;
    public static final int HEADER_BYTES = 1024;
    public static final int START_EXAMPLE = 65535;
    /** The number of completions llm.c's loader accepts. */
    public static final int COMPLETIONS = 4;

    /** One multiple-choice example: a shared context, its candidate completions and the index of the right one. */
    public record Example(int index, int label, int[] context, int[][] completions) {

        /** The example's record size in bytes: 6 fixed uint16 fields, the context, and a length field per completion. */
        public int byteSize() {
            int values = 6 + context.length;
            for (int[] completion : completions) values += 1 + completion.length;
            return 2 * values;
        }
    }

    /** Writes the examples (indices 0..n-1 in order) atomically, exactly as write_evalfile lays them out. */
    public static void write(Path file, List<Example> examples) {
        if (examples.isEmpty()) throw new LlmcException("eval file " + file + ": no examples to write");
        if (examples.size() >= 65536)
            throw new LlmcException(
                    "eval file " + file + ": expected fewer than 65,536 examples, found " + examples.size());
        long total = HEADER_BYTES;
        int longest = 0;
        for (int i = 0; i < examples.size(); i++) {
            var example = examples.get(i);
            check(file, i, example);
            longest = Math.max(longest, example.byteSize());
            total += example.byteSize();
        }
        var buffer = ByteBuffer.allocate(Math.toIntExact(total)).order(ByteOrder.LITTLE_ENDIAN);
        buffer.putInt(MAGIC).putInt(VERSION).putInt(examples.size()).putInt(longest);
        buffer.position(HEADER_BYTES);
        for (int i = 0; i < examples.size(); i++) {
            var example = examples.get(i);
            putU16(buffer, START_EXAMPLE);
            putU16(buffer, example.byteSize());
            putU16(buffer, i);
            putU16(buffer, example.label());
            putU16(buffer, example.completions().length);
            putU16(buffer, example.context().length);
            for (int token : example.context()) putU16(buffer, token);
            for (int[] completion : example.completions()) {
                putU16(buffer, completion.length);
                for (int token : completion) putU16(buffer, token);
            }
        }
        AtomicFiles.write(file, buffer.array());
    }

    private static void check(Path file, int i, Example example) {
        String where = "eval file " + file + ", example " + i + ": ";
        if (example.completions().length != COMPLETIONS)
            throw new LlmcException(
                    where + "expected " + COMPLETIONS + " completions, found " + example.completions().length);
        if (example.label() < 0 || example.label() >= COMPLETIONS)
            throw new LlmcException(where + "label: expected 0..3, found " + example.label());
        checkTokens(where + "context", example.context());
        for (int[] completion : example.completions()) checkTokens(where + "completion", completion);
        if (example.byteSize() >= 65536)
            throw new LlmcException(where + "expected a record under 65,536 bytes, found " + example.byteSize());
    }

    private static void checkTokens(String where, int[] tokens) {
        for (int token : tokens) {
            if (token < 0 || token >= START_EXAMPLE)
                throw new LlmcException(
                        where + ": token id: expected 0..65534 (uint16, 65535 is the delimiter), found " + token);
        }
    }

    private static void putU16(ByteBuffer buffer, int value) {
        buffer.putShort((short) value);
    }

    /** Reads and checks the whole file (HellaSwag val is 3.6 MB) as EvalLoader would, with one-line errors. */
    public static List<Example> read(Path file) {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new LlmcException("eval file not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (bytes.length < HEADER_BYTES)
            throw new FileFormatException(file, "file size", ">= 1024 bytes", bytes.length + " bytes");
        var buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
        int magic = buffer.getInt(0), version = buffer.getInt(4), count = buffer.getInt(8), longest = buffer.getInt(12);
        if (magic != MAGIC) throw new FileFormatException(file, "header[0] (magic)", MAGIC, magic);
        if (version != VERSION) throw new FileFormatException(file, "header[1] (version)", VERSION, version);
        if (count <= 0) throw new FileFormatException(file, "header[2] (examples)", "> 0", count);
        var examples = new ArrayList<Example>(count);
        int position = HEADER_BYTES, seenLongest = 0;
        for (int i = 0; i < count; i++) {
            String where = "example " + i;
            if (position + 12 > bytes.length)
                throw new FileFormatException(file, where, "a record at byte " + position, "the end of the file");
            int delimiter = u16(buffer, position), size = u16(buffer, position + 2), index = u16(buffer, position + 4);
            if (delimiter != START_EXAMPLE)
                throw new FileFormatException(file, where + " delimiter", START_EXAMPLE, delimiter);
            if (index != i) throw new FileFormatException(file, where + " index", i, index);
            if (size < 12 || position + size > bytes.length)
                throw new FileFormatException(
                        file, where + " size", "12.." + (bytes.length - position) + " bytes", size);
            int end = position + size, at = position + 6;
            int label = u16(buffer, at), completions = u16(buffer, at + 2);
            at += 4;
            if (label >= COMPLETIONS) throw new FileFormatException(file, where + " label", "0..3", label);
            if (completions != COMPLETIONS)
                throw new FileFormatException(file, where + " completions", COMPLETIONS, completions);
            int[] context = tokens(file, where + " context", buffer, at, end);
            at += 2 + 2 * context.length;
            int[][] endings = new int[completions][];
            for (int c = 0; c < completions; c++) {
                endings[c] = tokens(file, where + " completion " + c, buffer, at, end);
                at += 2 + 2 * endings[c].length;
            }
            if (at != end)
                throw new FileFormatException(file, where + " size", (at - position) + " bytes (its fields)", size);
            examples.add(new Example(i, label, context, endings));
            seenLongest = Math.max(seenLongest, size);
            position = end;
        }
        if (position != bytes.length)
            throw new FileFormatException(
                    file, "file size", position + " bytes (" + count + " examples)", bytes.length + " bytes");
        if (longest != seenLongest)
            throw new FileFormatException(file, "header[3] (longest example bytes)", seenLongest, longest);
        return examples;
    }

    private static int[] tokens(Path file, String where, ByteBuffer buffer, int at, int end) {
        if (at + 2 > end) throw new FileFormatException(file, where + " length", "inside the record", "past its end");
        int length = u16(buffer, at);
        if (at + 2 + 2L * length > end)
            throw new FileFormatException(file, where + " length", "at most " + (end - at - 2) / 2 + " tokens", length);
        int[] tokens = new int[length];
        for (int i = 0; i < length; i++) tokens[i] = u16(buffer, at + 2 + 2 * i);
        return tokens;
    }

    private static int u16(ByteBuffer buffer, int at) {
        return Short.toUnsignedInt(buffer.getShort(at));
    }
}
