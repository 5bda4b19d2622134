package dev.llmc4j.llama3;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.format.Safetensors;
import dev.llmc4j.util.AtomicFiles;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;

/**
 * A Llama 3 checkpoint (llm.c's llama3-branch file) to a Hugging Face folder that transformers' LlamaForCausalLM
 * opens: {@code model.safetensors} (F32) and {@code config.json}. The way back of {@link SafeTensorsImport}:
 * <pre>
 *   wte (V, C)                      -> model.embed_tokens.weight
 *   qkvw[l] rows Q | K | V          -> model.layers.l.self_attn.{q,k,v}_proj.weight, q and k rows put in HF's rotate-half
 *                                      order inside every head (our row 2i + half goes to HF row half*hd/2 + i)
 *   attprojw[l]                     -> self_attn.o_proj.weight
 *   fcw[l] = c_fc | c_fc2 (2H, C)   -> mlp.up_proj.weight | mlp.gate_proj.weight;   fcprojw[l] -> mlp.down_proj.weight
 *   ln1w[l], ln2w[l], lnfw          -> input_layernorm, post_attention_layernorm, model.norm (.weight)
 *   lm_head (V, C)                  -> lm_head.weight, left out (tie_word_embeddings) when it equals wte bit for bit
 * </pre>
 * The zero bias slots have no HF tensor. Both files are written atomically.
 */
public final class SafeTensorsExport {
    private SafeTensorsExport() {}

    /** Writes {@code folder/model.safetensors} and {@code folder/config.json} for the checkpoint; returns its config. */
    public static Llama3Config export(Path checkpoint, Path folder) {
        try (var file = Llama3Checkpoint.read(checkpoint);
                var arena = Arena.ofConfined()) {
            Llama3Config config = file.config();
            MemorySegment parameters = arena.allocate(config.numParameters() * Float.BYTES, 64);
            file.loadParameters(parameters, 0);
            boolean tied = tied(config, parameters);
            Safetensors.write(
                    folder.resolve("model.safetensors"), tensors(config, parameters, tied), Map.of("format", "pt"));
            AtomicFiles.write(
                    folder.resolve("config.json"),
                    configJson(config, tied, file.version() == Llama3Checkpoint.VERSION_BF16)
                            .getBytes(StandardCharsets.UTF_8));
            return config;
        }
    }

    /** True when lm_head is a bitwise copy of wte: a tied model (3.2 1B/3B), whose HF file has no lm_head. */
    static boolean tied(Llama3Config c, MemorySegment parameters) {
        long[] off = c.parameterOffsets();
        long bytes = (long) c.vocabSize() * c.channels() * Float.BYTES;
        return MemorySegment.mismatch(
                        parameters,
                        off[0] * Float.BYTES,
                        off[0] * Float.BYTES + bytes,
                        parameters,
                        off[1] * Float.BYTES,
                        off[1] * Float.BYTES + bytes)
                == -1;
    }

    static Map<String, Safetensors.TensorData> tensors(Llama3Config c, MemorySegment params, boolean tied) {
        long C = c.channels(), V = c.vocabSize(), H = c.ffnHidden(), kvC = c.kvChannels(), qkv = c.qkvRows();
        int hd = c.headSize(), NH = c.numHeads(), NKV = c.numKvHeads();
        long[] off = c.parameterOffsets();
        var out = new LinkedHashMap<String, Safetensors.TensorData>();
        out.put("model.embed_tokens.weight", tensor(params, off[0], V, C));
        for (int l = 0; l < c.numLayers(); l++) {
            String p = "model.layers." + l + ".";
            long qkvw = off[4] + l * qkv * C;
            out.put(p + "self_attn.q_proj.weight", permuted(params, qkvw, NH, hd, C));
            out.put(p + "self_attn.k_proj.weight", permuted(params, qkvw + (long) NH * hd * C, NKV, hd, C));
            out.put(p + "self_attn.v_proj.weight", tensor(params, qkvw + ((long) NH * hd + kvC) * C, kvC, C));
            out.put(p + "self_attn.o_proj.weight", tensor(params, off[6] + l * C * C, C, C));
            out.put(p + "mlp.gate_proj.weight", tensor(params, off[10] + l * 2 * H * C + H * C, H, C)); // c_fc2
            out.put(p + "mlp.up_proj.weight", tensor(params, off[10] + l * 2 * H * C, H, C)); // c_fc
            out.put(p + "mlp.down_proj.weight", tensor(params, off[12] + l * C * H, C, H));
            out.put(p + "input_layernorm.weight", tensor(params, off[2] + l * C, C));
            out.put(p + "post_attention_layernorm.weight", tensor(params, off[8] + l * C, C));
        }
        out.put("model.norm.weight", tensor(params, off[14], C));
        if (!tied) out.put("lm_head.weight", tensor(params, off[1], V, C));
        return out;
    }

    private static Safetensors.TensorData tensor(MemorySegment params, long offset, long... shape) {
        long count = 1;
        for (long d : shape) count *= d;
        return new Safetensors.TensorData(shape, Floats.slice(params, offset, count));
    }

    /** A q or k projection (heads*hd, C) with the rows of each head in HF's rotate-half order: ours 2i + half -> HF half*hd/2 + i. */
    private static Safetensors.TensorData permuted(MemorySegment params, long offset, int heads, int hd, long C) {
        MemorySegment hf = MemorySegment.ofArray(new float[Math.toIntExact(heads * hd * C)]);
        int half = hd / 2;
        long rowBytes = C * Float.BYTES;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < hd; j++) {
                int ours = j < half ? 2 * j : 2 * (j - half) + 1;
                MemorySegment.copy(
                        params,
                        (offset + ((long) h * hd + ours) * C) * Float.BYTES,
                        hf,
                        ((long) h * hd + j) * rowBytes,
                        rowBytes);
            }
        }
        return new Safetensors.TensorData(new long[] {(long) heads * hd, C}, hf);
    }

    /** transformers' LlamaConfig for this shape, with Llama 3.1's RoPE scaling when the model uses it. */
    static String configJson(Llama3Config c, boolean tied, boolean bf16) {
        String ropeScaling = c.useScaledRope()
                ? "{\"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                        + "\"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"}"
                : "null";
        return String.format(
                Locale.ROOT,
                """
                {
                  "architectures": ["LlamaForCausalLM"],
                  "model_type": "llama",
                  "vocab_size": %d,
                  "hidden_size": %d,
                  "intermediate_size": %d,
                  "num_hidden_layers": %d,
                  "num_attention_heads": %d,
                  "num_key_value_heads": %d,
                  "head_dim": %d,
                  "max_position_embeddings": %d,
                  "rms_norm_eps": %s,
                  "rope_theta": %s,
                  "rope_scaling": %s,
                  "hidden_act": "silu",
                  "attention_bias": false,
                  "mlp_bias": false,
                  "initializer_range": 0.02,
                  "bos_token_id": 128000,
                  "eos_token_id": 128001,
                  "tie_word_embeddings": %s,
                  "torch_dtype": "%s"
                }
                """,
                c.vocabSize(),
                c.channels(),
                c.ffnHidden(),
                c.numLayers(),
                c.numHeads(),
                c.numKvHeads(),
                c.headSize(),
                c.maxSeqLen(),
                Float.toString(c.normEps()),
                Float.toString(c.ropeTheta()),
                ropeScaling,
                tied,
                bf16 ? "bfloat16" : "float32");
    }
}
