package dev.llmc4j.model;

import java.util.ArrayList;
import java.util.List;

/**
 * One layer of one parameter tensor inside the flat parameter vector: {@code count} floats from {@code offset}.
 * ZeRO-1 cuts each slice into one piece per process (see {@code dev.llmc4j.model.OptimizerShard}), and a GPU
 * reduces a layer's slices as soon as that layer's backward is done.
 */
public record ParameterSlice(long offset, long count) {

    /**
     * The slices of llm.c's 16-tensor layout (GPT-2, and Llama 3 in llm.c's llama3 branch): tensors 0 and 1 (wte and
     * wpe, or lm_head) and 14, 15 (lnfw, lnfb) whole, tensors 2..13 (ln1w .. fcprojb) cut into their L layers; in
     * parameter order, 12·L + 4 slices.
     */
    /**
     * Whether tensor {@code tensor} of llm.c's 16-tensor layout is 2-D (wte, wpe or lm_head, qkvw, attprojw, fcw,
     * fcprojw): llm.c's trainer applies weight decay to these only, never to biases or norm weights.
     */
    public static boolean isMatrix(int tensor) {
        return switch (tensor) {
            case 0, 1, 4, 6, 10, 12 -> true;
            default -> false;
        };
    }

    public static List<ParameterSlice> perLayer(long[] tensorSizes, int numLayers) {
        var slices = new ArrayList<ParameterSlice>(12 * numLayers + 4);
        long offset = 0;
        for (int tensor = 0; tensor < tensorSizes.length; tensor++) {
            boolean layered = tensor >= 2 && tensor <= 13;
            int count = layered ? numLayers : 1;
            long size = tensorSizes[tensor] / count;
            for (int l = 0; l < count; l++) slices.add(new ParameterSlice(offset + l * size, size));
            offset += tensorSizes[tensor];
        }
        return slices;
    }
}
