package dev.llmc4j.bench;

import dev.llmc4j.llama3.Llama3Config;
import dev.llmc4j.util.LlmcException;
import java.util.Locale;
import java.util.function.Function;
import java.util.regex.Pattern;

/**
 * A Llama 3 shape named on a benchmark's command line, as GPT-2's are by depth ({@code d12}):
 *
 * <pre>
 *   llama3                            the benchmark shape: L4 C512 NH8 NKV2 V32768 (SwiGLU H = 1792), the one the
 *                                     performance notes quote for the Llama 3 training step
 *   llama3:3.2-1B                     a released model: 3.1-8B, 3.2-1B or 3.2-3B
 *   llama3:L4,C512,NH8,NKV2,V32768    fields over the benchmark shape, in any order: L layers, C channels, NH query
 *                                     heads, NKV key/value heads, V vocabulary, FFN ffn_dim_multiplier, MO multiple_of,
 *                                     MAXT the longest sequence (RoPE tables)
 * </pre>
 *
 * Random weights are all a benchmark needs (the speed does not depend on them), so a descriptor names only a shape.
 */
public final class Llama3Descriptor {
    private Llama3Descriptor() {}

    /** The benchmark shape (maxT 1024, ffn_dim_multiplier 1.3, multiple_of 256, RoPE theta 500000, no scaling). */
    public static final Llama3Config BENCHMARK_SHAPE =
            new Llama3Config(1024, 32768, 4, 8, 2, 512, 1.3f, 256, 1e-5f, 500000f, false, 3, 1);

    private static final String PREFIX = "llama3";
    private static final Pattern FIELD = Pattern.compile("([A-Za-z]+)([0-9.]+)");

    /** True for "llama3" and "llama3:..." (anything else is left to GPT-2's descriptors). */
    public static boolean matches(String descriptor) {
        return descriptor.equals(PREFIX) || descriptor.startsWith(PREFIX + ":");
    }

    /** The config a descriptor names, or a one-line error naming the field that is wrong. */
    public static Llama3Config parse(String descriptor) {
        if (!matches(descriptor))
            throw new LlmcException(
                    "Llama 3 descriptor '" + descriptor + "': expected llama3, llama3:3.2-1B or llama3:L4,C512,...");
        if (descriptor.equals(PREFIX)) return BENCHMARK_SHAPE;
        String fields = descriptor.substring(PREFIX.length() + 1);
        if (fields.startsWith("3.")) return Llama3Config.fromName(fields);
        var c = BENCHMARK_SHAPE;
        int maxT = c.maxSeqLen(), V = c.vocabSize(), L = c.numLayers(), NH = c.numHeads(), NKV = c.numKvHeads();
        int C = c.channels(), multipleOf = c.multipleOf();
        float ffnMultiplier = c.ffnDimMultiplier();
        for (String field : fields.split(",", -1)) {
            var match = FIELD.matcher(field.trim());
            if (!match.matches())
                throw new LlmcException("Llama 3 descriptor '" + descriptor + "', field '" + field
                        + "': expected a key and a number, e.g. L4, C512, NH8, NKV2, V32768, FFN1.3, MO256, MAXT1024");
            String key = match.group(1).toUpperCase(Locale.ROOT), value = match.group(2);
            switch (key) {
                case "L" -> L = integer(descriptor, key, value);
                case "C" -> C = integer(descriptor, key, value);
                case "NH" -> NH = integer(descriptor, key, value);
                case "NKV" -> NKV = integer(descriptor, key, value);
                case "V" -> V = integer(descriptor, key, value);
                case "MO" -> multipleOf = integer(descriptor, key, value);
                case "MAXT" -> maxT = integer(descriptor, key, value);
                case "FFN" -> ffnMultiplier = number(descriptor, key, value);
                default ->
                    throw new LlmcException("Llama 3 descriptor '" + descriptor + "', key '" + match.group(1)
                            + "': expected one of L, C, NH, NKV, V, FFN, MO, MAXT");
            }
        }
        return new Llama3Config(
                maxT,
                V,
                L,
                NH,
                NKV,
                C,
                ffnMultiplier,
                multipleOf,
                c.normEps(),
                c.ropeTheta(),
                c.useScaledRope(),
                c.major(),
                c.minor());
    }

    private static int integer(String descriptor, String key, String value) {
        return parse(descriptor, key, value, Integer::parseInt, "a whole number");
    }

    private static float number(String descriptor, String key, String value) {
        return parse(descriptor, key, value, Float::parseFloat, "a number");
    }

    private static <N> N parse(String descriptor, String key, String value, Function<String, N> parser, String what) {
        try {
            return parser.apply(value);
        } catch (NumberFormatException e) {
            throw new LlmcException(
                    "Llama 3 descriptor '" + descriptor + "', " + key + ": expected " + what + ", found " + value);
        }
    }
}
