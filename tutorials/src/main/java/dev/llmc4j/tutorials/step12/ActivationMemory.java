package dev.llmc4j.tutorials.step12;

/**
 * Step 12: how many activation floats GPT-2 keeps for its backward, by llm.c's recompute level.
 *
 * <pre>
 *   per layer (L of them), N = B*T positions:
 *     ln1, atty, attproj, residual2, ln2, fcproj, residual3    7 N C
 *     qkv                                                      3 N C
 *     fch, fchGelu                                             2 x 4 N C
 *     preatt, att                                              2 B NH T T   (T² per head: the long-context cost)
 *     ln1Mean, ln1Rstd, ln2Mean, ln2Rstd                       4 N
 *   once: encoded, lnf (N C each), lnfMean, lnfRstd, losses (N each), logits and probs (N Vp each)
 *
 *   -r 1: fchGelu is recomputed from fch in the backward: one layer's buffer instead of L
 *   -r 2: ln1 and ln2 too (from the layer input and the kept mean and rstd): one layer's buffer each
 * </pre>
 * GPT2 (gpt2-cpu) has the same levels ({@code GPT2.recompute(level)}, {@code ./llmc train -r}); the test checks
 * this count against what it allocates at each.
 */
public final class ActivationMemory {
    private ActivationMemory() {}

    // tag::count[]
    public static long activationFloats(int L, int C, int NH, int Vp, int B, int T, int recompute) {
        long N = (long) B * T;
        long fchGeluLayers = recompute >= 1 ? 1 : L; // -r 1: a single-layer fch_gelu buffer
        long lnLayers = recompute >= 2 ? 1 : L; // -r 2: single-layer ln1 and ln2 buffers
        long perLayer = 5 * N * C // atty, attproj, residual2, fcproj, residual3
                + 3 * N * C // qkv
                + 4 * N * C // fch
                + 2L * B * NH * T * T // preatt, att
                + 4 * N; // ln1 and ln2 mean and rstd
        return L * perLayer
                + lnLayers * 2 * N * C // ln1, ln2
                + fchGeluLayers * 4 * N * C // fchGelu
                + 2 * N * C
                + 3 * N
                + 2 * N * Vp; // encoded, lnf; lnf mean/rstd, losses; logits, probs
    }
    // end::count[]
}
