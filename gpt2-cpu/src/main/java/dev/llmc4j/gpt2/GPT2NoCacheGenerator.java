package dev.llmc4j.gpt2;

import dev.llmc4j.sample.Sampler;
import dev.llmc4j.train.TokenGenerator;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.ValueLayout;
import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * llm.c's way to generate: run the whole sequence through the model again for every new token and sample from
 * the last position. Kept to measure what the KV cache ({@link GPT2Inference}) saves and to test it against.
 */
public final class GPT2NoCacheGenerator implements TokenGenerator {
    private final GPT2 model;

    public GPT2NoCacheGenerator(GPT2 model) {
        this.model = model;
    }

    @Override
    public int[] generate(int[] prompt, int count, Sampler sampler, IntConsumer onToken) {
        int V = model.config.vocabSize(), Vp = model.config.paddedVocabSize();
        if (prompt.length == 0) throw new LlmcException("the prompt is empty: give at least one token");
        if (prompt.length + count > model.config.maxSeqLen())
            throw new LlmcException("prompt (%d tokens) plus %d new tokens exceed the model's context length %d"
                    .formatted(prompt.length, count, model.config.maxSeqLen()));
        int[] sequence = Arrays.copyOf(prompt, prompt.length + count);
        float[] logits = new float[V];
        for (int i = 0; i < count; i++) {
            int T = prompt.length + i;
            model.forward(Arrays.copyOf(sequence, T), null, 1, T);
            long row = (long) (T - 1) * Vp;
            for (int v = 0; v < V; v++) logits[v] = model.logits().getAtIndex(ValueLayout.JAVA_FLOAT, row + v);
            sequence[T] = sampler.sample(logits, 0, V);
            onToken.accept(sequence[T]);
        }
        return Arrays.copyOfRange(sequence, prompt.length, sequence.length);
    }
}
