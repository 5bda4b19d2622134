package dev.llmc4j.llama3;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Reads Hugging Face Llama 3 weights ({@code model.safetensors}: a little-endian u64 header length, a JSON header
 * {@code name -> {dtype, shape, data_offsets}}, then the raw tensors) into our 16-slot fp32 layout.
 *
 * <p>Names: {@code model.embed_tokens.weight}, {@code model.layers.{i}.self_attn.{q,k,v,o}_proj.weight},
 * {@code model.layers.{i}.mlp.{gate,up,down}_proj.weight}, {@code model.layers.{i}.input_layernorm.weight},
 * {@code model.layers.{i}.post_attention_layernorm.weight}, {@code model.norm.weight}, {@code lm_head.weight}
 * (absent in the tied 3.2 models: then lm_head is a copy of the embedding).
 *
 * <p>HF stores the rows of every q/k head permuted for its "rotate half" RoPE (pairs (i, i + hd/2)); our RoPE
 * rotates interleaved pairs (2i, 2i+1), so the import moves HF row {@code half*hd/2 + i} back to row
 * {@code 2i + half} within each head.
 */
public final class SafeTensorsImport {
    private SafeTensorsImport() {}

    /** One tensor of the file: dtype (F32, BF16, F16), shape, and its bytes. */
    record Tensor(String dtype, long[] shape, MemorySegment data) {
        long count() {
            long n = 1;
            for (long d : shape) n *= d;
            return n;
        }

        float get(long i) {
            return switch (dtype) {
                case "F32" -> data.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i);
                case "BF16" -> BFloat16.toFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                case "F16" -> Float.float16ToFloat(data.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, i));
                default -> throw new IllegalStateException(dtype);
            };
        }
    }

    /** Reads the file into a new model of the given shape (the file carries no config). */
    public static Llama3 load(Path file, Llama3Config config) {
        try (var arena = Arena.ofConfined()) {
            Map<String, Tensor> tensors = read(file, arena);
            var model = new Llama3(config);
            fill(file, tensors, config, model.parameters());
            return model;
        }
    }

    static Map<String, Tensor> read(Path file, Arena arena) {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new LlmcException("safetensors file not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (size < 8) throw new FileFormatException(file, "file size", ">= 8 bytes", size + " bytes");
        try (var channel = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment all = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long headerLength = all.get(ValueLayout.JAVA_LONG_UNALIGNED, 0);
            if (headerLength <= 0 || 8 + headerLength > size || headerLength > 100_000_000)
                throw new FileFormatException(file, "header length", "1.." + (size - 8), headerLength);
            byte[] json = all.asSlice(8, headerLength).toArray(ValueLayout.JAVA_BYTE);
            Object header = new Json(new String(json, StandardCharsets.UTF_8), file).value();
            if (!(header instanceof Map<?, ?> entries)) throw new FileFormatException(file, "header", "a JSON object", "something else");
            long dataStart = 8 + headerLength;
            var tensors = new LinkedHashMap<String, Tensor>();
            for (var entry : entries.entrySet()) {
                String name = (String) entry.getKey();
                if (name.equals("__metadata__")) continue;
                if (!(entry.getValue() instanceof Map<?, ?> info)) throw new FileFormatException(file, name, "an object", entry.getValue());
                String dtype = String.valueOf(info.get("dtype"));
                int width = switch (dtype) {
                    case "F32" -> 4;
                    case "BF16", "F16" -> 2;
                    default -> throw new FileFormatException(file, name + ".dtype", "F32, BF16 or F16", dtype);
                };
                List<?> shapeList = (List<?>) info.get("shape");
                List<?> offsets = (List<?>) info.get("data_offsets");
                long[] shape = shapeList.stream().mapToLong(o -> ((Number) o).longValue()).toArray();
                long begin = ((Number) offsets.get(0)).longValue(), end = ((Number) offsets.get(1)).longValue();
                var tensor = new Tensor(dtype, shape, null);
                if (end - begin != tensor.count() * width || dataStart + end > size || begin < 0)
                    throw new FileFormatException(file, name + ".data_offsets", tensor.count() * width + " bytes inside the file",
                            "[" + begin + ", " + end + ")");
                tensors.put(name, new Tensor(dtype, shape, all.asSlice(dataStart + begin, end - begin)));
            }
            return tensors;
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    private static Tensor take(Path file, Map<String, Tensor> tensors, String name, long... shape) {
        Tensor t = tensors.get(name);
        if (t == null) throw new FileFormatException(file, "tensor " + name, "present", "missing");
        if (!java.util.Arrays.equals(t.shape(), shape))
            throw new FileFormatException(file, "shape of " + name, java.util.Arrays.toString(shape), java.util.Arrays.toString(t.shape()));
        return t;
    }

    /** Copies count values of t from element 0 into params at offset. */
    private static void copy(Tensor t, MemorySegment params, long offset) {
        for (long i = 0; i < t.count(); i++) params.setAtIndex(ValueLayout.JAVA_FLOAT, offset + i, t.get(i));
    }

    /** Copies a q or k projection (heads*hd, C), undoing HF's rotate-half row order inside every head. */
    private static void copyUnpermuted(Tensor t, int heads, int hd, long C, MemorySegment params, long offset) {
        int half = hd / 2;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < hd; j++) {
                // HF row j of a head: j < hd/2 holds our row 2j, the rest our row 2(j - hd/2) + 1
                int ours = j < half ? 2 * j : 2 * (j - half) + 1;
                long from = ((long) h * hd + j) * C, to = offset + ((long) h * hd + ours) * C;
                for (long c = 0; c < C; c++) params.setAtIndex(ValueLayout.JAVA_FLOAT, to + c, t.get(from + c));
            }
        }
    }

    static void fill(Path file, Map<String, Tensor> tensors, Llama3Config c, MemorySegment params) {
        long C = c.channels(), V = c.vocabSize(), H = c.ffnHidden(), hd = c.headSize();
        long qkv = c.qkvRows(), kvC = c.kvChannels();
        long[] off = c.parameterOffsets();
        copy(take(file, tensors, "model.embed_tokens.weight", V, C), params, off[0]);
        Tensor head = tensors.containsKey("lm_head.weight") ? take(file, tensors, "lm_head.weight", V, C)
                : tensors.get("model.embed_tokens.weight"); // tied (3.2 1B/3B): lm_head is a copy of the embedding
        copy(head, params, off[1]);
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            copy(take(file, tensors, p + "input_layernorm.weight", C), params, off[2] + l * C);
            long qkvw = off[4] + l * qkv * C;
            copyUnpermuted(take(file, tensors, p + "self_attn.q_proj.weight", c.numHeads() * hd, C), c.numHeads(), (int) hd, C, params, qkvw);
            copyUnpermuted(take(file, tensors, p + "self_attn.k_proj.weight", kvC, C), c.numKvHeads(), (int) hd, C, params,
                    qkvw + c.numHeads() * hd * C);
            copy(take(file, tensors, p + "self_attn.v_proj.weight", kvC, C), params, qkvw + (c.numHeads() * hd + kvC) * C);
            copy(take(file, tensors, p + "self_attn.o_proj.weight", C, C), params, off[6] + l * C * C);
            copy(take(file, tensors, p + "post_attention_layernorm.weight", C), params, off[8] + l * C);
            copy(take(file, tensors, p + "mlp.up_proj.weight", H, C), params, off[10] + l * 2 * H * C);        // c_fc
            copy(take(file, tensors, p + "mlp.gate_proj.weight", H, C), params, off[10] + l * 2 * H * C + H * C); // c_fc2
            copy(take(file, tensors, p + "mlp.down_proj.weight", C, H), params, off[12] + l * C * H);
        }
        copy(take(file, tensors, "model.norm.weight", C), params, off[14]);
    }

    /** Just enough JSON for a safetensors header: objects, arrays, strings, numbers, true/false/null. */
    private static final class Json {
        private final String text;
        private final Path file;
        private int pos;

        Json(String text, Path file) {
            this.text = text;
            this.file = file;
        }

        Object value() {
            skipSpace();
            if (pos >= text.length()) throw error("a value");
            char ch = text.charAt(pos);
            return switch (ch) {
                case '{' -> object();
                case '[' -> array();
                case '"' -> string();
                case 't' -> literal("true", Boolean.TRUE);
                case 'f' -> literal("false", Boolean.FALSE);
                case 'n' -> literal("null", null);
                default -> number();
            };
        }

        private Map<String, Object> object() {
            var map = new LinkedHashMap<String, Object>();
            pos++;
            skipSpace();
            if (peek() == '}') {
                pos++;
                return map;
            }
            while (true) {
                skipSpace();
                String key = string();
                skipSpace();
                expect(':');
                map.put(key, value());
                skipSpace();
                if (peek() == ',') pos++;
                else {
                    expect('}');
                    return map;
                }
            }
        }

        private List<Object> array() {
            var list = new ArrayList<>();
            pos++;
            skipSpace();
            if (peek() == ']') {
                pos++;
                return list;
            }
            while (true) {
                list.add(value());
                skipSpace();
                if (peek() == ',') pos++;
                else {
                    expect(']');
                    return list;
                }
            }
        }

        private String string() {
            expect('"');
            var out = new StringBuilder();
            while (pos < text.length() && text.charAt(pos) != '"') {
                char ch = text.charAt(pos++);
                if (ch == '\\') {
                    char escaped = text.charAt(pos++);
                    switch (escaped) {
                        case 'n' -> out.append('\n');
                        case 't' -> out.append('\t');
                        case 'r' -> out.append('\r');
                        case 'b' -> out.append('\b');
                        case 'f' -> out.append('\f');
                        case 'u' -> {
                            out.append((char) Integer.parseInt(text.substring(pos, pos + 4), 16));
                            pos += 4;
                        }
                        default -> out.append(escaped);
                    }
                } else {
                    out.append(ch);
                }
            }
            expect('"');
            return out.toString();
        }

        private Object number() {
            int start = pos;
            while (pos < text.length() && "+-0123456789.eE".indexOf(text.charAt(pos)) >= 0) pos++;
            String s = text.substring(start, pos);
            if (s.isEmpty()) throw error("a value");
            return s.contains(".") || s.contains("e") || s.contains("E") ? (Object) Double.parseDouble(s) : (Object) Long.parseLong(s);
        }

        private Object literal(String word, Object value) {
            if (!text.startsWith(word, pos)) throw error(word);
            pos += word.length();
            return value;
        }

        private char peek() {
            return pos < text.length() ? text.charAt(pos) : '\0';
        }

        private void expect(char ch) {
            if (peek() != ch) throw error("'" + ch + "'");
            pos++;
        }

        private void skipSpace() {
            while (pos < text.length() && Character.isWhitespace(text.charAt(pos))) pos++;
        }

        private FileFormatException error(String expected) {
            return new FileFormatException(file, "JSON header at character " + pos, expected,
                    pos < text.length() ? "'" + text.charAt(pos) + "'" : "the end");
        }
    }
}
