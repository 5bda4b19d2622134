package dev.llmc4j.data;

import dev.llmc4j.format.Json;
import dev.llmc4j.util.LlmcException;
import java.io.BufferedInputStream;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Reads a corpus as a stream of documents, never holding more than one document (at most {@link #MAX_SECTION_BYTES})
 * in memory, and remembering where each starts so that a later run can continue from there.
 * <ul>
 * <li>Text files: the rule of {@link DatasetBuilder} (llm.c's tinyshakespeare.py): each file is cut at every blank
 *     line into sections; every section but a file's last gets its "\n\n" back; line endings become "\n" (CRLF and
 *     CR, as Python's text mode). A section longer than {@link #MAX_SECTION_BYTES} is cut before a space that follows
 *     a non-space byte (a place where neither GPT-2's nor Llama 3's pre-tokenizer joins the two sides), so one huge
 *     section cannot fill memory.</li>
 * <li>JSON lines ({@code --jsonl FIELD}): each non-blank line is one document, the string field FIELD (as llm.c's
 *     fineweb.py takes {@code doc["text"]}).</li>
 * </ul>
 * Every document is strict UTF-8: a malformed byte is an error naming the file and the document's byte offset.
 */
public final class CorpusReader implements AutoCloseable {

    /** Where a document starts: input file index and byte offset in that file (of the raw, un-normalised bytes). */
    public record Position(int file, long offset) {}

    /** One document and where it starts. */
    public record Document(Position start, String text) {}

    public static final int MAX_SECTION_BYTES = 1 << 20;

    private final List<Path> files;
    private final String jsonField; // null: text files
    private int fileIndex;
    private InputStream in;
    private long offset; // raw bytes of the current file consumed so far
    private int pending = -1; // one byte read ahead (CR handling), or -1
    private boolean fileDone = true;

    /** Reads {@code files} from {@code start}; {@code jsonField} null for text files, else the JSONL field. */
    public CorpusReader(List<Path> files, String jsonField, Position start) {
        this.files = List.copyOf(files);
        this.jsonField = jsonField;
        this.fileIndex = start.file();
        if (fileIndex < files.size()) open(start.offset());
    }

    private void open(long skip) {
        Path file = files.get(fileIndex);
        try {
            in = new BufferedInputStream(Files.newInputStream(file), 1 << 16);
            in.skipNBytes(skip);
        } catch (NoSuchFileException e) {
            throw new LlmcException("text file not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        offset = skip;
        pending = -1;
        fileDone = false;
    }

    /** The next document, or null at the end of the last file. */
    public Document next() {
        while (fileIndex < files.size()) {
            if (!fileDone) {
                Document document = jsonField == null ? nextSection() : nextJsonLine();
                if (document != null) return document;
            }
            closeFile();
            fileIndex++;
            if (fileIndex < files.size()) open(0);
        }
        return null;
    }

    /** Where the next document will start (for resuming). */
    public Position position() {
        if (fileDone) return new Position(fileIndex + 1, 0);
        return new Position(fileIndex, offset - (pending >= 0 ? 1 : 0));
    }

    private int read() throws IOException {
        if (pending >= 0) {
            int b = pending;
            pending = -1;
            return b;
        }
        int b = in.read();
        if (b >= 0) offset++;
        return b;
    }

    /** One byte of the file with CRLF and CR turned into LF, or -1 at its end. */
    private int readNormalised() throws IOException {
        int b = read();
        if (b != '\r') return b;
        int next = read();
        if (next != '\n' && next >= 0) pending = next;
        return '\n';
    }

    private Document nextSection() {
        var start = position();
        var bytes = new ByteArrayOutputStream();
        try {
            boolean newline = false;
            while (true) {
                int b = readNormalised();
                if (b < 0) { // the file's last section, without a "\n\n" (it may be empty, as in Python's split)
                    if (newline) bytes.write('\n');
                    fileDone = true;
                    return new Document(start, decode(bytes, start));
                }
                if (b == '\n' && newline) {
                    bytes.write('\n');
                    bytes.write('\n');
                    return new Document(start, decode(bytes, start));
                }
                if (newline) bytes.write('\n');
                newline = b == '\n';
                if (!newline) {
                    // a very long section: cut before a space that follows a non-space byte
                    if (b == ' ' && bytes.size() >= MAX_SECTION_BYTES && !isSpace(lastByte(bytes))) {
                        pending = ' ';
                        return new Document(start, decode(bytes, start));
                    }
                    bytes.write(b);
                }
            }
        } catch (IOException e) {
            throw new LlmcException("cannot read " + files.get(fileIndex) + ": " + e.getMessage(), e);
        }
    }

    private static int lastByte(ByteArrayOutputStream bytes) {
        byte[] all = bytes.toByteArray(); // only on the rare over-long section
        return all.length == 0 ? ' ' : all[all.length - 1] & 0xff;
    }

    private static boolean isSpace(int b) {
        return b == ' ' || b == '\t' || b == '\n' || b == '\r' || b == 0x0b || b == 0x0c;
    }

    private Document nextJsonLine() {
        try {
            while (true) {
                var start = position();
                var bytes = new ByteArrayOutputStream();
                int b;
                while ((b = read()) >= 0 && b != '\n') bytes.write(b);
                if (b < 0) fileDone = true;
                String line = decode(bytes, start);
                if (line.isBlank()) {
                    if (fileDone) return null;
                    continue;
                }
                return new Document(start, field(line, start));
            }
        } catch (IOException e) {
            throw new LlmcException("cannot read " + files.get(fileIndex) + ": " + e.getMessage(), e);
        }
    }

    private String field(String line, Position start) {
        String where = files.get(start.file()) + " at byte " + start.offset();
        Map<?, ?> object = Json.parseObjectLine(line, where);
        if (!(object.get(jsonField) instanceof String text))
            throw new LlmcException(
                    where + ": field " + jsonField + ": expected a string, found " + object.get(jsonField));
        return text;
    }

    private String decode(ByteArrayOutputStream bytes, Position start) {
        try {
            return StandardCharsets.UTF_8
                    .newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(bytes.toByteArray()))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new LlmcException("%s: not valid UTF-8 text: malformed bytes in the document at byte %d"
                    .formatted(files.get(start.file()), start.offset()));
        }
    }

    private void closeFile() {
        if (in == null) return;
        try {
            in.close();
        } catch (IOException ignored) {
            // read-only: nothing was lost
        }
        in = null;
    }

    @Override
    public void close() {
        closeFile();
    }
}
