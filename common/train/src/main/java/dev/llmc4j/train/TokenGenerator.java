package dev.llmc4j.train;

import dev.llmc4j.sample.Sampler;
import java.util.function.IntConsumer;

/** Autoregressive generation: continue a prompt by sampling one token at a time. */
@FunctionalInterface
public interface TokenGenerator {

    /**
     * Feeds the prompt, then samples {@code count} tokens, calling {@code onToken} with each new token as soon as
     * it exists (for streaming output). Returns the new tokens.
     */
    int[] generate(int[] prompt, int count, Sampler sampler, IntConsumer onToken);
}
