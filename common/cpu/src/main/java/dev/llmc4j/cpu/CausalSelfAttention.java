package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import java.lang.foreign.MemorySegment;

/**
 * Causal multi-head self-attention, forward and backward side by side, with grouped-query attention (GQA).
 *
 * <p>Layout: each row of inp (B,T,(NH+2NKV)*hs) holds NH query heads, then NKV key heads, then NKV value heads;
 * head h uses channels h*hs..(h+1)*hs-1 of its block. Query head h reads key/value head h / (NH/NKV), so
 * NH/NKV consecutive query heads share one key/value head (Llama 3). GPT-2 is the case NKV = NH: inp (B,T,3C).
 * out (B,T,NH*hs).
 *
 * <p>These plain loops are the baseline a model runs through {@link CpuKernels}; the vectorized multi-head version
 * is in {@link VectorizedCpuKernels}.
 */
public final class CausalSelfAttention {
    private CausalSelfAttention() {}

    /**
     * For each (b, t, h): preatt[t2] = q_t · k_t2 / sqrt(hs) for t2 <= t, att = softmax(preatt) (zero above the
     * diagonal), out (B,T,C) = sum over t2 of att[t2] * v_t2. preatt and att (B,NH,T,T) are kept for the backward.
     */
    public static void forward(
            MemorySegment out,
            MemorySegment preatt,
            MemorySegment att,
            MemorySegment inp,
            int B,
            int T,
            int C,
            int NH) {
        forward(out, preatt, att, inp, B, T, NH, NH, C / NH);
    }

    /** As above with NKV key/value heads of size hs (grouped-query attention). */
    public static void forward(
            MemorySegment out,
            MemorySegment preatt,
            MemorySegment att,
            MemorySegment inp,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        long C = (long) NH * hs; // width of the query block and of out
        long C3 = (long) (NH + 2 * NKV) * hs; // row stride of inp
        long keys = C, values = C + (long) NKV * hs;
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Parallel.forRange((long) B * T * NH, (start, end) -> {
            for (long index = start; index < end; index++) {
                long b = index / ((long) T * NH);
                int t = (int) (index / NH % T);
                int h = (int) (index % NH);
                long kvHead = (long) (h / group) * hs;
                long query = b * T * C3 + (long) t * C3 + (long) h * hs;
                long row = ((b * NH + h) * T + t) * T; // offset of preatt[b,h,t,:] and att[b,h,t,:]

                // pass 1: scores and their maximum
                float max = -10000.0f;
                for (int t2 = 0; t2 <= t; t2++) {
                    long key = b * T * C3 + (long) t2 * C3 + keys + kvHead;
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
                    long value = b * T * C3 + (long) t2 * C3 + values + kvHead;
                    float a = get(att, row + t2);
                    for (int i = 0; i < hs; i++) add(out, output + i, a * get(inp, value + i));
                }
            }
        });
    }

    /**
     * Backward through the four passes in reverse: datt = dout · v, dv += att * dout; through the softmax
     * dpreatt[t3] += att[t2] * ([t2==t3] - att[t3]) * datt[t2]; then dq += k * dpreatt * scale and
     * dk += q * dpreatt * scale. Parallel over (b, key/value head): each owns its query heads and its key/value
     * head, so no two threads write the same gradient.
     */
    public static void backward(
            MemorySegment dinp,
            MemorySegment dpreatt,
            MemorySegment datt,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment att,
            int B,
            int T,
            int C,
            int NH) {
        backward(dinp, dpreatt, datt, dout, inp, att, B, T, NH, NH, C / NH);
    }

    /** As above with NKV key/value heads of size hs (grouped-query attention). */
    public static void backward(
            MemorySegment dinp,
            MemorySegment dpreatt,
            MemorySegment datt,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment att,
            int B,
            int T,
            int NH,
            int NKV,
            int hs) {
        long C = (long) NH * hs;
        long C3 = (long) (NH + 2 * NKV) * hs;
        long keys = C, values = C + (long) NKV * hs;
        int group = NH / NKV;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Parallel.forRange((long) B * NKV, (start, end) -> {
            for (long index = start; index < end; index++) {
                long b = index / NKV;
                int kv = (int) (index % NKV);
                long kvHead = (long) kv * hs;
                for (int h = kv * group; h < (kv + 1) * group; h++) {
                    for (int t = 0; t < T; t++) {
                        long row = ((b * NH + h) * T + t) * T;
                        long query = b * T * C3 + (long) t * C3 + (long) h * hs;
                        long output = b * T * C + (long) t * C + (long) h * hs;

                        // backward of pass 4: value accumulation
                        for (int t2 = 0; t2 <= t; t2++) {
                            long value = b * T * C3 + (long) t2 * C3 + values + kvHead;
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
                            long key = b * T * C3 + (long) t2 * C3 + keys + kvHead;
                            float d = get(dpreatt, row + t2) * scale;
                            for (int i = 0; i < hs; i++) {
                                add(dinp, query + i, get(inp, key + i) * d);
                                add(dinp, key + i, get(inp, query + i) * d);
                            }
                        }
                    }
                }
            }
        });
    }
}
