package dev.llmc4j.format;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

class JsonTest {

    @Test
    void objectsKeepTheirOrder() {
        var parsed = (Map<?, ?>) Json.parse(" {\"b\": 1, \"a\": [true, false, null], \"c\": {\"d\": \"e\"}} \n");
        assertEquals(List.of("b", "a", "c"), List.copyOf(parsed.keySet()));
        assertEquals(1L, parsed.get("b"));
        assertEquals(java.util.Arrays.asList(true, false, null), parsed.get("a"));
        assertEquals(Map.of("d", "e"), parsed.get("c"));
    }

    @Test
    void numbers() {
        assertEquals(0L, Json.parse("0"));
        assertEquals(-12L, Json.parse("-12"));
        assertEquals(Long.MAX_VALUE, Json.parse("9223372036854775807"));
        assertEquals(9.223372036854775808E18, Json.parse("9223372036854775808")); // beyond a long: a double
        assertEquals(1.5, Json.parse("1.5"));
        assertEquals(-2.5e-3, Json.parse("-2.5e-3"));
        assertEquals(1e5, Json.parse("1E+5"));
    }

    @Test
    void stringEscapes() {
        assertEquals("a\"b\\c/d\b\f\n\r\t", Json.parse("\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\""));
        assertEquals("é€", Json.parse("\"\\u00e9\\u20AC\""));
        assertEquals("😀", Json.parse("\"\\ud83d\\ude00\"")); // a surrogate pair
        assertEquals("naïve 😀", Json.parse("\"naïve 😀\"")); // raw UTF-16 passes through
    }

    @Test
    void emptyContainers() {
        assertEquals(Map.of(), Json.parse("{}"));
        assertEquals(List.of(), Json.parse("[ ]"));
        assertNull(Json.parse("null"));
    }

    @ParameterizedTest
    @ValueSource(
            strings = {
                "", "{", "{\"a\"}", "{\"a\":}", "{\"a\":1,}", "[1,]", "[1 2]", "{a:1}", "\"open", "\"bad \\x escape\"",
                "\"\\u12\"", "01", "1.", "-", "1e", "tru", "{} {}", "\"tab\there\"", "{\"a\":1 \"b\":2}", "nul"
            })
    void rejectsInvalidText(String text) {
        var e = assertThrows(Json.JsonException.class, () -> Json.parse(text));
        assertTrue(e.getMessage().contains("at character"), e.getMessage());
    }

    @Test
    void rejectsDuplicateKeys() {
        var e = assertThrows(Json.JsonException.class, () -> Json.parse("{\"a\":1,\"a\":2}"));
        assertTrue(e.getMessage().contains("duplicate key \"a\""), e.getMessage());
    }

    @Test
    void rejectsDeepNesting() {
        String deep = "[".repeat(10_000) + "]".repeat(10_000);
        assertThrows(Json.JsonException.class, () -> Json.parse(deep));
    }

    @Test
    void resultsAreReadOnly() {
        var parsed = (Map<?, ?>) Json.parse("{\"a\":[1]}");
        assertThrows(UnsupportedOperationException.class, () -> ((List<?>) parsed.get("a")).clear());
        assertThrows(UnsupportedOperationException.class, parsed::clear);
    }
}
