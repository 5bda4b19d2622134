package dev.llmc4j.llama3;

import dev.llmc4j.util.LlmcException;
import java.util.Locale;

/**
 * The shape of a Llama 3 model, as the header of a llama3-branch checkpoint stores it (spec 1.5 b).
 *
 * @param maxSeqLen        longest sequence (RoPE table length), 8192 for the released models
 * @param vocabSize        V, 128256 for the released models (never padded)
 * @param numLayers        L
 * @param numHeads         NH, query heads
 * @param numKvHeads       NKV, key/value heads; each serves NH/NKV query heads (grouped-query attention)
 * @param channels         C, the residual stream width
 * @param ffnDimMultiplier scales the SwiGLU hidden size (see {@link #ffnHidden()})
 * @param multipleOf       the SwiGLU hidden size is rounded up to a multiple of this
 * @param normEps          RMSNorm epsilon
 * @param ropeTheta        RoPE base
 * @param useScaledRope    apply Llama 3.1's long-context frequency scaling
 * @param major            3
 * @param minor            1 for 3.1, 2 for 3.2
 */
public record Llama3Config(
        int maxSeqLen,
        int vocabSize,
        int numLayers,
        int numHeads,
        int numKvHeads,
        int channels,
        float ffnDimMultiplier,
        int multipleOf,
        float normEps,
        float ropeTheta,
        boolean useScaledRope,
        int major,
        int minor) {

    /** Names of the 16 tensor slots, in file order (GPT-2's slots, re-purposed as in llm.c's llama3 branch). */
    public static final String[] PARAMETER_NAMES = {
        "wte", "lm_head", "ln1w", "ln1b", "qkvw", "qkvb", "attprojw", "attprojb",
        "ln2w", "ln2b", "fcw", "fcb", "fcprojw", "fcprojb", "lnfw", "lnfb"
    };

    public static final int NUM_PARAMETER_TENSORS = 16;

    public static final Llama3Config LLAMA_3_1_8B = released(32, 32, 4096, 1.3f, 1);
    public static final Llama3Config LLAMA_3_2_1B = released(16, 32, 2048, 1.4f, 2);
    public static final Llama3Config LLAMA_3_2_3B = released(28, 24, 3072, 1.0f, 2);

    private static Llama3Config released(int layers, int heads, int channels, float ffnMultiplier, int minor) {
        return new Llama3Config(
                8192, 128256, layers, heads, 8, channels, ffnMultiplier, 1024, 1e-5f, 500000f, true, 3, minor);
    }

    public Llama3Config {
        require(
                maxSeqLen > 0 && maxSeqLen <= MAX_SEQ_LEN,
                "maxT: expected 1.." + MAX_SEQ_LEN + " (Llama 3.1's longest context), found " + maxSeqLen);
        require(vocabSize > 0, "vocab size must be positive, found " + vocabSize);
        require(numLayers > 0, "layer count must be positive, found " + numLayers);
        require(numHeads > 0 && numKvHeads > 0, "head counts must be positive, found " + numHeads + "/" + numKvHeads);
        require(
                channels > 0 && channels % numHeads == 0,
                "channels (" + channels + ") must be a positive multiple of heads (" + numHeads + ")");
        require(
                numHeads % numKvHeads == 0,
                "heads (" + numHeads + ") must be a multiple of kv heads (" + numKvHeads + ")");
        require((channels / numHeads) % 2 == 0, "head size " + channels / numHeads + " must be even for RoPE");
        require(multipleOf > 0, "multiple_of must be positive, found " + multipleOf);
        require(
                ffnDimMultiplier > 0 && ffnDimMultiplier <= 64,
                "ffn_dim_multiplier: expected a number in (0, 64], found " + ffnDimMultiplier);
        require(normEps > 0 && normEps < 1, "norm_eps: expected a number in (0, 1), found " + normEps);
        require(
                ropeTheta > 0 && Float.isFinite(ropeTheta),
                "rope_theta: expected a finite positive number, found " + ropeTheta);
        // the sizes multiply: the SwiGLU width and the parameter count must fit their types before anyone allocates
        double hidden = Math.ceil(ffnDimMultiplier * (8.0 * channels / 3) / multipleOf) * multipleOf;
        require(
                hidden < Integer.MAX_VALUE,
                "ffn hidden size: expected under 2^31 (from C = " + channels + ", ffn_dim_multiplier = "
                        + ffnDimMultiplier + ", multiple_of = " + multipleOf + "), found " + hidden);
        double parameters = 2.0 * vocabSize * channels
                + (double) numLayers
                        * channels
                        * ((numHeads + 2.0 * numKvHeads) * (channels / numHeads) + channels + 3 * hidden + 8);
        require(
                parameters <= MAX_PARAMETERS,
                "parameter count: expected at most %.0e, found %.3g (L=%d C=%d V=%d)"
                        .formatted(MAX_PARAMETERS, parameters, numLayers, channels, vocabSize));
    }

    /** Llama 3.1's longest context: the RoPE tables are (maxT, hd/2) floats. */
    public static final int MAX_SEQ_LEN = 131072;
    /** More parameters than any machine holds, and far from overflowing a long's byte counts. */
    public static final double MAX_PARAMETERS = 1e15;

    private static void require(boolean ok, String message) {
        if (!ok) throw new LlmcException("invalid Llama 3 config: " + message);
    }

    /** "3.1-8B", "3.2-1B", "3.2-3B" (case-insensitive, "llama" prefix allowed). */
    public static Llama3Config fromName(String name) {
        String key = name.toLowerCase(Locale.ROOT)
                .replace("llama", "")
                .replace("_", "-")
                .replaceAll("^-+", "");
        return switch (key) {
            case "3.1-8b" -> LLAMA_3_1_8B;
            case "3.2-1b" -> LLAMA_3_2_1B;
            case "3.2-3b" -> LLAMA_3_2_3B;
            default ->
                throw new LlmcException("unknown Llama 3 model '" + name + "': expected 3.1-8B, 3.2-1B or 3.2-3B");
        };
    }

    /** hd = C / NH. */
    public int headSize() {
        return channels / numHeads;
    }

    /** Query heads per key/value head. */
    public int kvGroupSize() {
        return numHeads / numKvHeads;
    }

    /** NKV * hd: the width of K and of V. */
    public int kvChannels() {
        return numKvHeads * headSize();
    }

    /** Rows of the fused q/k/v matrix: (NH + 2 NKV) * hd. */
    public int qkvRows() {
        return (numHeads + 2 * numKvHeads) * headSize();
    }

    /**
     * SwiGLU hidden size H, Meta's rule: h = 4C; h = int(2h/3); h = int(ffn_dim_multiplier * h); round h up to a
     * multiple of multiple_of. 8B: 16384 -> 10922 -> 14198 -> 14336; 1B and 3B: 8192.
     */
    public int ffnHidden() {
        long h = 4L * channels;
        h = (long) (2.0 * h / 3.0);
        h = (long) ((double) ffnDimMultiplier * h);
        return Math.toIntExact(multipleOf * ((h + multipleOf - 1) / multipleOf));
    }

    /** Element counts of the 16 slots (bias slots are there, full of zeros, as in the file). */
    public long[] parameterSizes() {
        long L = numLayers, C = channels, V = vocabSize, H = ffnHidden(), qkv = qkvRows();
        return new long[] {
            V * C,
            V * C, // wte, lm_head
            L * C,
            L * C, // ln1w, ln1b
            L * qkv * C,
            L * qkv, // qkvw, qkvb
            L * C * C,
            L * C, // attprojw, attprojb
            L * C,
            L * C, // ln2w, ln2b
            L * 2 * H * C,
            L * 2 * H, // fcw (c_fc then c_fc2 per layer), fcb
            L * C * H,
            L * C, // fcprojw, fcprojb
            C,
            C
        }; // lnfw, lnfb
    }

    /** Sum of {@link #parameterSizes()}: the float count of a checkpoint or a gradient block. */
    public long numParameters() {
        long total = 0;
        for (long size : parameterSizes()) total += size;
        return total;
    }

    /** Offsets (in elements) of the 16 slots inside the concatenated parameter block. */
    public long[] parameterOffsets() {
        long[] sizes = parameterSizes();
        long[] offsets = new long[sizes.length];
        for (int i = 1; i < sizes.length; i++) offsets[i] = offsets[i - 1] + sizes[i - 1];
        return offsets;
    }

    /** True for the bias slots, which Llama does not have (always zero in the file, never trained). */
    public static boolean isBiasSlot(int slot) {
        return slot == 3 || slot == 5 || slot == 7 || slot == 9 || slot == 11 || slot == 13 || slot == 15;
    }

    /** Parameters a model really has (the bias slots excluded). */
    public long numTrainableParameters() {
        long[] sizes = parameterSizes();
        long total = 0;
        for (int i = 0; i < sizes.length; i++) if (!isBiasSlot(i)) total += sizes[i];
        return total;
    }

    /** One line for logs. */
    public String describe() {
        return "Llama %d.%d: L=%d NH=%d NKV=%d C=%d H=%d V=%d maxT=%d params=%,d"
                .formatted(
                        major,
                        minor,
                        numLayers,
                        numHeads,
                        numKvHeads,
                        channels,
                        ffnHidden(),
                        vocabSize,
                        maxSeqLen,
                        numTrainableParameters());
    }
}
