package dev.llmc4j.llama3;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.Safetensors;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * Reads Hugging Face Llama 3 weights ({@code model.safetensors}, through the general {@link Safetensors} reader,
 * F32, BF16 or F16) into our 16-slot fp32 layout.
 *
 * <p>Names: {@code model.embed_tokens.weight}, {@code model.layers.{i}.self_attn.{q,k,v,o}_proj.weight},
 * {@code model.layers.{i}.mlp.{gate,up,down}_proj.weight}, {@code model.layers.{i}.input_layernorm.weight},
 * {@code model.layers.{i}.post_attention_layernorm.weight}, {@code model.norm.weight}, {@code lm_head.weight}
 * (absent in the tied 3.2 models: then lm_head is a copy of the embedding, as llm.c's llama3 branch stores it).
 *
 * <p>HF stores the rows of every q/k head permuted for its "rotate half" RoPE (pairs (i, i + hd/2)); our RoPE
 * rotates interleaved pairs (2i, 2i+1), so the import moves HF row {@code half*hd/2 + i} back to row
 * {@code 2i + half} within each head.
 */
public final class SafeTensorsImport {
    private SafeTensorsImport() {}

    /** Reads the file into a new model of the given shape (the file carries no config). */
    public static Llama3 load(Path file, Llama3Config config) {
        try (var arena = Arena.ofConfined()) {
            var tensors = Safetensors.open(file, arena);
            var model = new Llama3(config);
            try {
                fill(tensors, config, model.parameters());
            } catch (RuntimeException e) {
                model.close();
                throw e;
            }
            return model;
        }
    }

    /** Checks that tensor {@code name} exists with exactly this shape. */
    private static void check(Safetensors tensors, String name, long... shape) {
        long[] found = tensors.shape(name); // a missing tensor is a FileFormatException naming it
        if (!Arrays.equals(found, shape))
            throw new FileFormatException(
                    tensors.file(), "shape of " + name, Arrays.toString(shape), Arrays.toString(found));
    }

    /** Reads tensor {@code name} of the given shape into params at float offset {@code offset}, unchanged. */
    private static void copy(Safetensors tensors, String name, MemorySegment params, long offset, long... shape) {
        check(tensors, name, shape);
        tensors.readFloats(name, Floats.slice(params, offset, tensors.numElements(name)));
    }

    /**
     * Reads a q or k projection (heads*hd, C) into params at {@code offset}, undoing HF's rotate-half row order
     * inside every head: HF row j of a head holds our row 2j for j < hd/2, and our row 2(j - hd/2) + 1 after.
     */
    private static void copyUnpermuted(
            Safetensors tensors,
            String name,
            int heads,
            int hd,
            long C,
            MemorySegment params,
            long offset,
            MemorySegment scratch) {
        check(tensors, name, (long) heads * hd, C);
        MemorySegment hf = scratch.asSlice(0, (long) heads * hd * C * Float.BYTES);
        tensors.readFloats(name, hf);
        int half = hd / 2;
        long rowBytes = C * Float.BYTES;
        for (int h = 0; h < heads; h++) {
            for (int j = 0; j < hd; j++) {
                int ours = j < half ? 2 * j : 2 * (j - half) + 1;
                long from = ((long) h * hd + j) * C, to = offset + ((long) h * hd + ours) * C;
                MemorySegment.copy(hf, from * Float.BYTES, params, to * Float.BYTES, rowBytes);
            }
        }
    }

    static void fill(Safetensors tensors, Llama3Config c, MemorySegment params) {
        long C = c.channels(), V = c.vocabSize(), H = c.ffnHidden(), kvC = c.kvChannels();
        int hd = c.headSize(), NH = c.numHeads(), NKV = c.numKvHeads();
        long qkv = c.qkvRows();
        long[] off = c.parameterOffsets();
        copy(tensors, "model.embed_tokens.weight", params, off[0], V, C);
        if (tensors.contains("lm_head.weight")) {
            copy(tensors, "lm_head.weight", params, off[1], V, C);
        } else { // tied (3.2 1B/3B): lm_head is a copy of the embedding
            MemorySegment.copy(params, off[0] * Float.BYTES, params, off[1] * Float.BYTES, V * C * Float.BYTES);
        }
        try (var arena = Arena.ofConfined()) {
            // q/k rows wait here before their reordering, one tensor at a time (q is the larger: NH >= NKV)
            MemorySegment scratch = arena.allocate((long) NH * hd * C * Float.BYTES, 64);
            for (int l = 0; l < c.numLayers(); l++) {
                String p = "model.layers." + l + ".";
                copy(tensors, p + "input_layernorm.weight", params, off[2] + l * C, C);
                long qkvw = off[4] + l * qkv * C; // rows [Q (NH*hd) | K (NKV*hd) | V (NKV*hd)]
                copyUnpermuted(tensors, p + "self_attn.q_proj.weight", NH, hd, C, params, qkvw, scratch);
                copyUnpermuted(
                        tensors, p + "self_attn.k_proj.weight", NKV, hd, C, params, qkvw + (long) NH * hd * C, scratch);
                copy(tensors, p + "self_attn.v_proj.weight", params, qkvw + ((long) NH * hd + kvC) * C, kvC, C);
                copy(tensors, p + "self_attn.o_proj.weight", params, off[6] + l * C * C, C, C);
                copy(tensors, p + "post_attention_layernorm.weight", params, off[8] + l * C, C);
                copy(tensors, p + "mlp.up_proj.weight", params, off[10] + l * 2 * H * C, H, C); // c_fc
                copy(tensors, p + "mlp.gate_proj.weight", params, off[10] + l * 2 * H * C + H * C, H, C); // c_fc2
                copy(tensors, p + "mlp.down_proj.weight", params, off[12] + l * C * H, C, H);
            }
        }
        copy(tensors, "model.norm.weight", params, off[14], C);
    }
}
