package dev.llmc4j.llama3;

import java.lang.foreign.MemorySegment;

/**
 * The tutorials' window into llama3: Llama3's layer functions are package-private (the model's insides, not an
 * API), so this test-only class in the same package hands them to the lesson tests unchanged.
 */
public final class Llama3Layers {
    private Llama3Layers() {}

    public static void rmsnormForward(MemorySegment out, MemorySegment rstd, MemorySegment inp, MemorySegment weight,
                                      long rows, int C, float eps) {
        Llama3.rmsnormForward(out, rstd, inp, weight, rows, C, eps);
    }

    public static void rmsnormBackward(MemorySegment dinp, MemorySegment dweight, MemorySegment dout, MemorySegment inp,
                                       MemorySegment weight, MemorySegment rstd, long rows, int C) {
        Llama3.rmsnormBackward(dinp, dweight, dout, inp, weight, rstd, rows, C);
    }

    public static void swigluBackward(MemorySegment dfch, MemorySegment fch, MemorySegment dout, long rows, int H) {
        Llama3.swigluBackward(dfch, fch, dout, rows, H);
    }

    public static double[] ropeFrequencies(Llama3Config config) {
        return Llama3.ropeFrequencies(config);
    }

    public static float[][] ropeTables(Llama3Config config, int maxT) {
        return Llama3.ropeTables(config, maxT);
    }

    public static void rope(MemorySegment qkv, float[] cos, float[] sin, long rows, int T, int startPosition,
                            int rotatedHeads, int hd, int qkvRows, boolean inverse) {
        Llama3.rope(qkv, cos, sin, rows, T, startPosition, rotatedHeads, hd, qkvRows, inverse);
    }

    public static void swigluForward(MemorySegment out, MemorySegment fch, long rows, int H) {
        Llama3.swigluForward(out, fch, rows, H);
    }
}
