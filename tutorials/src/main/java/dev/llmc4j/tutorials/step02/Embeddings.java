package dev.llmc4j.tutorials.step02;

/**
 * Step 2: the encoder, GPT-2's first layer. A token id picks a row of the token embedding table wte (V, C); its
 * position t picks a row of the position embedding table wpe (maxT, C); the two rows are added.
 *
 * <p>Arrays are flat and row-major, as everywhere in llm.c: element (b, t, c) of a (B, T, C) tensor is at
 * {@code (b*T + t)*C + c}.
 */
public final class Embeddings {
    private Embeddings() {}

    // tag::forward[]
    /** out (B,T,C) = wte[tokens[b,t]] + wpe[t]. */
    public static double[] forward(int[] tokens, double[] wte, double[] wpe, int B, int T, int C) {
        var out = new double[B * T * C];
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int token = tokens[b * T + t];
                for (int c = 0; c < C; c++) {
                    out[(b * T + t) * C + c] = wte[token * C + c] + wpe[t * C + c];
                }
            }
        }
        return out;
    }
    // end::forward[]

    // tag::backward[]
    /**
     * The forward is a copy, so the gradient of each output row flows back unchanged into the two rows it came
     * from. A token that appears twice receives both gradients: accumulate (+=), never assign.
     */
    public static void backward(double[] dwte, double[] dwpe, double[] dout, int[] tokens, int B, int T, int C) {
        for (int b = 0; b < B; b++) {
            for (int t = 0; t < T; t++) {
                int token = tokens[b * T + t];
                for (int c = 0; c < C; c++) {
                    double d = dout[(b * T + t) * C + c];
                    dwte[token * C + c] += d;
                    dwpe[t * C + c] += d;
                }
            }
        }
    }
    // end::backward[]
}
