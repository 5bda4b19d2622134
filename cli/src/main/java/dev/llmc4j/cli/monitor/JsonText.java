package dev.llmc4j.cli.monitor;

import java.util.List;
import java.util.Map;

/**
 * Plain Java values as JSON text, for the page: maps (in their order), lists, strings, numbers, booleans, null, and
 * int and float arrays. A number that is not finite (a NaN z-score while the outlier window fills) becomes null.
 * Reading goes through the project's {@link dev.llmc4j.format.Json}.
 */
final class JsonText {
    private JsonText() {}

    static String of(Object value) {
        var text = new StringBuilder();
        write(text, value);
        return text.toString();
    }

    private static void write(StringBuilder text, Object value) {
        switch (value) {
            case null -> text.append("null");
            case String s -> string(text, s);
            case Boolean b -> text.append(b);
            case Integer i -> text.append(i);
            case Long l -> text.append(l);
            case Number n -> number(text, n.doubleValue());
            case int[] ints -> {
                text.append('[');
                for (int i = 0; i < ints.length; i++)
                    text.append(i == 0 ? "" : ",").append(ints[i]);
                text.append(']');
            }
            case float[] floats -> {
                text.append('[');
                for (int i = 0; i < floats.length; i++) {
                    if (i > 0) text.append(',');
                    number(text, floats[i]);
                }
                text.append(']');
            }
            case Map<?, ?> map -> {
                text.append('{');
                boolean first = true;
                for (var entry : map.entrySet()) {
                    if (!first) text.append(',');
                    first = false;
                    string(text, entry.getKey().toString());
                    text.append(':');
                    write(text, entry.getValue());
                }
                text.append('}');
            }
            case List<?> list -> {
                text.append('[');
                for (int i = 0; i < list.size(); i++) {
                    if (i > 0) text.append(',');
                    write(text, list.get(i));
                }
                text.append(']');
            }
            case Object[] array -> write(text, List.of(array));
            default ->
                throw new IllegalArgumentException(
                        "no JSON for " + value.getClass().getName());
        }
    }

    // numbers print as the shortest text of their float: what a chart can show, at a fraction of the text of a double
    private static void number(StringBuilder text, double value) {
        if (!Double.isFinite(value)) {
            text.append("null");
        } else if (value == Math.rint(value) && Math.abs(value) < 1e15) {
            text.append((long) value);
        } else {
            text.append((float) value);
        }
    }

    private static void string(StringBuilder text, String s) {
        text.append('"');
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            switch (c) {
                case '"' -> text.append("\\\"");
                case '\\' -> text.append("\\\\");
                case '\n' -> text.append("\\n");
                case '\r' -> text.append("\\r");
                case '\t' -> text.append("\\t");
                // '<' too: the report puts this text inside a <script>, where "</script>" would end it
                default -> {
                    boolean escape = c < 0x20 || c == '<' || c == '\u2028' || c == '\u2029';
                    if (escape) text.append("\\u%04x".formatted((int) c));
                    else text.append(c);
                }
            }
        }
        text.append('"');
    }
}
