package dev.llmc4j.model;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.Json;
import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.format.Safetensors;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.TreeSet;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Hugging Face GPT-2 ({@code model.safetensors}) to llm.c's parameter layout, as llm.c's train_gpt2.py does when
 * it writes {@code gpt2_124M.bin} from the pretrained model.
 *
 * <pre>
 * HF name (optional "transformer." prefix)   HF shape      llm.c tensor (slot)  llm.c shape, all layers stacked
 * wte.weight                                (V, C)        wte (0)              (Vp, C)   rows V..Vp-1 zero
 * wpe.weight                                (maxT, C)     wpe (1)              (maxT, C)
 * h.i.ln_1.weight / .bias                   (C)           ln1w / ln1b (2, 3)   (L, C)
 * h.i.attn.c_attn.weight                    (C, 3C)  T    qkvw (4)             (L, 3C, C)
 * h.i.attn.c_attn.bias                      (3C)          qkvb (5)             (L, 3C)
 * h.i.attn.c_proj.weight                    (C, C)   T    attprojw (6)         (L, C, C)
 * h.i.attn.c_proj.bias                      (C)           attprojb (7)         (L, C)
 * h.i.ln_2.weight / .bias                   (C)           ln2w / ln2b (8, 9)   (L, C)
 * h.i.mlp.c_fc.weight                       (C, 4C)  T    fcw (10)             (L, 4C, C)
 * h.i.mlp.c_fc.bias                         (4C)          fcb (11)             (L, 4C)
 * h.i.mlp.c_proj.weight                     (4C, C)  T    fcprojw (12)         (L, C, 4C)
 * h.i.mlp.c_proj.bias                       (C)           fcprojb (13)         (L, C)
 * ln_f.weight / .bias                       (C)           lnfw / lnfb (14, 15) (C)
 * </pre>
 *
 * T: HF's GPT-2 uses "Conv1D" layers whose weight is stored (in, out), the transpose of nn.Linear's (out, in);
 * llm.c stores (out, in), so those four are transposed. Ignored: the causal-mask buffers {@code h.i.attn.bias}
 * and {@code h.i.attn.masked_bias}, and {@code lm_head.weight} (tied to wte; an untied one is refused).
 *
 * <p>V, maxT, C and L come from the shapes. The head count does not show in any shape, so it is, in order:
 * the {@code heads} argument (--heads); {@code n_head} of a {@code config.json} next to the safetensors file;
 * else C / 64 when C is a multiple of 64, since every released GPT-2 has head size 64 (124M: 768/12, 355M:
 * 1024/16, 774M: 1280/20, 1558M: 1600/25); otherwise an error asking for --heads.
 */
public final class GPT2Import {
    private GPT2Import() {}

    /** GPT-2's head size, used to guess the head count when nothing says it. */
    public static final int GPT2_HEAD_SIZE = 64;

    /**
     * The imported model.
     *
     * @param config      the shape, V/maxT/C/L from the tensors, NH as {@code headsSource} says
     * @param parameters  all {@code config.numParameters()} native-order floats in llm.c's order
     * @param headsSource where NH came from, for messages: "--heads", ".../config.json", "C / 64"
     */
    public record Imported(GPT2Config config, MemorySegment parameters, String headsSource) {}

    /** One per-layer HF tensor: its name after "h.{i}.", its HF shape in units of C, whether it is Conv1D. */
    record LayerTensor(int slot, String suffix, int[] shapeInC, boolean conv1d) {}

    static final List<LayerTensor> LAYER_TENSORS = List.of(
            new LayerTensor(2, "ln_1.weight", new int[] {1}, false),
            new LayerTensor(3, "ln_1.bias", new int[] {1}, false),
            new LayerTensor(4, "attn.c_attn.weight", new int[] {1, 3}, true),
            new LayerTensor(5, "attn.c_attn.bias", new int[] {3}, false),
            new LayerTensor(6, "attn.c_proj.weight", new int[] {1, 1}, true),
            new LayerTensor(7, "attn.c_proj.bias", new int[] {1}, false),
            new LayerTensor(8, "ln_2.weight", new int[] {1}, false),
            new LayerTensor(9, "ln_2.bias", new int[] {1}, false),
            new LayerTensor(10, "mlp.c_fc.weight", new int[] {1, 4}, true),
            new LayerTensor(11, "mlp.c_fc.bias", new int[] {4}, false),
            new LayerTensor(12, "mlp.c_proj.weight", new int[] {4, 1}, true),
            new LayerTensor(13, "mlp.c_proj.bias", new int[] {1}, false));

    private static final Pattern LAYER_NAME = Pattern.compile("h\\.(\\d+)\\.(.+)");
    private static final String PREFIX = "transformer.";

    /** What {@link #importCheckpoint} wrote: the model shape and where its head count came from. */
    public record Summary(GPT2Config config, String headsSource) {}

    /** Reads a HF GPT-2 safetensors file and writes an llm.c checkpoint, version 3 (fp32) or 5 (bf16). */
    public static Summary importCheckpoint(Path safetensors, Path output, OptionalInt heads, int version) {
        GPT2Checkpoint.bytesPerParameter(version); // rejects a bad version before any work
        try (Arena arena = Arena.ofConfined()) {
            Imported imported = load(Safetensors.open(safetensors, arena), heads, arena);
            GPT2Checkpoint.write(output, imported.config(), imported.parameters(), version);
            return new Summary(imported.config(), imported.headsSource());
        }
    }

    /** Maps every tensor of {@code file} into llm.c's layout, in a buffer allocated from {@code arena}. */
    public static Imported load(Safetensors file, OptionalInt heads, Arena arena) {
        Map<String, String> names = gpt2Names(file); // GPT-2 name without prefix -> name in the file

        // ---- shapes: V, C from wte; maxT from wpe; L from the layer indices
        String wte = require(file, names, "wte.weight");
        long[] wteShape = file.shape(wte);
        if (wteShape.length != 2
                || wteShape[0] <= 0
                || wteShape[1] <= 0
                || wteShape[0] > Integer.MAX_VALUE
                || wteShape[1] > Integer.MAX_VALUE)
            throw new FileFormatException(
                    file.file(), "shape of " + wte, "[V, C] with both positive", Arrays.toString(wteShape));
        int vocab = (int) wteShape[0], channels = (int) wteShape[1];
        String wpe = require(file, names, "wpe.weight");
        long[] wpeShape = file.shape(wpe);
        if (wpeShape.length != 2 || wpeShape[1] != channels || wpeShape[0] <= 0 || wpeShape[0] > Integer.MAX_VALUE)
            throw shapeError(file, wpe, "[maxT, " + channels + "] (C = " + channels + " from " + wte + ")", wpeShape);
        int maxT = (int) wpeShape[0];
        int layers = countLayers(file, names);

        // ---- every tensor must be there with the shape these sizes imply
        for (int layer = 0; layer < layers; layer++) {
            for (LayerTensor t : LAYER_TENSORS) {
                String name = require(file, names, "h." + layer + "." + t.suffix());
                expectShape(file, name, t.shapeInC(), channels, wte);
            }
        }
        String lnfw = require(file, names, "ln_f.weight"), lnfb = require(file, names, "ln_f.bias");
        expectShape(file, lnfw, new int[] {1}, channels, wte);
        expectShape(file, lnfb, new int[] {1}, channels, wte);
        checkTied(file, names, wte);

        var configJson = ConfigJson.nextTo(file.file());
        configJson.check(vocab, maxT, channels, layers);
        int numHeads;
        String headsSource;
        if (heads.isPresent()) {
            numHeads = heads.getAsInt();
            headsSource = "--heads";
        } else if (configJson.heads().isPresent()) {
            numHeads = configJson.heads().getAsInt();
            headsSource = configJson.file().toString();
        } else if (channels % GPT2_HEAD_SIZE == 0) {
            numHeads = channels / GPT2_HEAD_SIZE;
            headsSource = "C / 64 (GPT-2's head size; no config.json next to the file, no --heads)";
        } else {
            throw new LlmcException(file.file() + ": cannot tell the number of heads: C = " + channels
                    + " is not a multiple of 64 and there is no config.json next to the file; pass --heads N");
        }
        if (numHeads <= 0 || channels % numHeads != 0)
            throw new LlmcException("heads (from " + headsSource + "): expected a positive divisor of C = " + channels
                    + " (C from " + file.file() + "), found " + numHeads);
        var config = new GPT2Config(maxT, vocab, GPT2Config.padVocab(vocab), layers, numHeads, channels);

        // ---- copy; allocate() zero-fills, which is what the padded wte rows V..Vp-1 must hold
        MemorySegment parameters = arena.allocate(config.numParameters() * Float.BYTES, 64);
        file.readFloats(wte, slot(parameters, config, 0));
        file.readFloats(wpe, slot(parameters, config, 1));
        long[] sizes = config.parameterSizes();
        for (LayerTensor t : LAYER_TENSORS) {
            long perLayer = sizes[t.slot()] / layers;
            for (int layer = 0; layer < layers; layer++) {
                String name = names.get("h." + layer + "." + t.suffix());
                MemorySegment destination = slot(parameters, config, t.slot())
                        .asSlice(layer * perLayer * Float.BYTES, perLayer * Float.BYTES);
                if (t.conv1d()) {
                    long[] shape = file.shape(name); // (in, out)
                    transposeInto(file.readFloats(name), (int) shape[0], (int) shape[1], destination);
                } else {
                    file.readFloats(name, destination);
                }
            }
        }
        file.readFloats(lnfw, slot(parameters, config, 14));
        file.readFloats(lnfb, slot(parameters, config, 15));
        return new Imported(config, parameters, headsSource);
    }

    /** Parameter tensor {@code index} (0..15) as a slice of the one buffer. */
    private static MemorySegment slot(MemorySegment parameters, GPT2Config config, int index) {
        return parameters.asSlice(
                config.parameterOffset(index) * Float.BYTES, config.parameterSizes()[index] * Float.BYTES);
    }

    /**
     * Conv1D (in, out) to Linear (out, in): {@code out[o * in + i] = src[i * out + o]}. Done in a float[] (the
     * largest, c_fc of GPT-2 XL, is 1600 x 6400 = 41 MB) and copied in one go.
     */
    static void transposeInto(float[] source, int in, int out, MemorySegment destination) {
        float[] transposed = new float[source.length];
        for (int i = 0; i < in; i++) {
            int row = i * out;
            for (int o = 0; o < out; o++) transposed[o * in + i] = source[row + o];
        }
        MemorySegment.copy(transposed, 0, destination, LittleEndian.NATIVE_FLOAT, 0, transposed.length);
    }

    // ---------------------------------------------------------------------------------------------------------
    // Names and shapes

    /**
     * GPT-2 name (without "transformer.") to the name in the file. Buffers and the tied lm_head are kept too
     * (checked later); anything that is not a GPT-2 tensor is refused so nothing is silently dropped.
     */
    private static Map<String, String> gpt2Names(Safetensors file) {
        var names = new LinkedHashMap<String, String>();
        var unexpected = new TreeSet<String>();
        for (String name : file.names()) {
            String bare = name.startsWith(PREFIX) ? name.substring(PREFIX.length()) : name;
            String earlier = names.put(bare, name);
            if (earlier != null)
                throw new FileFormatException(
                        file.file(),
                        "tensor " + bare,
                        "once (with or without the transformer. prefix)",
                        "twice: " + earlier + " and " + name);
            if (!isGpt2Name(bare)) unexpected.add(name);
        }
        // a file without wte.weight is not GPT-2 at all: say that first, rather than listing its tensors as unexpected
        if (!names.containsKey("wte.weight"))
            throw new FileFormatException(
                    file.file(),
                    "tensor wte.weight (or transformer.wte.weight)",
                    "present in a Hugging Face GPT-2 model.safetensors",
                    "missing: this is not a GPT-2 file (its tensors: "
                            + String.join(", ", file.names().stream().limit(4).toList())
                            + (file.names().size() > 4 ? ", ..." : "") + ")");
        if (!unexpected.isEmpty())
            throw new FileFormatException(
                    file.file(),
                    "tensor names",
                    "only GPT-2 tensors",
                    unexpected.size() + " others: "
                            + String.join(", ", unexpected.stream().limit(5).toList())
                            + (unexpected.size() > 5 ? ", ..." : ""));
        return names;
    }

    private static boolean isGpt2Name(String bare) {
        switch (bare) {
            case "wte.weight", "wpe.weight", "ln_f.weight", "ln_f.bias", "lm_head.weight" -> {
                return true;
            }
            default -> {
                Matcher m = LAYER_NAME.matcher(bare);
                if (!m.matches()) return false;
                String suffix = m.group(2);
                return suffix.equals("attn.bias")
                        || suffix.equals("attn.masked_bias")
                        || LAYER_TENSORS.stream().anyMatch(t -> t.suffix().equals(suffix));
            }
        }
    }

    private static String require(Safetensors file, Map<String, String> names, String bare) {
        String name = names.get(bare);
        if (name == null)
            throw new FileFormatException(
                    file.file(), "tensor " + bare, "present in a Hugging Face GPT-2 model.safetensors", "missing");
        return name;
    }

    /** L = 1 + the largest i in "h.{i}."; the layers below it must all be complete (checked by the caller). */
    private static int countLayers(Safetensors file, Map<String, String> names) {
        int layers = 0;
        for (String bare : names.keySet()) {
            Matcher m = LAYER_NAME.matcher(bare);
            if (!m.matches()) continue;
            try {
                layers = Math.max(layers, Math.addExact(Integer.parseInt(m.group(1)), 1));
            } catch (NumberFormatException | ArithmeticException e) {
                throw new FileFormatException(file.file(), "tensor " + bare, "a layer index below 2^31", m.group(1));
            }
        }
        if (layers == 0)
            throw new FileFormatException(
                    file.file(), "tensor h.0.ln_1.weight", "present (at least one transformer layer)", "missing");
        return layers;
    }

    private static void expectShape(Safetensors file, String name, int[] shapeInC, int channels, String wte) {
        long[] expected =
                Arrays.stream(shapeInC).mapToLong(f -> (long) f * channels).toArray();
        long[] found = file.shape(name);
        if (!Arrays.equals(expected, found)) {
            String units = Arrays.stream(shapeInC)
                    .mapToObj(f -> f == 1 ? "C" : f + "C")
                    .reduce((a, b) -> a + ", " + b)
                    .orElse("");
            throw shapeError(
                    file,
                    name,
                    Arrays.toString(expected) + " = (" + units + ") with C = " + channels + " from " + wte,
                    found);
        }
    }

    private static FileFormatException shapeError(Safetensors file, String name, String expected, long[] found) {
        return new FileFormatException(file.file(), "shape of " + name, expected, Arrays.toString(found));
    }

    /** llm.c has no lm_head tensor: logits use wte. A file whose lm_head.weight differs cannot be imported faithfully. */
    private static void checkTied(Safetensors file, Map<String, String> names, String wte) {
        String lmHead = names.get("lm_head.weight");
        if (lmHead == null) return;
        if (!Arrays.equals(file.shape(lmHead), file.shape(wte))
                || file.dtype(lmHead) != file.dtype(wte)
                || file.raw(lmHead).mismatch(file.raw(wte)) != -1)
            throw new FileFormatException(
                    file.file(),
                    "tensor " + lmHead,
                    "equal to " + wte + " (llm.c ties the output layer to the token embedding)",
                    "different values (an untied model)");
    }

    // ---------------------------------------------------------------------------------------------------------
    // config.json

    /** The Hugging Face config.json next to the weights, if any: n_head, and sizes to cross-check the shapes. */
    private record ConfigJson(Path file, Map<?, ?> values) {
        static ConfigJson nextTo(Path safetensors) {
            Path folder = safetensors.toAbsolutePath().getParent();
            Path file = folder == null ? null : folder.resolve("config.json");
            if (file == null || !Files.isRegularFile(file)) return new ConfigJson(null, Map.of());
            try {
                if (Json.parse(Files.readString(file)) instanceof Map<?, ?> map) return new ConfigJson(file, map);
                throw new FileFormatException(file, "contents", "a JSON object", "another JSON value");
            } catch (IOException e) {
                throw new FileFormatException(file, "cannot read it: " + e.getMessage());
            } catch (Json.JsonException e) {
                throw new FileFormatException(file, "contents", "JSON", "invalid text: " + e.getMessage());
            }
        }

        OptionalInt heads() {
            return integer("n_head", "num_attention_heads");
        }

        /** Sizes in config.json must agree with the tensors: a disagreement means the two files do not belong together. */
        void check(int vocab, int maxT, int channels, int layers) {
            checkOne(vocab, "vocab_size (V from wte.weight)", "vocab_size");
            checkOne(maxT, "n_positions (maxT from wpe.weight)", "n_positions", "max_position_embeddings");
            checkOne(channels, "n_embd (C from wte.weight)", "n_embd", "hidden_size");
            checkOne(layers, "n_layer (L from the h.{i} tensors)", "n_layer", "num_hidden_layers");
        }

        private void checkOne(int fromTensors, String what, String... keys) {
            OptionalInt value = integer(keys);
            if (value.isPresent() && value.getAsInt() != fromTensors)
                throw new FileFormatException(
                        file,
                        keys[0],
                        fromTensors + ", the " + what + " of the safetensors file next to it",
                        value.getAsInt());
        }

        private OptionalInt integer(String... keys) {
            for (String key : keys) {
                Object v = values.get(key);
                if (v == null) continue;
                if (v instanceof Long l && l > 0 && l <= Integer.MAX_VALUE) return OptionalInt.of(l.intValue());
                throw new FileFormatException(file, key, "a positive integer", v);
            }
            return OptionalInt.empty();
        }
    }
}
