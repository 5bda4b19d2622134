package dev.llmc4j.model;

import dev.llmc4j.format.Safetensors;
import dev.llmc4j.format.Safetensors.TensorData;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A tiny Hugging Face GPT-2 made backwards from the llm.c layout it must import to: parameter slot s, element k
 * (counting across layers) holds {@code s * 100_000 + k + 1}, padded wte rows hold 0. The HF tensors are cut out
 * of that, Conv1D weights transposed to (in, out), so an importer is right exactly when it reproduces
 * {@link #expected()} — the transposes are checked by construction. Shared with the cli tests (common test-jar).
 */
public final class SyntheticHfGpt2 {

    public final GPT2Config config;
    private final float[] expected;

    /** maxT 6, V 10 (Vp 128), L layers, the given C; NH is 1 here (it is not in the shapes). */
    public SyntheticHfGpt2(int layers, int channels) {
        this.config = new GPT2Config(6, 10, GPT2Config.padVocab(10), layers, 1, channels);
        long[] sizes = config.parameterSizes();
        expected = new float[Math.toIntExact(config.numParameters())];
        int at = 0;
        for (int slot = 0; slot < 16; slot++) {
            for (int k = 0; k < sizes[slot]; k++) {
                boolean paddedWteRow = slot == 0 && k >= config.vocabSize() * channels;
                expected[at++] = paddedWteRow ? 0f : slot * 100_000 + k + 1;
            }
        }
    }

    /** The llm.c parameters the import must produce (for any head count). */
    public float[] expected() {
        return expected.clone();
    }

    /** HF tensors by name (with {@code prefix} on every name), in HF's order. */
    public Map<String, TensorData> tensors(String prefix) {
        int c = config.channels(), v = config.vocabSize();
        var out = new LinkedHashMap<String, TensorData>();
        out.put(prefix + "wte.weight", TensorData.of(slice(0, 0, (long) v * c), v, c));
        out.put(
                prefix + "wpe.weight",
                TensorData.of(slice(1, 0, (long) config.maxSeqLen() * c), config.maxSeqLen(), c));
        for (int layer = 0; layer < config.numLayers(); layer++) {
            String h = prefix + "h." + layer + ".";
            out.put(h + "ln_1.weight", layerVector(2, layer, c));
            out.put(h + "ln_1.bias", layerVector(3, layer, c));
            out.put(h + "attn.c_attn.weight", conv1d(4, layer, 3 * c, c));
            out.put(h + "attn.c_attn.bias", layerVector(5, layer, 3 * c));
            out.put(h + "attn.c_proj.weight", conv1d(6, layer, c, c));
            out.put(h + "attn.c_proj.bias", layerVector(7, layer, c));
            out.put(h + "ln_2.weight", layerVector(8, layer, c));
            out.put(h + "ln_2.bias", layerVector(9, layer, c));
            out.put(h + "mlp.c_fc.weight", conv1d(10, layer, 4 * c, c));
            out.put(h + "mlp.c_fc.bias", layerVector(11, layer, 4 * c));
            out.put(h + "mlp.c_proj.weight", conv1d(12, layer, c, 4 * c));
            out.put(h + "mlp.c_proj.bias", layerVector(13, layer, c));
        }
        out.put(prefix + "ln_f.weight", TensorData.of(slice(14, 0, c), c));
        out.put(prefix + "ln_f.bias", TensorData.of(slice(15, 0, c), c));
        return out;
    }

    /** Writes {@link #tensors} plus, if asked, the causal-mask buffers and a tied lm_head, as HF files have. */
    public Path write(Path file, String prefix, boolean withBuffersAndLmHead) {
        var tensors = tensors(prefix);
        if (withBuffersAndLmHead) {
            int t = config.maxSeqLen();
            for (int layer = 0; layer < config.numLayers(); layer++) {
                tensors.put(prefix + "h." + layer + ".attn.bias", TensorData.of(new float[t * t], 1, 1, t, t));
                tensors.put(prefix + "h." + layer + ".attn.masked_bias", TensorData.of(new float[] {-1e4f}));
            }
            tensors.put("lm_head.weight", tensors.get(prefix + "wte.weight"));
        }
        Safetensors.write(file, tensors, Map.of("format", "pt"));
        return file;
    }

    private float[] slice(int slot, long from, long count) {
        int start = Math.toIntExact(config.parameterOffset(slot) + from);
        return java.util.Arrays.copyOfRange(expected, start, start + Math.toIntExact(count));
    }

    private TensorData layerVector(int slot, int layer, int n) {
        return TensorData.of(slice(slot, (long) layer * n, n), n);
    }

    /** llm.c's (out, in) block of this layer, stored the Conv1D way: (in, out). */
    private TensorData conv1d(int slot, int layer, int outFeatures, int inFeatures) {
        float[] linear = slice(slot, (long) layer * outFeatures * inFeatures, (long) outFeatures * inFeatures);
        float[] conv = new float[linear.length];
        for (int o = 0; o < outFeatures; o++)
            for (int i = 0; i < inFeatures; i++) conv[i * outFeatures + o] = linear[o * inFeatures + i];
        return TensorData.of(conv, inFeatures, outFeatures);
    }
}
