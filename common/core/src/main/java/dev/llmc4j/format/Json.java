package dev.llmc4j.format;

import dev.llmc4j.util.LlmcException;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A small, strict JSON parser (RFC 8259) for the headers of safetensors files and Hugging Face config.json files.
 *
 * <p>Values become plain Java objects: object → {@code Map<String, Object>} (insertion order kept, duplicate keys
 * rejected), array → {@code List<Object>}, string → {@link String}, number → {@link Long} when it is an integer
 * that fits, else {@link Double}, true/false → {@link Boolean}, null → {@code null}. All collections are read-only.
 * Errors are {@link JsonException}s that give the character offset of the problem.
 */
public final class Json {

    /** Text that is not JSON; {@link #offset()} is where the parser gave up. */
    public static final class JsonException extends RuntimeException {
        private final int offset;

        JsonException(String message, int offset) {
            super(message + " at character " + offset);
            this.offset = offset;
        }

        public int offset() {
            return offset;
        }
    }

    /** Objects and arrays nested deeper than this are rejected instead of overflowing the stack. */
    private static final int MAX_DEPTH = 512;

    private final String text;
    private int pos;

    private Json(String text) {
        this.text = text;
    }

    /** Parses one JSON value; only whitespace may follow it. */
    public static Object parse(String text) {
        var parser = new Json(text);
        parser.skipWhitespace();
        Object value = parser.value(0);
        parser.skipWhitespace();
        if (parser.pos != text.length())
            throw parser.error("unexpected '" + text.charAt(parser.pos) + "' after the value");
        return value;
    }

    /**
     * Parses one line of JSON lines that must be an object; a user error (naming {@code where}) when it is not.
     */
    public static Map<?, ?> parseObjectLine(String line, String where) {
        Object parsed;
        try {
            parsed = parse(line);
        } catch (JsonException e) {
            throw new LlmcException(where + ": expected a JSON object, found invalid JSON (" + e.getMessage() + ")");
        }
        if (!(parsed instanceof Map<?, ?> object)) throw new LlmcException(where + ": expected a JSON object");
        return object;
    }

    private Object value(int depth) {
        if (depth > MAX_DEPTH) throw error("nested deeper than " + MAX_DEPTH + " levels");
        if (pos >= text.length()) throw error("unexpected end of text, expected a value");
        char c = text.charAt(pos);
        return switch (c) {
            case '{' -> object(depth);
            case '[' -> array(depth);
            case '"' -> string();
            case 't' -> literal("true", Boolean.TRUE);
            case 'f' -> literal("false", Boolean.FALSE);
            case 'n' -> literal("null", null);
            default -> {
                if (c == '-' || (c >= '0' && c <= '9')) yield number();
                throw error("unexpected '" + c + "', expected a value");
            }
        };
    }

    private Map<String, Object> object(int depth) {
        pos++; // '{'
        var members = new LinkedHashMap<String, Object>();
        skipWhitespace();
        if (peek() == '}') {
            pos++;
            return Collections.unmodifiableMap(members);
        }
        while (true) {
            skipWhitespace();
            if (peek() != '"') throw error("expected a string key");
            int keyStart = pos;
            String key = string();
            skipWhitespace();
            expect(':');
            skipWhitespace();
            Object value = value(depth + 1);
            // a repeated key would silently hide the first value; safetensors headers must never have one
            if (members.containsKey(key)) throw new JsonException("duplicate key \"" + key + "\"", keyStart);
            members.put(key, value);
            skipWhitespace();
            char c = peek();
            pos++;
            if (c == '}') return Collections.unmodifiableMap(members);
            if (c != ',') throw error(pos - 1, "expected ',' or '}' in an object");
        }
    }

    private List<Object> array(int depth) {
        pos++; // '['
        var elements = new ArrayList<Object>();
        skipWhitespace();
        if (peek() == ']') {
            pos++;
            return Collections.unmodifiableList(elements);
        }
        while (true) {
            skipWhitespace();
            elements.add(value(depth + 1));
            skipWhitespace();
            char c = peek();
            pos++;
            if (c == ']') return Collections.unmodifiableList(elements);
            if (c != ',') throw error(pos - 1, "expected ',' or ']' in an array");
        }
    }

    private String string() {
        pos++; // opening quote
        var out = new StringBuilder();
        while (true) {
            if (pos >= text.length()) throw error("unterminated string");
            char c = text.charAt(pos++);
            if (c == '"') return out.toString();
            if (c < 0x20) throw error(pos - 1, "control character U+%04X inside a string".formatted((int) c));
            if (c != '\\') {
                out.append(c);
                continue;
            }
            if (pos >= text.length()) throw error("unterminated escape");
            char e = text.charAt(pos++);
            switch (e) {
                case '"', '\\', '/' -> out.append(e);
                case 'b' -> out.append('\b');
                case 'f' -> out.append('\f');
                case 'n' -> out.append('\n');
                case 'r' -> out.append('\r');
                case 't' -> out.append('\t');
                // \\uXXXX is one UTF-16 unit; a surrogate pair arrives as two escapes and StringBuilder joins them
                case 'u' -> out.append(hex4());
                default -> throw error(pos - 1, "unknown escape '\\" + e + "'");
            }
        }
    }

    private char hex4() {
        if (pos + 4 > text.length()) throw error("unterminated \\u escape");
        int code = 0;
        for (int i = 0; i < 4; i++) {
            int digit = Character.digit(text.charAt(pos), 16);
            if (digit < 0) throw error("expected 4 hex digits after \\u");
            code = code * 16 + digit;
            pos++;
        }
        return (char) code;
    }

    /** JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
    private Object number() {
        int start = pos;
        if (peek() == '-') pos++;
        if (peek() == '0') pos++;
        else if (!digits()) throw error("expected a digit");
        boolean integer = true;
        if (peek() == '.') {
            pos++;
            integer = false;
            if (!digits()) throw error("expected a digit after '.'");
        }
        if (peek() == 'e' || peek() == 'E') {
            pos++;
            integer = false;
            if (peek() == '+' || peek() == '-') pos++;
            if (!digits()) throw error("expected a digit in the exponent");
        }
        String literal = text.substring(start, pos);
        if (integer) {
            try {
                return Long.parseLong(literal);
            } catch (NumberFormatException tooBig) {
                // falls through: an integer beyond 64 bits is still a valid JSON number
            }
        }
        return Double.parseDouble(literal);
    }

    private boolean digits() {
        int start = pos;
        while (pos < text.length() && text.charAt(pos) >= '0' && text.charAt(pos) <= '9') pos++;
        return pos > start;
    }

    private Object literal(String word, Object value) {
        if (!text.startsWith(word, pos)) throw error("unexpected '" + text.charAt(pos) + "', expected a value");
        pos += word.length();
        return value;
    }

    private void expect(char c) {
        if (peek() != c) throw error("expected '" + c + "'");
        pos++;
    }

    /** The next character, or U+0000 at the end (never valid where a structural character is needed). */
    private char peek() {
        return pos < text.length() ? text.charAt(pos) : '\0';
    }

    private void skipWhitespace() {
        while (pos < text.length()) {
            char c = text.charAt(pos);
            if (c != ' ' && c != '\t' && c != '\n' && c != '\r') return;
            pos++;
        }
    }

    private JsonException error(String message) {
        return error(pos, message);
    }

    private JsonException error(int at, String message) {
        if (at >= text.length() && !message.startsWith("unexpected end") && !message.startsWith("unterminated"))
            message += " (the text ends here)";
        return new JsonException(message, at);
    }
}
