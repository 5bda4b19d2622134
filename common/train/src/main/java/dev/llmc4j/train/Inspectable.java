package dev.llmc4j.train;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;

/**
 * What a model shows of its inside to a training monitor ({@code ./llmc train --ui}, {@code ./llmc report}): its
 * parameter tensors by name and layer, a few activations of the last forward, and the attention probabilities of a
 * sequence. Optional (a model that has it is a TrainableModel that also shows its inside): the {@link Trainer} never
 * needs it. The CPU models (GPT-2, Llama 3) implement it over the host
 * memory of {@link HostGradients#parameters()} and {@link HostGradients#gradients()}.
 */
public interface Inspectable extends TrainableModel, HostGradients {

    /** One parameter tensor of one layer (layer -1: a tensor outside the layers), floats [offset, offset + count). */
    record TensorSlice(String name, int layer, long offset, long count) {}

    /** One activation tensor of one layer of the last forward: all its B*T positions. */
    record ActivationSlice(String name, int layer, MemorySegment values) {}

    int numLayers();

    int numHeads();

    /** The parameter tensors, in the order of the parameter buffer; slices of {@link HostGradients#parameters()}. */
    List<TensorSlice> parameterTensors();

    /** The activations worth watching of the last forward (per layer: attention out, MLP hidden and out, residual). */
    List<ActivationSlice> activations();

    /** The tokens of a forward, (B, T) row-major, with its B and T. */
    record Batch(int[] tokens, int batchSize, int seqLen) {}

    /** The tokens of the last forward; null before the first. */
    Batch lastBatch();

    /** The attention probabilities (L, B, NH, T, T) of the last forward (B and T: {@link #lastBatch()}). */
    MemorySegment attentionProbabilities();

    /**
     * The attention probabilities of one forward over {@code tokens} (batch 1): (L, NH, T*T), row-major with the
     * query position as row and the key position as column. This replaces the activations of the last forward, so
     * call it between training steps.
     */
    default float[][][] attention(int[] tokens) {
        forward(tokens, null, 1, tokens.length);
        return firstSequenceAttention(tokens.length);
    }

    /**
     * The attention probabilities (L, NH, n*n) of the last forward's first sequence (batch row 0) over its first n
     * positions. Attention is causal, a query at position q sees the keys 0..q only, so these are the maps of a
     * forward over just those n tokens: the --ui monitor takes them from the val loss's own forward, at no cost.
     */
    default float[][][] firstSequenceAttention(int n) {
        var batch = lastBatch();
        if (batch == null) throw new IllegalStateException("no forward yet");
        int B = batch.batchSize(), T = batch.seqLen(), numLayers = numLayers(), numHeads = numHeads();
        if (n < 1 || n > T) throw new IllegalArgumentException("expected 1.." + T + " positions, found " + n);
        MemorySegment att = attentionProbabilities();
        var maps = new float[numLayers][numHeads][n * n];
        for (int l = 0; l < numLayers; l++) {
            for (int h = 0; h < numHeads; h++) {
                long map = ((long) l * B * numHeads + h) * T * T; // (l, b = 0, h, 0, 0)
                for (int query = 0; query < n; query++)
                    MemorySegment.copy(
                            att,
                            ValueLayout.JAVA_FLOAT,
                            (map + (long) query * T) * Float.BYTES,
                            maps[l][h],
                            query * n,
                            n);
            }
        }
        return maps;
    }

    /**
     * The tensors of llm.c's 16 parameter slots of {@code sizes} (GPT-2's and Llama 3's checkpoint order): slots 2 to
     * 13 are stacked layer-major and cut per layer; a slot whose name is null (Llama 3's unused biases) is left out.
     */
    static List<TensorSlice> llmcSlots(String[] names, long[] sizes, int numLayers) {
        var slices = new ArrayList<TensorSlice>();
        long offset = 0;
        for (int slot = 0; slot < sizes.length; slot++) {
            boolean perLayer = slot >= 2 && slot <= 13;
            if (names[slot] != null) {
                if (perLayer) {
                    long perLayerCount = sizes[slot] / numLayers;
                    for (int l = 0; l < numLayers; l++)
                        slices.add(new TensorSlice(names[slot], l, offset + l * perLayerCount, perLayerCount));
                } else {
                    slices.add(new TensorSlice(names[slot], -1, offset, sizes[slot]));
                }
            }
            offset += sizes[slot];
        }
        return slices;
    }
}
