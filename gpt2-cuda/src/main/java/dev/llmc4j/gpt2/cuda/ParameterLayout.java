package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.ParameterSlice;

/**
 * Where the 16 parameter tensors live inside one flat buffer, in llm.c's checkpoint order (wte, wpe, ln1w, ...,
 * lnfb), back to back with no padding, exactly like the .bin file. The same element offsets serve the floatX
 * parameters, the floatX gradients, the fp32 master weights and the fp32 AdamW moments m and v.
 *
 * <p>Per-layer tensors hold all L layers back to back: layer l of qkvw (L, 3C, C) starts at
 * {@code offset(QKVW) + l * 3C*C}, see {@link #layer}.
 */
public record ParameterLayout(GPT2Config config, long[] sizes, long[] offsets, long numParameters) {

    // indices into the 16 tensors (GPT2Config.PARAMETER_NAMES)
    public static final int WTE = 0,
            WPE = 1,
            LN1W = 2,
            LN1B = 3,
            QKVW = 4,
            QKVB = 5,
            ATTPROJW = 6,
            ATTPROJB = 7,
            LN2W = 8,
            LN2B = 9,
            FCW = 10,
            FCB = 11,
            FCPROJW = 12,
            FCPROJB = 13,
            LNFW = 14,
            LNFB = 15;
    public static final int NUM_TENSORS = 16;

    public static ParameterLayout of(GPT2Config config) {
        long[] sizes = config.parameterSizes();
        long[] offsets = new long[sizes.length];
        long total = 0;
        for (int i = 0; i < sizes.length; i++) {
            offsets[i] = total;
            total += sizes[i];
        }
        return new ParameterLayout(config, sizes, offsets, total);
    }

    public long size(int tensor) {
        return sizes[tensor];
    }

    public long offset(int tensor) {
        return offsets[tensor];
    }

    /** True for the tensors that live per layer (indices 2..13). */
    public static boolean isPerLayer(int tensor) {
        return tensor >= LN1W && tensor <= FCPROJB;
    }

    /** Element offset of layer {@code l} of a per-layer tensor. */
    public long layer(int tensor, int l) {
        if (!isPerLayer(tensor))
            throw new IllegalArgumentException(GPT2Config.PARAMETER_NAMES[tensor] + " is not per layer");
        return offsets[tensor] + (long) l * (sizes[tensor] / config.numLayers());
    }

    /** Weight decay applies to the matmul weights and embeddings (2-D tensors), never to biases or LayerNorm. */
    public static boolean decays(int tensor) {
        return ParameterSlice.isMatrix(tensor);
    }

    /** Device bytes for parameters + gradients (floatX), and master weights (if kept) + m + v (fp32). */
    public long deviceBytes(Precision precision, boolean masterWeights) {
        long floatX = numParameters * precision.bytes();
        long fp32 = numParameters * 4L * (keepsMasterWeights(precision, masterWeights) ? 3 : 2);
        return 2 * floatX + fp32;
    }

    /** fp32 models are their own master copy. */
    public static boolean keepsMasterWeights(Precision precision, boolean masterWeights) {
        return masterWeights && precision != Precision.FP32;
    }
}
