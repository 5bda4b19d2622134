package dev.llmc4j.model;

import dev.llmc4j.util.LlmcException;
import java.util.List;

/**
 * The shape of a GPT-2: llm.c's checkpoint header slots 2..7.
 *
 * @param maxSeqLen       maxT, the context length (1024 for GPT-2)
 * @param vocabSize       V, real tokens (50257)
 * @param paddedVocabSize Vp, V rounded up to a multiple of 128 (50304) so the lm-head matmul tiles evenly
 * @param numLayers       L
 * @param numHeads        NH
 * @param channels        C, so the head size is C / NH
 */
public record GPT2Config(int maxSeqLen, int vocabSize, int paddedVocabSize, int numLayers, int numHeads, int channels) {

    public static final int GPT2_VOCAB = 50257;
    public static final int GPT2_MAX_SEQ_LEN = 1024;

    public GPT2Config {
        if (maxSeqLen <= 0 || vocabSize <= 0 || numLayers <= 0 || numHeads <= 0 || channels <= 0)
            throw new LlmcException("GPT-2 config: every size must be positive, found "
                    + describe(maxSeqLen, vocabSize, paddedVocabSize, numLayers, numHeads, channels));
        if (paddedVocabSize < vocabSize)
            throw new LlmcException(
                    "GPT-2 config: padded vocab " + paddedVocabSize + " is smaller than vocab " + vocabSize);
        if (channels % numHeads != 0)
            throw new LlmcException(
                    "GPT-2 config: channels (" + channels + ") must be a multiple of heads (" + numHeads + ")");
        // the sizes multiply: a count past a long (or past any machine) is refused here, before anyone allocates
        double estimate = ((double) paddedVocabSize + maxSeqLen) * channels
                + (double) numLayers * (12.0 * channels * channels + 13.0 * channels)
                + 2.0 * channels;
        if (estimate > MAX_PARAMETERS)
            throw new LlmcException("GPT-2 config: %.3g parameters (%s), expected at most %.0e; lower L or C"
                    .formatted(
                            estimate,
                            describe(maxSeqLen, vocabSize, paddedVocabSize, numLayers, numHeads, channels),
                            MAX_PARAMETERS));
    }

    /** More parameters than any machine holds (4 PB of fp32), and far from overflowing a long's byte counts. */
    public static final double MAX_PARAMETERS = 1e15;

    /** A GPT-2 with the standard vocabulary and context and the given depth and width. */
    public static GPT2Config of(int numLayers, int numHeads, int channels) {
        return new GPT2Config(GPT2_MAX_SEQ_LEN, GPT2_VOCAB, padVocab(GPT2_VOCAB), numLayers, numHeads, channels);
    }

    /**
     * llm.c's model descriptors: d6, d12 (124M), d24 (350M), d36 (774M), d48 (1558M); "gpt2:dN" is accepted too.
     */
    public static GPT2Config fromDescriptor(String descriptor) {
        String d = descriptor.startsWith("gpt2:") ? descriptor.substring(5) : descriptor;
        return switch (d) {
            case "d6" -> of(6, 6, 384);
            case "d12" -> of(12, 12, 768);
            case "d24" -> of(24, 16, 1024);
            case "d36" -> of(36, 20, 1280);
            case "d48" -> of(48, 25, 1600);
            case "d60" -> of(60, 30, 1920);
            case "d72" -> of(72, 30, 2880);
            case "d84" -> of(84, 36, 3456);
            default ->
                throw new LlmcException("unknown model descriptor '" + descriptor
                        + "': expected one of d6, d12, d24, d36, d48, d60, d72, d84 (or a .bin checkpoint)");
        };
    }

    /** Rounds the vocabulary up to a multiple of 128, as llm.c does. */
    public static int padVocab(int vocabSize) {
        return (vocabSize + 127) / 128 * 128;
    }

    public int headSize() {
        return channels / numHeads;
    }

    /** Sizes of the 16 parameter tensors, in llm.c's checkpoint order. */
    public long[] parameterSizes() {
        long vp = paddedVocabSize, c = channels, l = numLayers;
        return new long[] {
            vp * c, // wte
            maxSeqLen * c, // wpe
            l * c, // ln1w
            l * c, // ln1b
            l * 3 * c * c, // qkvw
            l * 3 * c, // qkvb
            l * c * c, // attprojw
            l * c, // attprojb
            l * c, // ln2w
            l * c, // ln2b
            l * 4 * c * c, // fcw
            l * 4 * c, // fcb
            l * c * 4 * c, // fcprojw
            l * c, // fcprojb
            c, // lnfw
            c, // lnfb
        };
    }

    /** Names of the 16 parameter tensors, as llm.c's test prints them (without the leading 'd'). */
    public static final String[] PARAMETER_NAMES = {
        "wte", "wpe", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
        "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"
    };

    /** Offset, in floats, of parameter tensor {@code index} (0..15) inside the one parameter buffer. */
    public long parameterOffset(int index) {
        long[] sizes = parameterSizes();
        long offset = 0;
        for (int i = 0; i < index; i++) offset += sizes[i];
        return offset;
    }

    /**
     * The parameter slices in order: wte and wpe whole, then each per-layer tensor cut into its L layers, then lnfw
     * and lnfb (12·L + 4 slices). llm.c's ZeRO-1 shards each slice, and its GPU trainer reduces a layer's slices as
     * soon as that layer's backward is done.
     */
    public List<ParameterSlice> parameterSlices() {
        return ParameterSlice.perLayer(parameterSizes(), numLayers);
    }

    public long numParameters() {
        long total = 0;
        for (long size : parameterSizes()) total += size;
        return total;
    }

    private static String describe(int maxT, int v, int vp, int l, int nh, int c) {
        return "maxT=%d V=%d Vp=%d L=%d NH=%d C=%d".formatted(maxT, v, vp, l, nh, c);
    }

    @Override
    public String toString() {
        return describe(maxSeqLen, vocabSize, paddedVocabSize, numLayers, numHeads, channels);
    }
}
