package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.MemorySegment;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/**
 * One piece of GPT-2 or of its training taken out, to measure what it buys ({@code ./llmc ablate}). The full model
 * is not an ablation: it is {@link GPT2} with its own kernels, untouched.
 *
 * <p>Three kinds of pieces. The model's layers (position embedding, layernorm, residual connections, GELU) come out
 * through {@link AblatedKernels}, which replaces one layer's forward and backward and leaves GPT2.java as it is.
 * The init (the smaller std of the residual projections) comes out in {@link #randomInit}. The optimizer's pieces
 * (warmup, weight decay) are training settings: {@link #warmupSteps} and {@link #weightDecay}.
 */
public enum Ablation {
    NO_POSITION_EMBEDDING("no-wpe", "no position embedding: the encoder adds no wpe row"),
    NO_LAYERNORM("no-layernorm", "no layernorm: ln1, ln2 and lnf are the identity"),
    NO_RESIDUAL("no-residual", "no residual connections: each half of a block outputs its sublayer alone"),
    RELU("relu", "ReLU instead of GELU in the MLP"),
    NO_INIT_SCALING("no-init-scaling", "no 1/sqrt(2L) init scaling: attprojw and fcprojw start at std 0.02"),
    NO_WARMUP("no-warmup", "no learning-rate warmup: the first step runs at the peak rate"),
    NO_WEIGHT_DECAY("no-weight-decay", "no weight decay in AdamW");

    private final String label;
    private final String description;

    Ablation(String label, String description) {
        this.label = label;
        this.description = description;
    }

    /** The name on the command line and in the CSV: "no-wpe", "no-layernorm", ... */
    public String label() {
        return label;
    }

    /** What is taken out, in one line. */
    public String description() {
        return description;
    }

    /** The ablation of a label, or a one-line error that lists them. */
    public static Ablation of(String label) {
        for (var ablation : values()) if (ablation.label.equals(label.toLowerCase(Locale.ROOT))) return ablation;
        throw new LlmcException("ablation: expected one of " + labels() + ", found " + label);
    }

    /** Every label, comma-separated. */
    public static String labels() {
        return Arrays.stream(values()).map(Ablation::label).collect(Collectors.joining(", "));
    }

    /** The kernels of a model without this piece: {@code base} wrapped where a layer changes, else {@code base}. */
    public GPT2Kernels kernels(GPT2Kernels base) {
        return switch (this) {
            case NO_POSITION_EMBEDDING, NO_LAYERNORM, NO_RESIDUAL, RELU -> new AblatedKernels(base, this);
            case NO_INIT_SCALING, NO_WARMUP, NO_WEIGHT_DECAY -> base;
        };
    }

    /**
     * GPT-2 with llm.c's random init and this piece taken out. Without a position embedding wpe is also zero, so
     * that the KV-cache generator, which adds wpe by itself, computes the same model as the forward; it stays zero,
     * as its gradient is never accumulated.
     */
    public GPT2 randomInit(GPT2Config config, GPT2Kernels base) {
        var model = GPT2.randomInit(config, kernels(base));
        switch (this) {
            case NO_POSITION_EMBEDDING -> model.params.wpe().fill((byte) 0);
            case NO_INIT_SCALING -> {
                // GPT2Init draws the residual projections at 0.02/sqrt(2L): scale them back up to 0.02
                float undo = (float) Math.sqrt(2.0 * config.numLayers());
                scale(model.params.attprojw(), undo);
                scale(model.params.fcprojw(), undo);
            }
            default -> {}
        }
        return model;
    }

    /** The warmup steps of a run without this piece, given the full run's. */
    public int warmupSteps(int full) {
        return this == NO_WARMUP ? 0 : full;
    }

    /** The AdamW weight decay of a run without this piece, given the full run's. */
    public float weightDecay(float full) {
        return this == NO_WEIGHT_DECAY ? 0.0f : full;
    }

    private static void scale(MemorySegment tensor, float factor) {
        for (long i = 0; i < tensor.byteSize() / Float.BYTES; i++) set(tensor, i, get(tensor, i) * factor);
    }
}
