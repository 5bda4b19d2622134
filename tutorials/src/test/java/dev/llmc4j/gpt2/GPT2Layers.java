package dev.llmc4j.gpt2;

import java.lang.foreign.MemorySegment;

/**
 * The tutorials' window into gpt2-cpu: GPT2's layer functions are package-private (they are the model's insides,
 * not an API), so this test-only class in the same package hands them to the lesson tests unchanged.
 */
public final class GPT2Layers {
    private GPT2Layers() {}

    public static final float LAYERNORM_EPS = GPT2.LAYERNORM_EPS;

    public static void encoderForward(MemorySegment out, int[] tokens, MemorySegment wte, MemorySegment wpe, int B, int T, int C) {
        GPT2.encoderForward(out, tokens, wte, wpe, B, T, C);
    }

    public static void encoderBackward(MemorySegment dwte, MemorySegment dwpe, MemorySegment dout, int[] tokens, int B, int T, int C) {
        GPT2.encoderBackward(dwte, dwpe, dout, tokens, B, T, C);
    }

    public static void layernormForward(MemorySegment out, MemorySegment mean, MemorySegment rstd, MemorySegment inp,
                                        MemorySegment weight, MemorySegment bias, int B, int T, int C) {
        GPT2.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
    }

    public static void layernormBackward(MemorySegment dinp, MemorySegment dweight, MemorySegment dbias, MemorySegment dout,
                                         MemorySegment inp, MemorySegment weight, MemorySegment mean, MemorySegment rstd,
                                         int B, int T, int C) {
        GPT2.layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, T, C);
    }

    public static void geluForward(MemorySegment out, MemorySegment inp, long N) {
        GPT2.geluForward(out, inp, N);
    }

    public static void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long N) {
        GPT2.geluBackward(dinp, inp, dout, N);
    }

    /** Number of floats GPT2 keeps for the activations of one forward at (B, T), all 23 tensors. */
    public static long activationCount(dev.llmc4j.model.GPT2Config config, int B, int T) {
        return GPT2.Activations.count(config, B, T);
    }

    /** The same at a recompute level (llm.c's -r): 1 keeps one layer of fchGelu, 2 also of ln1 and ln2. */
    public static long activationCount(dev.llmc4j.model.GPT2Config config, int B, int T, int recompute) {
        return GPT2.Activations.count(config, B, T, recompute);
    }

    /** The sizes of GPT2's 23 activation tensors at (B, T), in llm.c's order. */
    public static long[] activationSizes(dev.llmc4j.model.GPT2Config config, int B, int T) {
        return GPT2.Activations.sizes(config, B, T);
    }
}
