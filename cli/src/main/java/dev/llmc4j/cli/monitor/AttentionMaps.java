package dev.llmc4j.cli.monitor;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.train.Inspectable;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.IntFunction;

/**
 * Every layer's and head's attention over one fixed sequence, for the page's grid of heatmaps: the probabilities
 * of a batch-1 forward, in thousandths (ints: a third of the JSON of floats, and finer than a colour scale shows).
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

    /** {step, tokens: [text], ids, layers, heads, maps: [layer][head] -> T*T thousandths, row = query}. */
    static Map<String, Object> of(Inspectable model, int step, int[] ids, IntFunction<String> tokenText) {
        float[][][] probabilities = model.attention(ids);
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
