package dev.llmc4j.model;

import dev.llmc4j.random.MersenneTwister;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;

/**
 * GPT-2's random initialisation, bit-identical in fp32 to PyTorch's with {@code torch.Generator().manual_seed(42)}
 * drawing in llm.c's order: everything zero, layernorm weights one, then normals (mean 0) for wte (only the V real
 * rows; the padding rows stay zero, std 0.02), wpe (0.02), and per layer qkvw (0.02), attprojw (0.02/sqrt(2L)),
 * fcw (0.02), fcprojw (0.02/sqrt(2L)); each per-layer slice is one {@code normal_} call. The residual projections
 * get the smaller std so that the residual stream's variance does not grow with depth.
 */
public final class GPT2Init {
    private GPT2Init() {}

    public static final long SEED = 42;

    /** Fills {@code parameters} (config.numParameters() floats, llm.c's tensor order) with the random init. */
    public static void randomInit(GPT2Config config, MemorySegment parameters) {
        long numParameters = config.numParameters();
        if (parameters.byteSize() < numParameters * Float.BYTES)
            throw new IllegalArgumentException("parameter buffer too small for " + config);
        parameters.asSlice(0, numParameters * Float.BYTES).fill((byte) 0);

        int layers = config.numLayers();
        long channels = config.channels();
        for (int tensor : new int[] {2, 8, 14}) { // ln1w, ln2w, lnfw
            long offset = config.parameterOffset(tensor), size = config.parameterSizes()[tensor];
            for (long i = 0; i < size; i++) parameters.setAtIndex(ValueLayout.JAVA_FLOAT, offset + i, 1.0f);
        }

        var rng = new MersenneTwister(SEED);
        float std = 0.02f;
        float residualStd = (float) (0.02 / Math.sqrt(2.0 * layers));
        fillNormal(rng, parameters, config.parameterOffset(0), config.vocabSize() * channels, std); // wte, real rows
        fillNormal(rng, parameters, config.parameterOffset(1), config.maxSeqLen() * channels, std); // wpe
        for (int l = 0; l < layers; l++) {
            fillNormal(
                    rng,
                    parameters,
                    config.parameterOffset(4) + l * 3 * channels * channels,
                    3 * channels * channels,
                    std);
            fillNormal(
                    rng,
                    parameters,
                    config.parameterOffset(6) + l * channels * channels,
                    channels * channels,
                    residualStd);
            fillNormal(
                    rng,
                    parameters,
                    config.parameterOffset(10) + l * 4 * channels * channels,
                    4 * channels * channels,
                    std);
            fillNormal(
                    rng,
                    parameters,
                    config.parameterOffset(12) + l * 4 * channels * channels,
                    4 * channels * channels,
                    residualStd);
        }
    }

    // one torch normal_ call over `count` consecutive floats
    private static void fillNormal(MersenneTwister rng, MemorySegment target, long offset, long count, float std) {
        if (count > Integer.MAX_VALUE - 8)
            throw new IllegalArgumentException("tensor slice too large for one normal_ call: " + count);
        float[] values = new float[(int) count];
        rng.normal(values, 0, values.length, 0f, std);
        MemorySegment.copy(values, 0, target, ValueLayout.JAVA_FLOAT, offset * Float.BYTES, values.length);
    }
}
