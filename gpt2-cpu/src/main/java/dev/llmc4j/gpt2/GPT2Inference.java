package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.layer;
import static dev.llmc4j.cpu.Floats.set;

import dev.llmc4j.sample.Sampler;
import dev.llmc4j.train.TokenGenerator;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.function.IntConsumer;

/**
 * Generation with a KV cache: each new token runs through the model alone, attending to the keys and values that
 * earlier positions left in the cache, instead of recomputing the whole sequence for every token as llm.c does.
 * The cost per token is then proportional to the position, not to its square, times the layers.
 *
 * <p>Uses the same layer functions as training (with B = T = 1); only attention differs: one query against
 * the cached keys (L, maxT, C) and values (L, maxT, C).
 */
public final class GPT2Inference implements TokenGenerator, AutoCloseable {
    private final GPT2 model;
    private final int C, NH, hs, L, V, Vp, maxT;
    private final Arena arena = Arena.ofShared();
    private final MemorySegment keys, values;           // (L, maxT, C)
    private final MemorySegment residual, ln, qkv, atty, attproj, residual2, fch, fchGelu, fcproj; // one position
    private final MemorySegment mean, rstd, scores, logits;
    private int position;                                // tokens already in the cache

    public GPT2Inference(GPT2 model) {
        this.model = model;
        var config = model.config;
        this.C = config.channels();
        this.NH = config.numHeads();
        this.hs = C / NH;
        this.L = config.numLayers();
        this.V = config.vocabSize();
        this.Vp = config.paddedVocabSize();
        this.maxT = config.maxSeqLen();
        this.keys = floats((long) L * maxT * C);
        this.values = floats((long) L * maxT * C);
        this.residual = floats(C);
        this.ln = floats(C);
        this.qkv = floats(3L * C);
        this.atty = floats(C);
        this.attproj = floats(C);
        this.residual2 = floats(C);
        this.fch = floats(4L * C);
        this.fchGelu = floats(4L * C);
        this.fcproj = floats(C);
        this.mean = floats(1);
        this.rstd = floats(1);
        this.scores = floats(maxT);
        this.logits = floats(Vp);
    }

    private MemorySegment floats(long count) {
        return arena.allocate(count * Float.BYTES, 64);
    }

    /** Forgets the cached sequence. */
    public void reset() {
        position = 0;
    }

    public int position() {
        return position;
    }

    /** Runs one token at the next position and returns the logits (V) that predict the token after it. */
    public float[] next(int token) {
        if (position >= maxT)
            throw new LlmcException("the sequence reached the model's context length " + maxT + " tokens");
        if (token < 0 || token >= V) throw new LlmcException("token id: expected [0, " + V + "), found " + token);
        var p = model.params;
        int t = position;
        for (int i = 0; i < C; i++) set(residual, i, get(p.wte(), (long) token * C + i) + get(p.wpe(), (long) t * C + i));
        var k = model.kernels(); // the model's kernel set
        for (int l = 0; l < L; l++) {
            k.layernormForward(ln, mean, rstd, residual, layer(p.ln1w(), l, C), layer(p.ln1b(), l, C), 1, 1, C);
            k.matmulForward(qkv, ln, layer(p.qkvw(), l, 3L * C * C), layer(p.qkvb(), l, 3L * C), 1, C, 3 * C);
            long cacheRow = ((long) l * maxT + t) * C;
            for (int i = 0; i < C; i++) {
                set(keys, cacheRow + i, get(qkv, C + i));
                set(values, cacheRow + i, get(qkv, 2L * C + i));
            }
            attendToCache(l, t);
            k.matmulForward(attproj, atty, layer(p.attprojw(), l, (long) C * C), layer(p.attprojb(), l, C), 1, C, C);
            k.residualForward(residual2, residual, attproj, C);
            k.layernormForward(ln, mean, rstd, residual2, layer(p.ln2w(), l, C), layer(p.ln2b(), l, C), 1, 1, C);
            k.matmulForward(fch, ln, layer(p.fcw(), l, 4L * C * C), layer(p.fcb(), l, 4L * C), 1, C, 4 * C);
            k.geluForward(fchGelu, fch, 4L * C);
            k.matmulForward(fcproj, fchGelu, layer(p.fcprojw(), l, 4L * C * C), layer(p.fcprojb(), l, C), 1, 4 * C, C);
            k.residualForward(residual, residual2, fcproj, C);
        }
        k.layernormForward(ln, mean, rstd, residual, p.lnfw(), p.lnfb(), 1, 1, C);
        k.matmulForward(logits, ln, p.wte(), null, 1, C, Vp);
        position++;
        float[] result = new float[V];
        for (int i = 0; i < V; i++) result[i] = get(logits, i);
        return result;
    }

    // atty (C) = for each head: softmax(q · k_t2 / sqrt(hs) over t2 <= t) weighted sum of v_t2, from the cache
    private void attendToCache(int l, int t) {
        float scale = (float) (1.0 / Math.sqrt(hs));
        long layerBase = (long) l * maxT * C;
        for (int h = 0; h < NH; h++) {
            int head = h * hs;
            float max = -10000.0f;
            for (int t2 = 0; t2 <= t; t2++) {
                float dot = 0;
                for (int i = 0; i < hs; i++) dot += get(qkv, head + i) * get(keys, layerBase + (long) t2 * C + head + i);
                dot *= scale;
                set(scores, t2, dot);
                max = Math.max(max, dot);
            }
            float sum = 0;
            for (int t2 = 0; t2 <= t; t2++) {
                float e = (float) Math.exp(get(scores, t2) - max);
                set(scores, t2, e);
                sum += e;
            }
            for (int i = 0; i < hs; i++) {
                float out = 0;
                for (int t2 = 0; t2 <= t; t2++) out += get(scores, t2) / sum * get(values, layerBase + (long) t2 * C + head + i);
                set(atty, head + i, out);
            }
        }
    }

    @Override
    public int[] generate(int[] prompt, int count, Sampler sampler, IntConsumer onToken) {
        if (prompt.length == 0) throw new LlmcException("the prompt is empty: give at least one token");
        if (prompt.length + count > maxT)
            throw new LlmcException("prompt (%d tokens) plus %d new tokens exceed the model's context length %d"
                    .formatted(prompt.length, count, maxT));
        reset();
        float[] next = null;
        for (int token : prompt) next = next(token);
        int[] generated = new int[count];
        for (int i = 0; i < count; i++) {
            int token = sampler.sample(next, 0, V);
            generated[i] = token;
            onToken.accept(token);
            if (i + 1 < count) next = next(token);
        }
        return generated;
    }

    @Override
    public void close() {
        arena.close();
    }
}
