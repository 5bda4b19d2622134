package dev.llmc4j.format;

import dev.llmc4j.util.AtomicFiles;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * A safetensors file (Hugging Face's tensor container), memory-mapped and read-only. Model-agnostic: it knows
 * tensors by name, nothing about GPT-2 or Llama.
 *
 * <pre>
 * u64 little-endian  N, the header length in bytes
 * N bytes            UTF-8 JSON: {"wte.weight": {"dtype": "F32", "shape": [50257, 768], "data_offsets": [0, 154389504]},
 *                                 ..., "__metadata__": {"format": "pt"}}   (often padded with spaces)
 * the rest           tensor data, row-major little-endian; data_offsets [begin, end) count from the first byte
 *                    after the header
 * </pre>
 *
 * Opening checks the whole header (every tensor's dtype, shape and offsets, and that no two tensors overlap) and
 * maps the file; tensors are read on demand, F32, BF16 and F16 widened to fp32. Every problem is a
 * {@link FileFormatException} naming the file, the field, the expected and the found value.
 */
public final class Safetensors {

    /** The element types of the format; {@link #isFloat()} ones can be read as fp32 here. */
    public enum DType {
        BOOL(1),
        U8(1),
        I8(1),
        F8_E5M2(1),
        F8_E4M3(1),
        I16(2),
        U16(2),
        F16(2),
        BF16(2),
        I32(4),
        U32(4),
        F32(4),
        I64(8),
        U64(8),
        F64(8);

        public final int bytes;

        DType(int bytes) {
            this.bytes = bytes;
        }

        public boolean isFloat() {
            return this == F32 || this == BF16 || this == F16;
        }
    }

    /**
     * One header entry. {@code begin} and {@code end} are relative to the data start, as in the file.
     *
     * @param shape row-major dimensions; {@code []} is a scalar (one element)
     */
    public record TensorInfo(String name, DType dtype, long[] shape, long begin, long end) {
        public long numElements() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        public long byteSize() {
            return end - begin;
        }
    }

    /**
     * Tensor contents for {@link #write}: fp32 values in native order and their shape.
     *
     * @param values {@code product(shape)} native-order floats (a heap segment over a float[], or off-heap)
     */
    public record TensorData(long[] shape, MemorySegment values) {
        public TensorData {
            long n = 1;
            for (long d : shape) {
                if (d < 0) throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
                n = Math.multiplyExact(n, d);
            }
            if (values.byteSize() != n * Float.BYTES)
                throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " needs " + n + " floats, got "
                        + values.byteSize() / Float.BYTES);
        }

        public static TensorData of(float[] values, long... shape) {
            return new TensorData(shape.clone(), MemorySegment.ofArray(values));
        }
    }

    /** The safetensors library refuses headers over 100 MB; so do we, before allocating anything that large. */
    public static final long MAX_HEADER_BYTES = 100_000_000;

    private static final String METADATA = "__metadata__";

    private final Path file;
    private final Map<String, TensorInfo> tensors; // header order
    private final Map<String, String> metadata;
    private final MemorySegment data; // from the first byte after the header to the end of the file

    private Safetensors(Path file, Map<String, TensorInfo> tensors, Map<String, String> metadata, MemorySegment data) {
        this.file = file;
        this.tensors = tensors;
        this.metadata = metadata;
        this.data = data;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Reading

    /** Reads and checks the header, then maps the file read-only; the mapping lives as long as {@code arena}. */
    public static Safetensors open(Path file, Arena arena) {
        try (FileChannel channel = Headers.openForReading(file)) {
            long fileSize = Headers.size(file, channel);
            if (fileSize < Long.BYTES)
                throw new FileFormatException(
                        file, "header length", "8 bytes (u64)", fileSize + " bytes (the file is truncated)");
            ByteBuffer lengthBytes = readFully(file, channel, 0, Long.BYTES);
            long headerLength = lengthBytes.order(ByteOrder.LITTLE_ENDIAN).getLong(0);
            long available = fileSize - Long.BYTES;
            if (headerLength < 0 || headerLength > available)
                throw new FileFormatException(
                        file,
                        "header length (first 8 bytes)",
                        "at most " + available + " (the bytes after it)",
                        Long.toUnsignedString(headerLength) + " (beyond the end of the file)");
            if (headerLength > MAX_HEADER_BYTES)
                throw new FileFormatException(
                        file, "header length (first 8 bytes)", "at most " + MAX_HEADER_BYTES, headerLength);
            String json = decodeUtf8(file, readFully(file, channel, Long.BYTES, (int) headerLength));
            Object parsed;
            try {
                parsed = Json.parse(json);
            } catch (Json.JsonException e) {
                throw new FileFormatException(file, "header", "JSON", "invalid text: " + e.getMessage());
            }
            if (!(parsed instanceof Map<?, ?> header))
                throw new FileFormatException(file, "header", "a JSON object", describe(parsed));

            long dataStart = Long.BYTES + headerLength;
            long dataSize = fileSize - dataStart;
            var tensors = new LinkedHashMap<String, TensorInfo>();
            Map<String, String> metadata = Map.of();
            for (var entry : header.entrySet()) {
                String name = (String) entry.getKey();
                if (name.equals(METADATA)) metadata = metadata(file, entry.getValue());
                else tensors.put(name, tensorInfo(file, name, entry.getValue(), dataSize));
            }
            checkNoOverlap(file, tensors.values());
            MemorySegment mapped = channel.map(FileChannel.MapMode.READ_ONLY, 0, fileSize, arena);
            return new Safetensors(file, Collections.unmodifiableMap(tensors), metadata, mapped.asSlice(dataStart));
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read it: " + e.getMessage());
        }
    }

    private static ByteBuffer readFully(Path file, FileChannel channel, long position, int length) throws IOException {
        ByteBuffer buffer = ByteBuffer.allocate(length);
        while (buffer.hasRemaining()) {
            if (channel.read(buffer, position + buffer.position()) < 0)
                throw new FileFormatException(
                        file, "header", length + " bytes", buffer.position() + " bytes (the file is truncated)");
        }
        return buffer.flip();
    }

    private static String decodeUtf8(Path file, ByteBuffer bytes) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(bytes)
                    .toString();
        } catch (CharacterCodingException e) {
            throw new FileFormatException(
                    file, "header", "UTF-8 JSON text", "bytes that are not UTF-8 (" + e.getMessage() + ")");
        }
    }

    private static Map<String, String> metadata(Path file, Object value) {
        if (!(value instanceof Map<?, ?> map))
            throw new FileFormatException(file, METADATA, "an object of strings", describe(value));
        var out = new LinkedHashMap<String, String>();
        for (var e : map.entrySet()) {
            if (!(e.getValue() instanceof String s))
                throw new FileFormatException(file, METADATA + "." + e.getKey(), "a string", describe(e.getValue()));
            out.put((String) e.getKey(), s);
        }
        return Collections.unmodifiableMap(out);
    }

    /** One header entry, checked against itself (offsets match dtype and shape) and the data size. */
    private static TensorInfo tensorInfo(Path file, String name, Object value, long dataSize) {
        if (!(value instanceof Map<?, ?> entry))
            throw new FileFormatException(
                    file, "tensor " + name, "an object with dtype, shape, data_offsets", describe(value));
        DType dtype = dtype(file, name, entry.get("dtype"));
        long[] shape = longs(file, name, "shape", entry.get("shape"), -1);
        long[] offsets = longs(file, name, "data_offsets", entry.get("data_offsets"), 2);
        long count = 1;
        for (long d : shape) {
            if (d < 0)
                throw new FileFormatException(
                        file, "shape of " + name, "non-negative dimensions", Arrays.toString(shape));
            count = multiplyOrHuge(count, d);
        }
        long expectedBytes = multiplyOrHuge(count, dtype.bytes);
        long begin = offsets[0], end = offsets[1];
        if (begin < 0 || end < begin || end > dataSize)
            throw new FileFormatException(
                    file,
                    "data_offsets of " + name,
                    "0 <= begin <= end <= " + dataSize + " (the data after the header)",
                    "[" + begin + ", " + end + "]");
        if (end - begin != expectedBytes)
            throw new FileFormatException(
                    file,
                    "data_offsets of " + name,
                    "%d bytes (%s shape %s)".formatted(expectedBytes, dtype, Arrays.toString(shape)),
                    "[%d, %d] = %d bytes".formatted(begin, end, end - begin));
        return new TensorInfo(name, dtype, shape, begin, end);
    }

    private static long multiplyOrHuge(long a, long b) {
        try {
            return Math.multiplyExact(a, b);
        } catch (ArithmeticException overflow) {
            return Long.MAX_VALUE; // can never match a real byte range, so the offsets check reports it
        }
    }

    private static DType dtype(Path file, String name, Object value) {
        if (!(value instanceof String s))
            throw new FileFormatException(file, "dtype of " + name, "a string", describe(value));
        try {
            return DType.valueOf(s);
        } catch (IllegalArgumentException unknown) {
            throw new FileFormatException(file, "dtype of " + name, "one of " + Arrays.toString(DType.values()), s);
        }
    }

    /** A JSON array of non-negative integers; {@code length} -1 accepts any length. */
    private static long[] longs(Path file, String name, String field, Object value, int length) {
        String what = length < 0 ? "an array of integers" : "an array of " + length + " integers";
        if (!(value instanceof List<?> list) || (length >= 0 && list.size() != length))
            throw new FileFormatException(file, field + " of " + name, what, describe(value));
        long[] out = new long[list.size()];
        for (int i = 0; i < out.length; i++) {
            if (!(list.get(i) instanceof Long l))
                throw new FileFormatException(file, field + " of " + name, what, describe(value));
            out[i] = l;
        }
        return out;
    }

    /** Tensors sorted by where they start must each end before the next begins (empty tensors take no room). */
    private static void checkNoOverlap(Path file, Iterable<TensorInfo> infos) {
        var sorted = new ArrayList<TensorInfo>();
        for (TensorInfo info : infos) if (info.byteSize() > 0) sorted.add(info);
        sorted.sort(Comparator.comparingLong(TensorInfo::begin));
        for (int i = 1; i < sorted.size(); i++) {
            TensorInfo previous = sorted.get(i - 1), current = sorted.get(i);
            if (current.begin() < previous.end())
                throw new FileFormatException(
                        file,
                        "data_offsets of " + current.name(),
                        "to begin at or after " + previous.end() + " where " + previous.name() + " ends",
                        "[" + current.begin() + ", " + current.end() + "] (the two tensors overlap)");
        }
    }

    private static String describe(Object value) {
        return switch (value) {
            case null -> "null (or missing)";
            case Map<?, ?> m -> "an object";
            case List<?> l -> "an array " + l;
            case String s -> "the string \"" + s + "\"";
            default -> value.toString();
        };
    }

    // ---------------------------------------------------------------------------------------------------------
    // Queries

    public Path file() {
        return file;
    }

    /** Tensor names in header order, without {@code __metadata__}. */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The header entry of a tensor; a missing one is a {@link FileFormatException}. */
    public TensorInfo info(String name) {
        TensorInfo info = tensors.get(name);
        if (info == null) {
            String some = tensors.keySet().stream().limit(5).collect(Collectors.joining(", "));
            throw new FileFormatException(
                    file,
                    "tensor " + name,
                    "present",
                    "missing (the file has " + tensors.size() + " tensors"
                            + (some.isEmpty() ? "" : ": " + some + (tensors.size() > 5 ? ", ..." : "")) + ")");
        }
        return info;
    }

    public long[] shape(String name) {
        return info(name).shape().clone();
    }

    public DType dtype(String name) {
        return info(name).dtype();
    }

    public long numElements(String name) {
        return info(name).numElements();
    }

    /** The {@code __metadata__} entries (empty when there is none). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The tensor's bytes exactly as stored (little-endian, its own dtype), a read-only view into the mapping. */
    public MemorySegment raw(String name) {
        TensorInfo info = info(name);
        return data.asSlice(info.begin(), info.byteSize());
    }

    /**
     * Copies a tensor into {@code destination} as native-order fp32: F32 in one bulk copy, BF16 and F16 widened
     * exactly (every bf16 and fp16 value is representable in fp32).
     */
    public void readFloats(String name, MemorySegment destination) {
        TensorInfo info = info(name);
        long n = info.numElements();
        if (destination.byteSize() < n * Float.BYTES)
            throw new IllegalArgumentException(
                    "destination holds " + destination.byteSize() / Float.BYTES + " floats, " + name + " has " + n);
        MemorySegment source = data.asSlice(info.begin(), info.byteSize());
        switch (info.dtype()) {
            case F32 ->
                MemorySegment.copy(source, LittleEndian.FLOAT32, 0, destination, LittleEndian.NATIVE_FLOAT, 0, n);
            case BF16 -> {
                for (long i = 0; i < n; i++)
                    destination.setAtIndex(
                            LittleEndian.NATIVE_FLOAT, i, BFloat16.toFloat(source.getAtIndex(LittleEndian.INT16, i)));
            }
            case F16 -> {
                for (long i = 0; i < n; i++)
                    destination.setAtIndex(
                            LittleEndian.NATIVE_FLOAT,
                            i,
                            Float.float16ToFloat(source.getAtIndex(LittleEndian.INT16, i)));
            }
            default ->
                throw new FileFormatException(
                        file, "dtype of " + name, "F32, BF16 or F16 (readable as fp32)", info.dtype());
        }
    }

    /** A tensor as a new float[] (for tensors under 2^31 elements). */
    public float[] readFloats(String name) {
        long n = numElements(name);
        if (n > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException(
                    name + " has " + n + " elements, too many for a float[]; use readFloats(name, segment)");
        float[] out = new float[(int) n];
        readFloats(name, MemorySegment.ofArray(out));
        return out;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Writing

    /** Writes F32 tensors in map order with no metadata. */
    public static void write(Path file, Map<String, TensorData> tensors) {
        write(file, tensors, Map.of());
    }

    /**
     * Writes F32 tensors, in map order, atomically (temp file, then rename). The header is padded with spaces to
     * a multiple of 8 bytes, as the safetensors library does, so the data starts 8-byte aligned.
     */
    public static void write(Path file, Map<String, TensorData> tensors, Map<String, String> metadata) {
        var header = new StringBuilder("{");
        if (!metadata.isEmpty()) {
            header.append(quote(METADATA)).append(":{");
            header.append(metadata.entrySet().stream()
                    .map(e -> quote(e.getKey()) + ":" + quote(e.getValue()))
                    .collect(Collectors.joining(",")));
            header.append("}");
        }
        long offset = 0;
        for (var entry : tensors.entrySet()) {
            if (entry.getKey().equals(METADATA)) throw new IllegalArgumentException(METADATA + " is not a tensor name");
            long bytes = entry.getValue().values().byteSize();
            if (header.length() > 1) header.append(',');
            header.append(quote(entry.getKey()))
                    .append(":{\"dtype\":\"F32\",\"shape\":")
                    .append(Arrays.stream(entry.getValue().shape())
                            .mapToObj(Long::toString)
                            .collect(Collectors.joining(",", "[", "]")))
                    .append(",\"data_offsets\":[")
                    .append(offset)
                    .append(',')
                    .append(offset + bytes)
                    .append("]}");
            offset += bytes;
        }
        header.append('}');
        byte[] json = header.toString().getBytes(StandardCharsets.UTF_8);
        int padded = (json.length + 7) / 8 * 8;
        ByteBuffer head = ByteBuffer.allocate(Long.BYTES + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) head.put((byte) ' ');
        head.flip();

        AtomicFiles.write(file, channel -> {
            try (var out = new BinaryWriter(channel)) {
                out.bytes(head);
                for (TensorData tensor : tensors.values())
                    out.floats(tensor.values(), tensor.values().byteSize() / Float.BYTES);
            }
        });
    }

    /** A JSON string literal: quotes, backslashes and control characters escaped. */
    private static String quote(String s) {
        var out = new StringBuilder("\"");
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> out.append("\\\"");
                case '\\' -> out.append("\\\\");
                case '\n' -> out.append("\\n");
                case '\r' -> out.append("\\r");
                case '\t' -> out.append("\\t");
                default -> {
                    if (c < 0x20) out.append("\\u%04x".formatted((int) c));
                    else out.append(c);
                }
            }
        }
        return out.append('"').toString();
    }

    @Override
    public String toString() {
        return "Safetensors[" + file + ", " + tensors.size() + " tensors]";
    }
}
