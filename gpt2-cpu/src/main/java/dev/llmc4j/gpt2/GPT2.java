package dev.llmc4j.gpt2;

import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.format.GPT2Checkpoint;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.model.GPT2Init;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;

/**
 * GPT-2 in one file: forward, backward and AdamW, after llm.c's train_gpt2.c.
 *
 * <p>Read it top to bottom: the memory helpers, then every layer with its forward and backward side by side, then
 * the model (parameters and activations each in one big off-heap buffer, indexed with longs: GPT-2 124M at B=4,
 * T=1024 needs more than 2^31 floats of activations), its forward and backward passes and the optimizer.
 *
 * <p>Shapes use llm.c's letters: B batch size, T sequence length, C channels, NH heads, hs = C/NH head size,
 * V vocabulary, Vp padded vocabulary, L layers, OC output channels. Every backward ACCUMULATES (+=) into the
 * gradients of both parameters and activations, as in llm.c.
 *
 * <p>The matmuls (about 90% of the work) go through {@link MatmulKernels}: a plain baseline and a Vector API
 * version, tested against each other.
 */
public final class GPT2 implements AutoCloseable {

    // ------------------------------------------------------------------------------------------------------------
    // Memory: float tensors are slices of off-heap segments, indexed by long element offsets.

    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;

    static float get(MemorySegment tensor, long i) {
        return tensor.getAtIndex(FLOAT, i);
    }

    static void set(MemorySegment tensor, long i, float value) {
        tensor.setAtIndex(FLOAT, i, value);
    }

    /** tensor[i] += value */
    static void add(MemorySegment tensor, long i, float value) {
        tensor.setAtIndex(FLOAT, i, tensor.getAtIndex(FLOAT, i) + value);
    }

    /** The part of a layer-major tensor that belongs to layer {@code layer}: floats [layer*size, (layer+1)*size). */
    static MemorySegment layer(MemorySegment tensor, int layer, long floatsPerLayer) {
        return tensor.asSlice(layer * floatsPerLayer * Float.BYTES, floatsPerLayer * Float.BYTES);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Encoder: token embedding plus position embedding.

    /** out (B,T,C) = wte[token] + wpe[position]; wte (V,C), wpe (maxT,C). */
    static void encoderForward(MemorySegment out, int[] tokens, MemorySegment wte, MemorySegment wpe, int B, int T, int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long token = tokens[(int) bt];
                long t = bt % T;
                for (int i = 0; i < C; i++) {
                    set(out, bt * C + i, get(wte, token * C + i) + get(wpe, t * C + i));
                }
            }
        });
    }

    /** dwte[token] += dout; dwpe[position] += dout. Serial: two positions can hold the same token. */
    static void encoderBackward(MemorySegment dwte, MemorySegment dwpe, MemorySegment dout, int[] tokens, int B, int T, int C) {
        for (long bt = 0; bt < (long) B * T; bt++) {
            long token = tokens[(int) bt];
            long t = bt % T;
            for (int i = 0; i < C; i++) {
                float d = get(dout, bt * C + i);
                add(dwte, token * C + i, d);
                add(dwpe, t * C + i, d);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // LayerNorm: normalise each position's C channels to zero mean and unit variance, then scale and shift.

    static final float LAYERNORM_EPS = 1e-5f;

    /** out (B,T,C) = (inp - mean) * rstd * weight + bias; caches mean (B,T) and rstd (B,T) for the backward. */
    static void layernormForward(MemorySegment out, MemorySegment mean, MemorySegment rstd, MemorySegment inp,
                                 MemorySegment weight, MemorySegment bias, int B, int T, int C) {
        Parallel.forRange((long) B * T, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * C;
                float sum = 0;
                for (int i = 0; i < C; i++) sum += get(inp, row + i);
                float m = sum / C;
                float variance = 0; // two passes: the variance of (x - m) is exact where E[x^2] - m^2 cancels
                for (int i = 0; i < C; i++) {
                    float shifted = get(inp, row + i) - m;
                    variance += shifted * shifted;
                }
                variance /= C;
                float s = (float) (1.0 / Math.sqrt(variance + LAYERNORM_EPS));
                for (int i = 0; i < C; i++) {
                    float normalized = (get(inp, row + i) - m) * s;
                    set(out, row + i, normalized * get(weight, i) + get(bias, i));
                }
                set(mean, bt, m);
                set(rstd, bt, s);
            }
        });
    }

    /**
     * With n = (x - mean) * rstd and g = weight * dout: dbias += dout, dweight += n * dout, and
     * dinp += (g - mean(g) - n * mean(g * n)) * rstd (the two means remove the directions the normalisation fixed).
     */
    static void layernormBackward(MemorySegment dinp, MemorySegment dweight, MemorySegment dbias, MemorySegment dout,
                                  MemorySegment inp, MemorySegment weight, MemorySegment mean, MemorySegment rstd,
                                  int B, int T, int C) {
        // dinp rows are independent; dweight and dbias sum over all rows, so each thread keeps its own partial sums
        long rows = (long) B * T;
        int chunks = Parallel.threads();
        float[][] partialDweight = new float[chunks][C];
        float[][] partialDbias = new float[chunks][C];
        Parallel.forRange(chunks, (firstChunk, endChunk) -> {
            for (long chunk = firstChunk; chunk < endChunk; chunk++) {
                float[] dw = partialDweight[(int) chunk];
                float[] db = partialDbias[(int) chunk];
                for (long bt = rows * chunk / chunks; bt < rows * (chunk + 1) / chunks; bt++) {
                    long row = bt * C;
                    float m = get(mean, bt);
                    float s = get(rstd, bt);
                    float gMean = 0, gnMean = 0;
                    for (int i = 0; i < C; i++) {
                        float n = (get(inp, row + i) - m) * s;
                        float g = get(weight, i) * get(dout, row + i);
                        gMean += g;
                        gnMean += g * n;
                    }
                    gMean /= C;
                    gnMean /= C;
                    for (int i = 0; i < C; i++) {
                        float n = (get(inp, row + i) - m) * s;
                        float d = get(dout, row + i);
                        db[i] += d;
                        dw[i] += n * d;
                        float g = get(weight, i) * d;
                        add(dinp, row + i, (g - gMean - n * gnMean) * s);
                    }
                }
            }
        });
        for (int chunk = 0; chunk < chunks; chunk++) { // fixed order: the same sums for the same thread count
            for (int i = 0; i < C; i++) {
                add(dweight, i, partialDweight[chunk][i]);
                add(dbias, i, partialDbias[chunk][i]);
            }
        }
    }

    // ------------------------------------------------------------------------------------------------------------
    // Matmul: out = inp · weightᵀ + bias, PyTorch's Linear (weight stored (OC, C)). See MatmulKernels.

    /** out (BT,OC) = inp (BT,C) · weight (OC,C)ᵀ + bias (OC) (bias may be null). */
    static void matmulForward(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias,
                              int BT, int C, int OC) {
        MatmulKernels.active().forward(out, inp, weight, bias, BT, C, OC);
    }

    /** dinp (BT,C) += dout · weight; dweight (OC,C) += doutᵀ · inp; dbias (OC) += column sums of dout. */
    static void matmulBackward(MemorySegment dinp, MemorySegment dweight, MemorySegment dbias, MemorySegment dout,
                               MemorySegment inp, MemorySegment weight, int BT, int C, int OC) {
        MatmulKernels.active().backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC);
    }

    // ------------------------------------------------------------------------------------------------------------
    // Causal self-attention. inp (B,T,3C) holds Q, K, V side by side; head h uses channels h*hs..(h+1)*hs-1 of each.

    /**
     * For each (b, t, h): preatt[t2] = q_t · k_t2 / sqrt(hs) for t2 <= t, att = softmax(preatt) (zero above the
     * diagonal), out (B,T,C) = sum over t2 of att[t2] * v_t2. preatt and att (B,NH,T,T) are kept for the backward.
     */
    static void attentionForward(MemorySegment out, MemorySegment preatt, MemorySegment att, MemorySegment inp,
                                 int B, int T, int C, int NH) {
        int hs = C / NH;
        long C3 = 3L * C;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Parallel.forRange((long) B * T * NH, (start, end) -> {
            for (long index = start; index < end; index++) {
                long b = index / ((long) T * NH);
                int t = (int) (index / NH % T);
                int h = (int) (index % NH);
                long query = b * T * C3 + (long) t * C3 + (long) h * hs;
                long row = ((b * NH + h) * T + t) * T; // offset of preatt[b,h,t,:] and att[b,h,t,:]

                // pass 1: scores and their maximum
                float max = -10000.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    long key = b * T * C3 + (long) t2 * C3 + (long) h * hs + C;
                    float dot = 0;
                    for (int i = 0; i < hs; i++) dot += get(inp, query + i) * get(inp, key + i);
                    dot *= scale;
                    if (dot > max) max = dot;
                    set(preatt, row + t2, dot);
                }
                // pass 2: exponentials (shifted by the max so they cannot overflow) and their sum
                float sum = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    float e = (float) Math.exp(get(preatt, row + t2) - max);
                    sum += e;
                    set(att, row + t2, e);
                }
                float inverseSum = sum == 0 ? 0 : 1 / sum;
                // pass 3: normalise; the future positions are explicitly zero
                for (int t2 = 0; t2 < T; t2++) {
                    set(att, row + t2, t2 <= t ? get(att, row + t2) * inverseSum : 0);
                }
                // pass 4: weighted sum of the values
                long output = b * T * C + (long) t * C + (long) h * hs;
                for (int i = 0; i < hs; i++) set(out, output + i, 0);
                for (int t2 = 0; t2 <= t; t2++) {
                    long value = b * T * C3 + (long) t2 * C3 + (long) h * hs + 2L * C;
                    float a = get(att, row + t2);
                    for (int i = 0; i < hs; i++) add(out, output + i, a * get(inp, value + i));
                }
            }
        });
    }

    /**
     * Backward through the four passes in reverse: datt = dout · v, dv += att * dout; through the softmax
     * dpreatt[t3] += att[t2] * ([t2==t3] - att[t3]) * datt[t2]; then dq += k * dpreatt * scale and
     * dk += q * dpreatt * scale. Parallel over (b, h): each pair owns its rows of every buffer it writes.
     */
    static void attentionBackward(MemorySegment dinp, MemorySegment dpreatt, MemorySegment datt, MemorySegment dout,
                                  MemorySegment inp, MemorySegment att, int B, int T, int C, int NH) {
        int hs = C / NH;
        long C3 = 3L * C;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Parallel.forRange((long) B * NH, (start, end) -> {
            for (long index = start; index < end; index++) {
                long b = index / NH;
                int h = (int) (index % NH);
                for (int t = 0; t < T; t++) {
                    long row = ((b * NH + h) * T + t) * T;
                    long query = b * T * C3 + (long) t * C3 + (long) h * hs;
                    long output = b * T * C + (long) t * C + (long) h * hs;

                    // backward of pass 4: value accumulation
                    for (int t2 = 0; t2 <= t; t2++) {
                        long value = b * T * C3 + (long) t2 * C3 + (long) h * hs + 2L * C;
                        float a = get(att, row + t2);
                        float dAtt = 0;
                        for (int i = 0; i < hs; i++) {
                            float d = get(dout, output + i);
                            dAtt += get(inp, value + i) * d;
                            add(dinp, value + i, a * d);
                        }
                        add(datt, row + t2, dAtt);
                    }
                    // backward of passes 2 and 3: softmax
                    for (int t2 = 0; t2 <= t; t2++) {
                        float a2 = get(att, row + t2);
                        float d2 = get(datt, row + t2);
                        for (int t3 = 0; t3 <= t; t3++) {
                            float indicator = t2 == t3 ? 1.0f : 0.0f;
                            add(dpreatt, row + t3, a2 * (indicator - get(att, row + t3)) * d2);
                        }
                    }
                    // backward of pass 1: query · key
                    for (int t2 = 0; t2 <= t; t2++) {
                        long key = b * T * C3 + (long) t2 * C3 + (long) h * hs + C;
                        float d = get(dpreatt, row + t2) * scale;
                        for (int i = 0; i < hs; i++) {
                            add(dinp, query + i, get(inp, key + i) * d);
                            add(dinp, key + i, get(inp, query + i) * d);
                        }
                    }
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // GELU, tanh approximation: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).

    static final float GELU_SCALE = (float) Math.sqrt(2.0 / Math.PI);

    static void geluForward(MemorySegment out, MemorySegment inp, long N) {
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) {
                float x = get(inp, i);
                float cube = 0.044715f * x * x * x;
                set(out, i, 0.5f * x * (1.0f + (float) Math.tanh(GELU_SCALE * (x + cube))));
            }
        });
    }

    /** dinp += gelu'(x) * dout, with gelu'(x) = 0.5 (1 + tanh u) + 0.5 x sech^2(u) sqrt(2/pi) (1 + 3 * 0.044715 x^2). */
    static void geluBackward(MemorySegment dinp, MemorySegment inp, MemorySegment dout, long N) {
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) {
                float x = get(inp, i);
                float cube = 0.044715f * x * x * x;
                float u = GELU_SCALE * (x + cube);
                float tanh = (float) Math.tanh(u);
                float cosh = (float) Math.cosh(u);
                float sech2 = 1.0f / (cosh * cosh);
                float local = 0.5f * (1.0f + tanh) + x * 0.5f * sech2 * GELU_SCALE * (1.0f + 3.0f * 0.044715f * x * x);
                add(dinp, i, local * get(dout, i));
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // Residual connection: out = a + b; the gradient flows to both unchanged.

    static void residualForward(MemorySegment out, MemorySegment a, MemorySegment b, long N) {
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) set(out, i, get(a, i) + get(b, i));
        });
    }

    static void residualBackward(MemorySegment da, MemorySegment db, MemorySegment dout, long N) {
        Parallel.forRange(N, (start, end) -> {
            for (long i = start; i < end; i++) {
                float d = get(dout, i);
                add(da, i, d);
                add(db, i, d);
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // Softmax over the vocabulary and cross-entropy with the targets.

    /** probs (B,T,Vp) = softmax over the first V logits of each row; the padding columns get probability 0. */
    static void softmaxForward(MemorySegment probs, MemorySegment logits, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float max = -10000.0f;
                for (int i = 0; i < V; i++) max = Math.max(max, get(logits, row + i));
                float sum = 0;
                for (int i = 0; i < V; i++) {
                    float e = (float) Math.exp(get(logits, row + i) - max);
                    set(probs, row + i, e);
                    sum += e;
                }
                for (int i = 0; i < V; i++) set(probs, row + i, get(probs, row + i) / sum);
                for (int i = V; i < Vp; i++) set(probs, row + i, 0);
            }
        });
    }

    /** losses (B,T) = -log probs[target]. */
    static void crossentropyForward(MemorySegment losses, MemorySegment probs, int[] targets, int BT, int Vp) {
        for (long bt = 0; bt < BT; bt++) {
            set(losses, bt, (float) -Math.log(get(probs, bt * Vp + targets[(int) bt])));
        }
    }

    /** Softmax and cross-entropy together have the simple gradient dlogits += (probs - onehot(target)) * dloss. */
    static void crossentropySoftmaxBackward(MemorySegment dlogits, MemorySegment dlosses, MemorySegment probs,
                                            int[] targets, int BT, int V, int Vp) {
        Parallel.forRange(BT, (start, end) -> {
            for (long bt = start; bt < end; bt++) {
                long row = bt * Vp;
                float dloss = get(dlosses, bt);
                int target = targets[(int) bt];
                for (int i = 0; i < V; i++) {
                    float indicator = i == target ? 1.0f : 0.0f;
                    add(dlogits, row + i, (get(probs, row + i) - indicator) * dloss);
                }
            }
        });
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model's memory: 16 parameter tensors in one buffer (llm.c's checkpoint order) and 23 activation tensors
    // in another; the gradients mirror both.

    /** The 16 parameter tensors, slices of one buffer; per-layer tensors are stacked layer-major. */
    record ParameterTensors(
            MemorySegment wte,      // (Vp, C) token embeddings, also the (tied) lm head
            MemorySegment wpe,      // (maxT, C) position embeddings
            MemorySegment ln1w,     // (L, C)
            MemorySegment ln1b,     // (L, C)
            MemorySegment qkvw,     // (L, 3C, C)
            MemorySegment qkvb,     // (L, 3C)
            MemorySegment attprojw, // (L, C, C)
            MemorySegment attprojb, // (L, C)
            MemorySegment ln2w,     // (L, C)
            MemorySegment ln2b,     // (L, C)
            MemorySegment fcw,      // (L, 4C, C)
            MemorySegment fcb,      // (L, 4C)
            MemorySegment fcprojw,  // (L, C, 4C)
            MemorySegment fcprojb,  // (L, C)
            MemorySegment lnfw,     // (C)
            MemorySegment lnfb) {   // (C)

        static ParameterTensors slice(GPT2Config config, MemorySegment memory) {
            var t = sliceAll(memory, config.parameterSizes());
            return new ParameterTensors(t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7],
                    t[8], t[9], t[10], t[11], t[12], t[13], t[14], t[15]);
        }

        MemorySegment[] all() {
            return new MemorySegment[] {wte, wpe, ln1w, ln1b, qkvw, qkvb, attprojw, attprojb,
                ln2w, ln2b, fcw, fcb, fcprojw, fcprojb, lnfw, lnfb};
        }
    }

    /** The 23 activation tensors of one forward pass at batch B and length T (llm.c's order). */
    record Activations(
            MemorySegment encoded,   // (B, T, C)
            MemorySegment ln1,       // (L, B, T, C)
            MemorySegment ln1Mean,   // (L, B, T)
            MemorySegment ln1Rstd,   // (L, B, T)
            MemorySegment qkv,       // (L, B, T, 3C)
            MemorySegment atty,      // (L, B, T, C)
            MemorySegment preatt,    // (L, B, NH, T, T)
            MemorySegment att,       // (L, B, NH, T, T)
            MemorySegment attproj,   // (L, B, T, C)
            MemorySegment residual2, // (L, B, T, C)
            MemorySegment ln2,       // (L, B, T, C)
            MemorySegment ln2Mean,   // (L, B, T)
            MemorySegment ln2Rstd,   // (L, B, T)
            MemorySegment fch,       // (L, B, T, 4C)
            MemorySegment fchGelu,   // (L, B, T, 4C)
            MemorySegment fcproj,    // (L, B, T, C)
            MemorySegment residual3, // (L, B, T, C)
            MemorySegment lnf,       // (B, T, C)
            MemorySegment lnfMean,   // (B, T)
            MemorySegment lnfRstd,   // (B, T)
            MemorySegment logits,    // (B, T, Vp)
            MemorySegment probs,     // (B, T, Vp)
            MemorySegment losses) {  // (B, T)

        static long[] sizes(GPT2Config config, int B, int T) {
            long L = config.numLayers(), C = config.channels(), NH = config.numHeads(), Vp = config.paddedVocabSize();
            long BT = (long) B * T;
            return new long[] {
                BT * C, L * BT * C, L * BT, L * BT, L * BT * 3 * C, L * BT * C, L * B * NH * T * T, L * B * NH * T * T,
                L * BT * C, L * BT * C, L * BT * C, L * BT, L * BT, L * BT * 4 * C, L * BT * 4 * C, L * BT * C,
                L * BT * C, BT * C, BT, BT, BT * Vp, BT * Vp, BT};
        }

        static long count(GPT2Config config, int B, int T) {
            long total = 0;
            for (long size : sizes(config, B, T)) total += size;
            return total;
        }

        static Activations slice(GPT2Config config, int B, int T, MemorySegment memory) {
            var a = sliceAll(memory, sizes(config, B, T));
            return new Activations(a[0], a[1], a[2], a[3], a[4], a[5], a[6], a[7], a[8], a[9], a[10], a[11],
                    a[12], a[13], a[14], a[15], a[16], a[17], a[18], a[19], a[20], a[21], a[22]);
        }
    }

    private static MemorySegment[] sliceAll(MemorySegment memory, long[] sizes) {
        var tensors = new MemorySegment[sizes.length];
        long offset = 0;
        for (int i = 0; i < sizes.length; i++) {
            tensors[i] = memory.asSlice(offset * Float.BYTES, sizes[i] * Float.BYTES);
            offset += sizes[i];
        }
        return tensors;
    }

    // ------------------------------------------------------------------------------------------------------------
    // The model.

    public final GPT2Config config;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment parameterMemory;
    private final MemorySegment gradientMemory;
    final ParameterTensors params;
    final ParameterTensors grads;
    private MemorySegment adamM; // AdamW first and second moments, allocated on the first update
    private MemorySegment adamV;

    // activations, allocated on the first forward and grown when a larger batch arrives
    private long activationCapacity;
    private MemorySegment activationMemory;
    private MemorySegment activationGradientMemory;
    Activations acts;
    Activations gradActs;
    private int batchSize;
    private int seqLen;
    private int[] inputs;
    private int[] targets;
    private float meanLoss = -1;

    /** A model with all parameters zero; see {@link #randomInit} and {@link #fromCheckpoint}. */
    public GPT2(GPT2Config config) {
        this.config = config;
        long bytes = config.numParameters() * Float.BYTES;
        this.parameterMemory = allocate(bytes, "parameters");
        this.gradientMemory = allocate(bytes, "parameter gradients");
        this.params = ParameterTensors.slice(config, parameterMemory);
        this.grads = ParameterTensors.slice(config, gradientMemory);
    }

    /** llm.c's (and PyTorch's, seed 42) random init; see {@link GPT2Init}. */
    public static GPT2 randomInit(GPT2Config config) {
        var model = new GPT2(config);
        GPT2Init.randomInit(config, model.parameterMemory);
        return model;
    }

    /** Loads an llm.c checkpoint (version 3 fp32 or version 5 bf16). */
    public static GPT2 fromCheckpoint(Path file) {
        try (var arena = Arena.ofConfined()) {
            var checkpoint = GPT2Checkpoint.open(file, arena);
            var model = new GPT2(checkpoint.config());
            checkpoint.readParametersInto(model.parameterMemory);
            return model;
        }
    }

    /** Writes the parameters as an llm.c checkpoint, version 3 (fp32) or 5 (bf16). */
    public void save(Path file, int version) {
        GPT2Checkpoint.write(file, config, parameterMemory, version);
    }

    public long numParameters() {
        return config.numParameters();
    }

    /** All parameters in llm.c's order, as one segment of numParameters floats. */
    public MemorySegment parameters() {
        return parameterMemory;
    }

    /** All parameter gradients, same layout as {@link #parameters()}. */
    public MemorySegment gradients() {
        return gradientMemory;
    }

    /** Logits (B, T, Vp) of the last forward. */
    public MemorySegment logits() {
        return acts.logits;
    }

    /** Mean loss of the last forward with targets, or -1 when it had none. */
    public float meanLoss() {
        return meanLoss;
    }

    public long numActivations() {
        return activationCapacity;
    }

    private MemorySegment allocate(long bytes, String what) {
        try {
            return arena.allocate(bytes, 64);
        } catch (OutOfMemoryError e) {
            throw new LlmcException("cannot allocate %,d bytes for the %s of GPT-2 %s: out of memory"
                    .formatted(bytes, what, config), e);
        }
    }

    private void ensureActivations(int B, int T) {
        if (T > config.maxSeqLen())
            throw new LlmcException("sequence length " + T + " exceeds the model's context length " + config.maxSeqLen());
        long needed = Activations.count(config, B, T);
        if (needed > activationCapacity) {
            activationMemory = allocate(needed * Float.BYTES, "activations");
            activationGradientMemory = allocate(needed * Float.BYTES, "activation gradients");
            activationCapacity = needed;
        }
        if (B != batchSize || T != seqLen) {
            acts = Activations.slice(config, B, T, activationMemory);
            gradActs = Activations.slice(config, B, T, activationGradientMemory);
            batchSize = B;
            seqLen = T;
        }
    }

    /**
     * The forward pass over tokens (B,T). With targets (B,T) it also computes the mean cross-entropy loss
     * (returned; -1 without targets). Logits and probabilities of the last position are in {@link #logits()}.
     */
    public float forward(int[] inputs, int[] targets, int B, int T) {
        int V = config.vocabSize(), Vp = config.paddedVocabSize(), L = config.numLayers();
        int NH = config.numHeads(), C = config.channels();
        checkTokens("input", inputs, B * T, V);
        if (targets != null) checkTokens("target", targets, B * T, V);
        ensureActivations(B, T);
        this.inputs = inputs.clone();
        this.targets = targets == null ? null : targets.clone();

        int BT = B * T;
        long btc = (long) BT * C, bt = BT, bt3c = 3L * btc, bt4c = 4L * btc, attention = (long) B * NH * T * T;
        var p = params;
        var a = acts;
        encoderForward(a.encoded, inputs, p.wte, p.wpe, B, T, C);
        for (int l = 0; l < L; l++) {
            MemorySegment residual = l == 0 ? a.encoded : layer(a.residual3, l - 1, btc);

            MemorySegment ln1 = layer(a.ln1, l, btc), qkv = layer(a.qkv, l, bt3c), atty = layer(a.atty, l, btc);
            MemorySegment attproj = layer(a.attproj, l, btc), residual2 = layer(a.residual2, l, btc);
            MemorySegment ln2 = layer(a.ln2, l, btc), fch = layer(a.fch, l, bt4c), fchGelu = layer(a.fchGelu, l, bt4c);
            MemorySegment fcproj = layer(a.fcproj, l, btc), residual3 = layer(a.residual3, l, btc);

            layernormForward(ln1, layer(a.ln1Mean, l, bt), layer(a.ln1Rstd, l, bt), residual,
                    layer(p.ln1w, l, C), layer(p.ln1b, l, C), B, T, C);
            matmulForward(qkv, ln1, layer(p.qkvw, l, 3L * C * C), layer(p.qkvb, l, 3L * C), BT, C, 3 * C);
            attentionForward(atty, layer(a.preatt, l, attention), layer(a.att, l, attention), qkv, B, T, C, NH);
            matmulForward(attproj, atty, layer(p.attprojw, l, (long) C * C), layer(p.attprojb, l, C), BT, C, C);
            residualForward(residual2, residual, attproj, btc);
            layernormForward(ln2, layer(a.ln2Mean, l, bt), layer(a.ln2Rstd, l, bt), residual2,
                    layer(p.ln2w, l, C), layer(p.ln2b, l, C), B, T, C);
            matmulForward(fch, ln2, layer(p.fcw, l, 4L * C * C), layer(p.fcb, l, 4L * C), BT, C, 4 * C);
            geluForward(fchGelu, fch, bt4c);
            matmulForward(fcproj, fchGelu, layer(p.fcprojw, l, 4L * C * C), layer(p.fcprojb, l, C), BT, 4 * C, C);
            residualForward(residual3, residual2, fcproj, btc);
        }
        MemorySegment last = layer(a.residual3, L - 1, btc);
        layernormForward(a.lnf, a.lnfMean, a.lnfRstd, last, p.lnfw, p.lnfb, B, T, C);
        matmulForward(a.logits, a.lnf, p.wte, null, BT, C, Vp);
        softmaxForward(a.probs, a.logits, BT, V, Vp);

        if (targets == null) {
            meanLoss = -1;
            return meanLoss;
        }
        crossentropyForward(a.losses, a.probs, targets, BT, Vp);
        float sum = 0;
        for (int i = 0; i < BT; i++) sum += get(a.losses, i);
        meanLoss = sum / BT;
        return meanLoss;
    }

    /** Sets every parameter gradient to zero (call before the first micro-batch of a step). */
    public void zeroGrad() {
        gradientMemory.fill((byte) 0);
    }

    /** Backward pass of the last forward (which must have had targets); gradients are ADDED to the current ones. */
    public void backward() {
        backward(1);
    }

    /**
     * Backward pass for one of {@code microSteps} accumulated micro-batches: each contributes its mean loss
     * divided by microSteps, so the accumulated gradient is that of the mean over all of them.
     */
    public void backward(int microSteps) {
        if (meanLoss == -1) throw new IllegalStateException("must forward with targets before backward");
        int B = batchSize, T = seqLen, BT = B * T;
        int V = config.vocabSize(), Vp = config.paddedVocabSize(), L = config.numLayers();
        int NH = config.numHeads(), C = config.channels();
        long btc = (long) BT * C, bt = BT, bt3c = 3L * btc, bt4c = 4L * btc, attention = (long) B * NH * T * T;
        var p = params;
        var g = grads;
        var a = acts;
        var d = gradActs;
        activationGradientMemory.asSlice(0, Activations.count(config, B, T) * Float.BYTES).fill((byte) 0);

        // the loss is the mean over B*T positions (and micro-steps): each position's loss gets that share
        float dloss = 1.0f / (BT * (float) microSteps);
        for (int i = 0; i < BT; i++) set(d.losses, i, dloss);

        crossentropySoftmaxBackward(d.logits, d.losses, a.probs, targets, BT, V, Vp);
        matmulBackward(d.lnf, g.wte, null, d.logits, a.lnf, p.wte, BT, C, Vp);
        MemorySegment last = layer(a.residual3, L - 1, btc);
        MemorySegment dlast = layer(d.residual3, L - 1, btc);
        layernormBackward(dlast, g.lnfw, g.lnfb, d.lnf, last, p.lnfw, a.lnfMean, a.lnfRstd, B, T, C);

        for (int l = L - 1; l >= 0; l--) {
            MemorySegment residual = l == 0 ? a.encoded : layer(a.residual3, l - 1, btc);
            MemorySegment dresidual = l == 0 ? d.encoded : layer(d.residual3, l - 1, btc);

            // backward through the MLP half of the block
            residualBackward(layer(d.residual2, l, btc), layer(d.fcproj, l, btc), layer(d.residual3, l, btc), btc);
            matmulBackward(layer(d.fchGelu, l, bt4c), layer(g.fcprojw, l, 4L * C * C), layer(g.fcprojb, l, C),
                    layer(d.fcproj, l, btc), layer(a.fchGelu, l, bt4c), layer(p.fcprojw, l, 4L * C * C), BT, 4 * C, C);
            geluBackward(layer(d.fch, l, bt4c), layer(a.fch, l, bt4c), layer(d.fchGelu, l, bt4c), bt4c);
            matmulBackward(layer(d.ln2, l, btc), layer(g.fcw, l, 4L * C * C), layer(g.fcb, l, 4L * C),
                    layer(d.fch, l, bt4c), layer(a.ln2, l, btc), layer(p.fcw, l, 4L * C * C), BT, C, 4 * C);
            layernormBackward(layer(d.residual2, l, btc), layer(g.ln2w, l, C), layer(g.ln2b, l, C), layer(d.ln2, l, btc),
                    layer(a.residual2, l, btc), layer(p.ln2w, l, C), layer(a.ln2Mean, l, bt), layer(a.ln2Rstd, l, bt), B, T, C);

            // backward through the attention half
            residualBackward(dresidual, layer(d.attproj, l, btc), layer(d.residual2, l, btc), btc);
            matmulBackward(layer(d.atty, l, btc), layer(g.attprojw, l, (long) C * C), layer(g.attprojb, l, C),
                    layer(d.attproj, l, btc), layer(a.atty, l, btc), layer(p.attprojw, l, (long) C * C), BT, C, C);
            attentionBackward(layer(d.qkv, l, bt3c), layer(d.preatt, l, attention), layer(d.att, l, attention),
                    layer(d.atty, l, btc), layer(a.qkv, l, bt3c), layer(a.att, l, attention), B, T, C, NH);
            matmulBackward(layer(d.ln1, l, btc), layer(g.qkvw, l, 3L * C * C), layer(g.qkvb, l, 3L * C),
                    layer(d.qkv, l, bt3c), layer(a.ln1, l, btc), layer(p.qkvw, l, 3L * C * C), BT, C, 3 * C);
            layernormBackward(dresidual, layer(g.ln1w, l, C), layer(g.ln1b, l, C), layer(d.ln1, l, btc),
                    residual, layer(p.ln1w, l, C), layer(a.ln1Mean, l, bt), layer(a.ln1Rstd, l, bt), B, T, C);
        }
        encoderBackward(g.wte, g.wpe, d.encoded, inputs, B, T, C);
    }

    // ------------------------------------------------------------------------------------------------------------
    // AdamW.

    /**
     * One AdamW step over every parameter (t = 1-based step): m = beta1 m + (1-beta1) g, v = beta2 v + (1-beta2) g^2,
     * both bias-corrected, then p -= lr (m̂ / (sqrt(v̂) + eps) + decay p). The gradient is multiplied by
     * {@code gradScale} first (gradient clipping folds in here). Weight decay applies to every tensor, or with
     * {@code decayMatricesOnly} only to the 2-D ones (wte, wpe and the four weight matrices), as llm.c's trainer does.
     */
    public void update(float learningRate, float beta1, float beta2, float eps, float weightDecay,
                       boolean decayMatricesOnly, float gradScale, int t) {
        if (adamM == null) {
            adamM = allocate(config.numParameters() * Float.BYTES, "AdamW first moments");
            adamV = allocate(config.numParameters() * Float.BYTES, "AdamW second moments");
        }
        float correction1 = (float) (1.0 - Math.pow(beta1, t));
        float correction2 = (float) (1.0 - Math.pow(beta2, t));
        long[] sizes = config.parameterSizes();
        long offset = 0;
        for (int tensor = 0; tensor < sizes.length; tensor++) {
            boolean isMatrix = switch (tensor) {
                case 0, 1, 4, 6, 10, 12 -> true;
                default -> false;
            };
            float decay = decayMatricesOnly && !isMatrix ? 0 : weightDecay;
            long first = offset;
            Parallel.forRange(sizes[tensor], (start, end) -> {
                for (long i = first + start; i < first + end; i++) {
                    float grad = get(gradientMemory, i) * gradScale;
                    float m = beta1 * get(adamM, i) + (1 - beta1) * grad;
                    float v = beta2 * get(adamV, i) + (1 - beta2) * grad * grad;
                    float mHat = m / correction1;
                    float vHat = v / correction2;
                    float param = get(parameterMemory, i);
                    set(adamM, i, m);
                    set(adamV, i, v);
                    set(parameterMemory, i, param - learningRate * (mHat / ((float) Math.sqrt(vHat) + eps) + decay * param));
                }
            });
            offset += sizes[tensor];
        }
    }

    /** llm.c's test rule: AdamW with decay on every parameter and no clipping. */
    public void update(float learningRate, float beta1, float beta2, float eps, float weightDecay, int t) {
        update(learningRate, beta1, beta2, eps, weightDecay, false, 1.0f, t);
    }

    /**
     * The global L2 norm of all parameter gradients. Summed in double over fixed blocks, so the result does not
     * depend on the number of threads.
     */
    public float gradientNorm() {
        long n = config.numParameters();
        long block = 1 << 16;
        int blocks = (int) ((n + block - 1) / block);
        double[] partial = new double[blocks];
        Parallel.forRange(blocks, (start, end) -> {
            for (long k = start; k < end; k++) {
                double sum = 0;
                for (long i = k * block; i < Math.min(n, (k + 1) * block); i++) {
                    float g = get(gradientMemory, i);
                    sum += (double) g * g;
                }
                partial[(int) k] = sum;
            }
        });
        double total = 0;
        for (double s : partial) total += s;
        return (float) Math.sqrt(total);
    }

    private static void checkTokens(String what, int[] tokens, int count, int vocabSize) {
        if (tokens.length < count)
            throw new LlmcException(what + " tokens: expected " + count + " (B*T), found " + tokens.length);
        for (int i = 0; i < count; i++) {
            if (tokens[i] < 0 || tokens[i] >= vocabSize)
                throw new LlmcException("%s token %d: expected an id in [0, %d), found %d".formatted(what, i, vocabSize, tokens[i]));
        }
    }

    @Override
    public void close() {
        arena.close();
    }
}
