package dev.llmc4j.gpt2;

import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.layer;
import static dev.llmc4j.cpu.Floats.set;

import dev.llmc4j.cpu.DecodeAttention;
import dev.llmc4j.cpu.MatVec;
import dev.llmc4j.cpu.MatVec.Precision;
import dev.llmc4j.cpu.MatVec.Weights;
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
 * <p>Uses the same layer functions as training (with B = T = 1), except for two: attention, one query against
 * the cached keys (L, maxT, C) and values (L, maxT, C) ({@link DecodeAttention}), and the Linear layers, which run {@link MatVec}: with one
 * position each weight is read once and used once, so a token costs the time to read the weights and the kernel
 * is built to stream them. The weights are the model's fp32 floats, or (precision BF16) a bf16 copy taken when the
 * generator is made, half the bytes to read per token; a bf16 copy does not follow later training steps.
 */
public final class GPT2Inference implements TokenGenerator, AutoCloseable {
    private final GPT2 model;
    private final int C, NH, hs, L, V, maxT;
    private final Arena arena = Arena.ofShared();
    private final Precision precision;
    private final Weights[] qkvw, attprojw, fcw, fcprojw; // per layer: (3C, C), (C, C), (4C, C), (C, 4C)
    private final Weights lmHead; // (V, C): wte's first V rows (the padding is never sampled)
    private final MemorySegment keys, values; // (L, maxT, C)
    private final MemorySegment residual, ln, qkv, atty, attproj, residual2, fch, fchGelu, fcproj; // one position
    private final MemorySegment mean, rstd, logits;
    private int position; // tokens already in the cache

    /** Generation over the model's fp32 weights, which it reads as they are (it follows training). */
    public GPT2Inference(GPT2 model) {
        this(model, Precision.FP32);
    }

    /** Generation with the matmul weights in {@code precision}: FP32 reads the model's; BF16 copies them rounded. */
    public GPT2Inference(GPT2 model, Precision precision) {
        this.model = model;
        this.precision = precision;
        var config = model.config;
        this.C = config.channels();
        this.NH = config.numHeads();
        this.hs = C / NH;
        this.L = config.numLayers();
        this.V = config.vocabSize();
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
        this.logits = floats(V);
        var p = model.params;
        this.qkvw = new Weights[L];
        this.attprojw = new Weights[L];
        this.fcw = new Weights[L];
        this.fcprojw = new Weights[L];
        for (int l = 0; l < L; l++) {
            qkvw[l] = Weights.of(precision, arena, layer(p.qkvw(), l, 3L * C * C), 3 * C, C);
            attprojw[l] = Weights.of(precision, arena, layer(p.attprojw(), l, (long) C * C), C, C);
            fcw[l] = Weights.of(precision, arena, layer(p.fcw(), l, 4L * C * C), 4 * C, C);
            fcprojw[l] = Weights.of(precision, arena, layer(p.fcprojw(), l, 4L * C * C), C, 4 * C);
        }
        this.lmHead = Weights.of(precision, arena, p.wte(), V, C);
    }

    public Precision precision() {
        return precision;
    }

    /** Bytes of weights one token reads: the Linear layers' and the lm head's (the rest is below 1% at d12). */
    public long weightBytesPerToken() {
        long bytes = lmHead.bytes();
        for (int l = 0; l < L; l++)
            bytes += qkvw[l].bytes() + attprojw[l].bytes() + fcw[l].bytes() + fcprojw[l].bytes();
        return bytes;
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
        for (int i = 0; i < C; i++)
            set(residual, i, get(p.wte(), (long) token * C + i) + get(p.wpe(), (long) t * C + i));
        var k = model.kernels(); // the model's kernel set (the Linear layers and attention: MatVec, DecodeAttention)
        for (int l = 0; l < L; l++) {
            k.layernormForward(ln, mean, rstd, residual, layer(p.ln1w(), l, C), layer(p.ln1b(), l, C), 1, 1, C);
            MatVec.forward(qkv, ln, qkvw[l], layer(p.qkvb(), l, 3L * C));
            long cacheRow = ((long) l * maxT + t) * C;
            for (int i = 0; i < C; i++) {
                set(keys, cacheRow + i, get(qkv, C + i));
                set(values, cacheRow + i, get(qkv, 2L * C + i));
            }
            DecodeAttention.forward(
                    atty, qkv, 0, layer(keys, l, (long) maxT * C), layer(values, l, (long) maxT * C), C, NH, 1, hs, t);
            MatVec.forward(attproj, atty, attprojw[l], layer(p.attprojb(), l, C));
            k.residualForward(residual2, residual, attproj, C);
            k.layernormForward(ln, mean, rstd, residual2, layer(p.ln2w(), l, C), layer(p.ln2b(), l, C), 1, 1, C);
            MatVec.forward(fch, ln, fcw[l], layer(p.fcb(), l, 4L * C));
            k.geluForward(fchGelu, fch, 4L * C);
            MatVec.forward(fcproj, fchGelu, fcprojw[l], layer(p.fcprojb(), l, C));
            k.residualForward(residual, residual2, fcproj, C);
        }
        k.layernormForward(ln, mean, rstd, residual, p.lnfw(), p.lnfb(), 1, 1, C);
        MatVec.forward(logits, ln, lmHead, null);
        position++;
        float[] result = new float[V];
        for (int i = 0; i < V; i++) result[i] = get(logits, i);
        return result;
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
