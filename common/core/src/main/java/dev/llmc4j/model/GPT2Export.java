package dev.llmc4j.model;

import dev.llmc4j.format.Safetensors;
import dev.llmc4j.util.AtomicFiles;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * An llm.c GPT-2 checkpoint to a Hugging Face folder that transformers' GPT2LMHeadModel opens (what llm.c's
 * dev/eval/export_hf.py makes): {@code model.safetensors} and {@code config.json}. The way back of {@link GPT2Import}:
 * <pre>
 *   wte (Vp, C)            -> transformer.wte.weight (V, C)        the padding rows V..Vp-1 cut off
 *   qkvw, attprojw, fcw, fcprojw (L, out, in) -> transformer.h.i.*.weight (in, out)   Conv1D: transposed
 *   every other tensor     -> its HF name, one per layer
 *   no lm_head.weight: GPT-2 ties it to wte (save_pretrained leaves a tied weight out too)
 * </pre>
 * Tensors are written as F32 (a bf16 checkpoint's values are exact in fp32, so importing the export with --bf16 gives
 * the same file back). Both files are written atomically.
 */
public final class GPT2Export {
    private GPT2Export() {}

    public static final String PREFIX = "transformer.";

    /** Writes {@code folder/model.safetensors} and {@code folder/config.json} for the checkpoint; returns its config. */
    public static GPT2Config export(Path checkpoint, Path folder) {
        try (var arena = Arena.ofConfined()) {
            var file = GPT2Checkpoint.open(checkpoint, arena);
            GPT2Config config = file.config();
            MemorySegment parameters = arena.allocate(config.numParameters() * Float.BYTES, 64);
            file.readParametersInto(parameters);
            Safetensors.write(folder.resolve("model.safetensors"), tensors(config, parameters), Map.of("format", "pt"));
            AtomicFiles.write(
                    folder.resolve("config.json"),
                    configJson(config, file.version()).getBytes(StandardCharsets.UTF_8));
            return config;
        }
    }

    /** The HF tensors of parameters (llm.c layout, fp32), in HF's order: wte, wpe, the layers, ln_f. */
    static Map<String, Safetensors.TensorData> tensors(GPT2Config config, MemorySegment parameters) {
        int V = config.vocabSize(), C = config.channels(), L = config.numLayers();
        var out = new LinkedHashMap<String, Safetensors.TensorData>();
        out.put(
                PREFIX + "wte.weight",
                new Safetensors.TensorData(new long[] {V, C}, slot(parameters, config, 0, (long) V * C)));
        out.put(
                PREFIX + "wpe.weight",
                new Safetensors.TensorData(
                        new long[] {config.maxSeqLen(), C}, slot(parameters, config, 1, config.parameterSizes()[1])));
        long[] sizes = config.parameterSizes();
        for (int layer = 0; layer < L; layer++) {
            for (var t : GPT2Import.LAYER_TENSORS) {
                long perLayer = sizes[t.slot()] / L;
                MemorySegment values = slot(parameters, config, t.slot(), sizes[t.slot()])
                        .asSlice(layer * perLayer * Float.BYTES, perLayer * Float.BYTES);
                long[] shape;
                if (t.conv1d()) {
                    int outFeatures = t.shapeInC().length == 2 ? t.shapeInC()[1] * C : C;
                    int inFeatures = (int) (perLayer / outFeatures);
                    // llm.c (out, in) -> Conv1D (in, out)
                    MemorySegment transposed = MemorySegment.ofArray(new float[(int) perLayer]);
                    GPT2Import.transposeInto(
                            values.toArray(ValueLayout.JAVA_FLOAT), outFeatures, inFeatures, transposed);
                    values = transposed;
                    shape = new long[] {inFeatures, outFeatures};
                } else {
                    shape = new long[] {perLayer};
                }
                out.put(PREFIX + "h." + layer + "." + t.suffix(), new Safetensors.TensorData(shape, values));
            }
        }
        out.put(PREFIX + "ln_f.weight", new Safetensors.TensorData(new long[] {C}, slot(parameters, config, 14, C)));
        out.put(PREFIX + "ln_f.bias", new Safetensors.TensorData(new long[] {C}, slot(parameters, config, 15, C)));
        return out;
    }

    private static MemorySegment slot(MemorySegment parameters, GPT2Config config, int index, long count) {
        return parameters.asSlice(config.parameterOffset(index) * Float.BYTES, count * Float.BYTES);
    }

    /** transformers' GPT2Config for this shape: GPT-2's tanh GELU ("gelu_new"), LayerNorm eps 1e-5, tied lm_head. */
    static String configJson(GPT2Config config, int version) {
        return String.format(
                Locale.ROOT,
                """
                {
                  "architectures": ["GPT2LMHeadModel"],
                  "model_type": "gpt2",
                  "vocab_size": %d,
                  "n_positions": %d,
                  "n_ctx": %d,
                  "n_embd": %d,
                  "n_layer": %d,
                  "n_head": %d,
                  "n_inner": null,
                  "activation_function": "gelu_new",
                  "layer_norm_epsilon": 1e-05,
                  "resid_pdrop": 0.0,
                  "embd_pdrop": 0.0,
                  "attn_pdrop": 0.0,
                  "initializer_range": 0.02,
                  "bos_token_id": 50256,
                  "eos_token_id": 50256,
                  "tie_word_embeddings": true,
                  "torch_dtype": "%s"
                }
                """,
                config.vocabSize(),
                config.maxSeqLen(),
                config.maxSeqLen(),
                config.channels(),
                config.numLayers(),
                config.numHeads(),
                version == GPT2Checkpoint.VERSION_BF16 ? "bfloat16" : "float32");
    }
}
