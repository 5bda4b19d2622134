package dev.llmc4j.llama3;

import dev.llmc4j.data.TextEncoder;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.util.LlmcException;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Llama 3's tokenizer: tiktoken-style byte-level BPE.
 *
 * <p>The vocabulary file ({@code tokenizer.model}) has one line per token, {@code base64(token bytes) rank}; a
 * token's rank is both its id and its merge priority (lower merges first). Encoding splits the text into pieces with
 * a pre-tokenizer regex (Llama 3's, unless another is given), then merges the UTF-8 bytes of every piece pair by pair,
 * always the adjacent pair whose concatenation has the lowest rank, until no adjacent pair is a token.
 *
 * <p>Special tokens (not produced by merges) follow the regular ones: for Llama 3's 128,000 regular tokens,
 * {@code <|begin_of_text|>} = 128000, {@code <|end_of_text|>} = 128001, {@code <|start_header_id|>} = 128006,
 * {@code <|end_header_id|>} = 128007, {@code <|eot_id|>} = 128009, ... 256 in all (Llama 3.1's list).
 */
public final class Llama3Tokenizer {
    /** Llama 3's pre-tokenizer: contractions, letters with one leading non-letter, 1-3 digits, punctuation, spaces. */
    public static final String LLAMA3_PATTERN =
            "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                    + "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

    public static final int NUM_SPECIAL_TOKENS = 256;

    public static final String BEGIN_OF_TEXT = "<|begin_of_text|>";
    public static final String END_OF_TEXT = "<|end_of_text|>";
    public static final String START_HEADER = "<|start_header_id|>";
    public static final String END_HEADER = "<|end_header_id|>";
    public static final String EOT = "<|eot_id|>";

    /** Token bytes as Latin-1 strings (one char per byte): cheap hashing, no wrapper type. */
    private final Map<String, Integer> ranks;

    private final byte[][] tokenBytes;
    private final Map<String, Integer> specialTokens;
    private final Map<Integer, String> specialById = new HashMap<>();
    private final Pattern splitPattern;
    private final Pattern specialPattern;

    /**
     * @param ranks         token bytes -> rank (= id)
     * @param specialTokens special token text -> id (ids not used by ranks)
     * @param splitRegex    the pre-tokenizer regex (matched with Unicode character classes and case folding)
     */
    public Llama3Tokenizer(Map<byte[], Integer> ranks, Map<String, Integer> specialTokens, String splitRegex) {
        this.ranks = new HashMap<>(ranks.size() * 2);
        int maxId = -1;
        for (var entry : ranks.entrySet()) {
            this.ranks.put(new String(entry.getKey(), StandardCharsets.ISO_8859_1), entry.getValue());
            maxId = Math.max(maxId, entry.getValue());
        }
        for (int id : specialTokens.values()) maxId = Math.max(maxId, id);
        this.tokenBytes = new byte[maxId + 1][];
        for (var entry : ranks.entrySet())
            tokenBytes[entry.getValue()] = entry.getKey().clone();
        this.specialTokens = new LinkedHashMap<>(specialTokens);
        for (var entry : specialTokens.entrySet()) {
            if (tokenBytes[entry.getValue()] != null)
                throw new IllegalArgumentException(
                        "special token " + entry.getKey() + " reuses id " + entry.getValue());
            tokenBytes[entry.getValue()] = entry.getKey().getBytes(StandardCharsets.UTF_8);
            specialById.put(entry.getValue(), entry.getKey());
        }
        this.splitPattern = Pattern.compile(splitRegex, Pattern.UNICODE_CHARACTER_CLASS);
        this.specialPattern = specialTokens.isEmpty()
                ? null
                : Pattern.compile(String.join(
                        "|", specialTokens.keySet().stream().map(Pattern::quote).toList()));
    }

    /** Loads a Llama 3 {@code tokenizer.model} and adds the 256 special tokens after its regular ones. */
    public static Llama3Tokenizer load(Path tokenizerModel) {
        Map<byte[], Integer> ranks = readRanks(tokenizerModel);
        return new Llama3Tokenizer(ranks, llama3SpecialTokens(ranks.size()), LLAMA3_PATTERN);
    }

    /** Reads a tiktoken file ({@code base64 rank} per line). */
    public static Map<byte[], Integer> readRanks(Path file) {
        try (InputStream in = Files.newInputStream(file)) {
            return readRanks(in, file.toString());
        } catch (NoSuchFileException e) {
            throw new LlmcException("tokenizer not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
    }

    /** Reads a tiktoken stream; {@code name} only labels error messages. */
    public static Map<byte[], Integer> readRanks(InputStream in, String name) throws IOException {
        var ranks = new LinkedHashMap<byte[], Integer>();
        var seen = new HashMap<Integer, Integer>();
        var reader = new BufferedReader(new InputStreamReader(in, StandardCharsets.US_ASCII));
        String line;
        int lineNumber = 0;
        while ((line = reader.readLine()) != null) {
            lineNumber++;
            if (line.isBlank()) continue;
            int space = line.indexOf(' ');
            try {
                if (space < 0) throw new IllegalArgumentException("no space");
                byte[] bytes = Base64.getDecoder().decode(line.substring(0, space));
                int rank = Integer.parseInt(line.substring(space + 1).trim());
                if (rank < 0 || bytes.length == 0) throw new IllegalArgumentException("negative rank or empty token");
                if (seen.put(rank, lineNumber) != null)
                    throw new IllegalArgumentException("rank " + rank + " appears twice");
                ranks.put(bytes, rank);
            } catch (IllegalArgumentException e) {
                throw new LlmcException(name + ": line " + lineNumber + ": expected 'base64 rank', found '"
                        + (line.length() > 60 ? line.substring(0, 60) + "..." : line) + "' (" + e.getMessage() + ")");
            }
        }
        if (ranks.isEmpty()) throw new LlmcException(name + ": no tokens found (expected lines of 'base64 rank')");
        // a rank is a token id: the n ranks must be 0..n-1, or ids would have no bytes (a gap) and a huge rank would
        // size the id table; the specials follow at n
        if (seen.size() != ranks.size() || !seen.keySet().stream().allMatch(rank -> rank < ranks.size())) {
            int missing = 0;
            while (seen.containsKey(missing)) missing++;
            int highest =
                    seen.keySet().stream().mapToInt(Integer::intValue).max().orElse(-1);
            throw new LlmcException(
                    "%s: ranks: expected each of 0..%d once (%d tokens), found no rank %d (highest rank %d)"
                            .formatted(name, ranks.size() - 1, ranks.size(), missing, highest));
        }
        return ranks;
    }

    /**
     * Llama 3.1's 256 special tokens, numbered from {@code firstId} (128000 for the real vocabulary): ..., 128004
     * finetune_right_pad_id, 128008 eom_id, 128009 eot_id, 128010 python_tag, then reserved 3..247 up to 128255.
     */
    public static Map<String, Integer> llama3SpecialTokens(int firstId) {
        var names = new ArrayList<>(List.of(
                BEGIN_OF_TEXT,
                END_OF_TEXT,
                "<|reserved_special_token_0|>",
                "<|reserved_special_token_1|>",
                "<|finetune_right_pad_id|>",
                "<|reserved_special_token_2|>",
                START_HEADER,
                END_HEADER,
                "<|eom_id|>",
                EOT,
                "<|python_tag|>"));
        for (int reserved = 3; names.size() < NUM_SPECIAL_TOKENS; reserved++) {
            names.add("<|reserved_special_token_" + reserved + "|>");
        }
        var specials = new LinkedHashMap<String, Integer>();
        for (int i = 0; i < names.size(); i++) specials.put(names.get(i), firstId + i);
        return specials;
    }

    /** Number of ids (regular and special): the model's vocab size. */
    public int vocabSize() {
        return tokenBytes.length;
    }

    /** The id of a special token such as {@link #BEGIN_OF_TEXT}. */
    public int specialToken(String text) {
        Integer id = specialTokens.get(text);
        if (id == null) throw new LlmcException("unknown special token " + text);
        return id;
    }

    public int beginOfText() {
        return specialToken(BEGIN_OF_TEXT);
    }

    public int endOfText() {
        return specialToken(END_OF_TEXT);
    }

    public int endOfTurn() {
        return specialToken(EOT);
    }

    /** Encodes text, treating special-token strings in it as plain text. */
    public int[] encode(String text) {
        var out = new IntList();
        encodeOrdinary(text, out);
        return out.toArray();
    }

    /**
     * How llm.c's {@code dev/data} scripts tokenize for {@code --model llama-3}: {@code <|begin_of_text|>} before
     * every section, the sections encoded without added special tokens (special-token text stays text:
     * {@code split_special_tokens=True}), uint32 shards. The user has this tokenizer's file, so none is written.
     */
    public TextEncoder shardEncoder() {
        return TextEncoder.withoutTokenizerFile(TokenShard.Kind.LLAMA3, beginOfText(), this::encode);
    }

    /** Encodes text in which special-token strings (e.g. {@code <|eot_id|>}) become their ids. */
    public int[] encodeWithSpecialTokens(String text) {
        var out = new IntList();
        if (specialPattern == null) {
            encodeOrdinary(text, out);
            return out.toArray();
        }
        Matcher m = specialPattern.matcher(text);
        int start = 0;
        while (m.find()) {
            encodeOrdinary(text.substring(start, m.start()), out);
            out.add(specialTokens.get(m.group()));
            start = m.end();
        }
        encodeOrdinary(text.substring(start), out);
        return out.toArray();
    }

    private void encodeOrdinary(String text, IntList out) {
        Matcher m = splitPattern.matcher(text);
        while (m.find()) {
            byte[] piece = m.group().getBytes(StandardCharsets.UTF_8);
            Integer whole = ranks.get(new String(piece, StandardCharsets.ISO_8859_1));
            if (whole != null) out.add(whole);
            else bytePairMerge(piece, out);
        }
    }

    /**
     * Merges the bytes of one piece: {@code starts[i]} is where part i begins; {@code pairRank[i]} is the rank of
     * parts i and i+1 joined (MAX_VALUE when that is not a token). Join the lowest pair until none is left.
     */
    private void bytePairMerge(byte[] piece, IntList out) {
        int parts = piece.length;
        int[] starts = new int[parts + 1];
        for (int i = 0; i <= parts; i++) starts[i] = i;
        int[] pairRank = new int[parts];
        for (int i = 0; i + 1 < parts; i++) pairRank[i] = rankOf(piece, starts[i], starts[i + 2]);
        if (parts > 0) pairRank[parts - 1] = Integer.MAX_VALUE;
        while (parts > 1) {
            int best = -1, bestRank = Integer.MAX_VALUE;
            for (int i = 0; i + 1 < parts; i++) {
                if (pairRank[i] < bestRank) {
                    bestRank = pairRank[i];
                    best = i;
                }
            }
            if (best < 0) break;
            // part best absorbs part best+1
            System.arraycopy(starts, best + 2, starts, best + 1, parts - best - 1);
            System.arraycopy(pairRank, best + 2, pairRank, best + 1, parts - best - 2);
            parts--;
            pairRank[best] = best + 1 < parts ? rankOf(piece, starts[best], starts[best + 2]) : Integer.MAX_VALUE;
            if (best > 0) pairRank[best - 1] = rankOf(piece, starts[best - 1], starts[best + 1]);
        }
        for (int i = 0; i < parts; i++) {
            Integer id =
                    ranks.get(new String(piece, starts[i], starts[i + 1] - starts[i], StandardCharsets.ISO_8859_1));
            if (id == null)
                throw new LlmcException("tokenizer has no token for byte sequence "
                        + Arrays.toString(Arrays.copyOfRange(piece, starts[i], starts[i + 1])));
            out.add(id);
        }
    }

    private int rankOf(byte[] piece, int from, int to) {
        Integer rank = ranks.get(new String(piece, from, to - from, StandardCharsets.ISO_8859_1));
        return rank == null ? Integer.MAX_VALUE : rank;
    }

    /** The raw bytes of one token (a piece of UTF-8, maybe not a whole character). */
    public byte[] decodeBytes(int token) {
        if (token < 0 || token >= tokenBytes.length || tokenBytes[token] == null)
            throw new LlmcException(
                    "token id " + token + " is not in the vocabulary (0.." + (tokenBytes.length - 1) + ")");
        return tokenBytes[token].clone();
    }

    /** Decodes tokens to text (invalid UTF-8 becomes U+FFFD). */
    public String decode(int[] tokens) {
        var bytes = new ByteArrayOutputStream();
        for (int token : tokens) bytes.writeBytes(decodeBytes(token));
        return bytes.toString(StandardCharsets.UTF_8);
    }

    /** True for special tokens (begin/end of text, headers, reserved). */
    public boolean isSpecial(int token) {
        return specialById.containsKey(token);
    }

    /** A growable int array. */
    private static final class IntList {
        private int[] values = new int[16];
        private int size;

        void add(int value) {
            if (size == values.length) values = Arrays.copyOf(values, size * 2);
            values[size++] = value;
        }

        int[] toArray() {
            return Arrays.copyOf(values, size);
        }
    }
}
