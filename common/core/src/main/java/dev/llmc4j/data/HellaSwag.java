package dev.llmc4j.data;

import dev.llmc4j.format.Json;
import dev.llmc4j.util.LlmcException;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * HellaSwag's JSONL (one example per line: {@code ctx}, {@code endings} (4 strings), {@code label}, and fields we do
 * not need) turned into llm.c's eval file the way dev/data/hellaswag.py renders it: the context tokens are
 * {@code encode(ctx)} and each completion's {@code encode(" " + ending)} (the space belongs to the completion, as GPT-2's
 * tokenizer expects); example i of the file is line i. The download is the user's: this class only reads the file.
 */
public final class HellaSwag {
    private HellaSwag() {}

    /** Reads the JSONL file and renders every example with the given encoder (GPT-2: tiktoken's encode). */
    public static List<EvalFile.Example> render(Path jsonl, Function<String, int[]> encode) {
        var examples = new ArrayList<EvalFile.Example>();
        try (BufferedReader reader = Files.newBufferedReader(jsonl, StandardCharsets.UTF_8)) {
            String line;
            int lineNumber = 0;
            while ((line = reader.readLine()) != null) {
                lineNumber++;
                if (line.isBlank()) continue;
                examples.add(render(jsonl, lineNumber, examples.size(), line, encode));
            }
        } catch (NoSuchFileException e) {
            throw new LlmcException("HellaSwag file not found: " + jsonl);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + jsonl + ": " + e.getMessage(), e);
        }
        if (examples.isEmpty())
            throw new LlmcException(jsonl + ": expected HellaSwag examples (JSON lines), found none");
        return examples;
    }

    private static EvalFile.Example render(
            Path file, int lineNumber, int index, String line, Function<String, int[]> encode) {
        String where = file + " line " + lineNumber + ": ";
        Map<?, ?> object = Json.parseObjectLine(line, file + " line " + lineNumber);
        if (!(object.get("ctx") instanceof String context))
            throw new LlmcException(where + "field ctx: expected a string");
        if (!(object.get("label") instanceof Long label) || label < 0 || label >= EvalFile.COMPLETIONS)
            throw new LlmcException(where + "field label: expected 0, 1, 2 or 3, found " + object.get("label"));
        if (!(object.get("endings") instanceof List<?> endings)
                || endings.size() != EvalFile.COMPLETIONS
                || !endings.stream().allMatch(e -> e instanceof String))
            throw new LlmcException(where + "field endings: expected 4 strings, found " + object.get("endings"));
        int[][] completions = new int[EvalFile.COMPLETIONS][];
        for (int c = 0; c < EvalFile.COMPLETIONS; c++) completions[c] = encode.apply(" " + endings.get(c));
        return new EvalFile.Example(index, label.intValue(), encode.apply(context), completions);
    }
}
