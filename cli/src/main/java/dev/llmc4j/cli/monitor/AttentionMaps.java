package dev.llmc4j.cli.monitor;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.train.Inspectable;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * Every layer's and head's attention over one fixed sequence, for the page's grid of heatmaps, in thousandths (ints:
 * a third of the JSON of floats, and finer than a colour scale shows). During a run the maps cost nothing: they are
 * those of the val loss's own last forward (its first sequence's first tokens, the same at every val step, as the
 * val data is read in order from its start each time); a report draws them with a batch-1 forward of a checkpoint.
 */
final class AttentionMaps {
    private AttentionMaps() {}

    /** Tokens the maps are drawn for: short enough to read with the tokens as axis labels. */
    static final int SEQUENCE_LENGTH = 32;

    /** The first {@code length} tokens of the first shard of a pattern (the val data): the same sequence each time. */
    static int[] firstTokens(String shardPattern, int length) {
        var tokens = TokenShard.open(DataLoader.expand(List.of(shardPattern)).getFirst());
        int count = (int) Math.min(length, tokens.numTokens());
        int[] ids = new int[count];
        tokens.read(0, ids, 0, count);
        return ids;
    }

    /** The maps of a batch-1 forward over {@code ids} (this replaces the model's activations: between steps). */
    static Map<String, Object> of(Inspectable model, int step, int[] ids, IntFunction<String> tokenText) {
        return event(model, step, ids, model.attention(ids), tokenText);
    }

    /** The maps of the first {@link #SEQUENCE_LENGTH} tokens of the last forward's first sequence; null: none yet. */
    static Map<String, Object> ofLastForward(Inspectable model, int step, IntFunction<String> tokenText) {
        var batch = model.lastBatch();
        if (batch == null) return null;
        int length = Math.min(SEQUENCE_LENGTH, batch.seqLen());
        return event(
                model, step, Arrays.copyOf(batch.tokens(), length), model.firstSequenceAttention(length), tokenText);
    }

    /** {step, tokens: [text], ids, layers, heads, maps: [layer][head] -> T*T thousandths, row = query}. */
    private static Map<String, Object> event(
            Inspectable model, int step, int[] ids, float[][][] probabilities, IntFunction<String> tokenText) {
        var maps = new ArrayList<Object>();
        for (float[][] layer : probabilities) {
            var heads = new ArrayList<Object>();
            for (float[] head : layer) {
                int[] thousandths = new int[head.length];
                for (int i = 0; i < head.length; i++) thousandths[i] = Math.round(1000 * head[i]);
                heads.add(thousandths);
            }
            maps.add(heads);
        }
        var texts = new ArrayList<String>();
        for (int id : ids) texts.add(tokenText.apply(id));
        var event = new LinkedHashMap<String, Object>();
        event.put("step", step);
        event.put("tokens", texts);
        event.put("ids", ids);
        event.put("layers", model.numLayers());
        event.put("heads", model.numHeads());
        event.put("maps", maps);
        return event;
    }
}
