package dev.llmc4j.testing;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.function.Function;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Damages a valid file in every way a hostile user (or a bad disk) would, and runs each damaged copy through the
 * public reading code. A case passes when the reader either accepts the file or refuses it with the project's own
 * error ({@link LlmcException}) on one line that names the file; it fails on any other exception, on an error
 * spread over several lines or not naming the file, on a reader that runs past {@link #TIMEOUT_SECONDS} (a hang),
 * or on a reader whose thread allocates more heap than the file could justify ({@link #allocationLimit}).
 *
 * <p>The damage, all of it drawn from one seeded {@link Random} (the same seed gives the same cases):
 * <ul>
 * <li>truncation: the empty file, cuts at and around the header sizes, half, one byte short; and extra bytes;</li>
 * <li>each named field set to 0, 1, -1, the type's minimum and maximum, huge values, and its own value plus
 *     one and doubled (overflowing); float fields also to NaN and the infinities;</li>
 * <li>random bytes: 1 to 8 bytes overwritten, half the cases inside the first 2048 bytes (the headers);</li>
 * <li>text formats: every kind of number replaced by 0, -1, the int and long limits, one past them and a
 *     20-digit number, lines deleted and duplicated.</li>
 * </ul>
 */
public final class FormatFuzzer {

    /** A reader whose run past this counts as a hang. */
    public static final int TIMEOUT_SECONDS = 10;

    /** How a field is stored. */
    public enum Type {
        INT32,
        INT64,
        FLOAT32
    }

    /** A little-endian field of the file at a byte offset. */
    public record Field(String name, long offset, Type type) {
        public static Field int32(String name, long offset) {
            return new Field(name, offset, Type.INT32);
        }

        public static Field int64(String name, long offset) {
            return new Field(name, offset, Type.INT64);
        }

        public static Field float32(String name, long offset) {
            return new Field(name, offset, Type.FLOAT32);
        }

        /** Header slots {@code [from, to)} of an llm.c int32[256] header starting at {@code base}. */
        public static List<Field> slots(long base, int from, int to) {
            var fields = new ArrayList<Field>();
            for (int slot = from; slot < to; slot++) fields.add(int32("header[" + slot + "]", base + 4L * slot));
            return fields;
        }
    }

    /** The public reading code under test: reads the file at the path, or throws. */
    @FunctionalInterface
    public interface Reader {
        void read(Path file) throws Exception;
    }

    /** A case that did not end as it must: what was done to the file, and what happened. */
    public record Failure(String mutation, String problem) {
        @Override
        public String toString() {
            return mutation + " -> " + problem;
        }
    }

    /** The cases of one format: how many ran, how many the reader accepted, and the failures. */
    public record Report(String format, int cases, int accepted, List<Failure> failures) {
        public String summary() {
            return "%-22s %4d cases, %4d accepted, %4d refused with one line, %3d failed"
                    .formatted(format, cases, accepted, cases - accepted - failures.size(), failures.size());
        }
    }

    /** Prints the report's summary (the test's record of the counts) and fails listing every failed case, if any. */
    public static void assertNoFailures(Report report) {
        System.out.println("[fuzz] " + report.summary());
        if (!report.failures().isEmpty())
            throw new AssertionError(report.summary() + "\n  "
                    + String.join(
                            "\n  ",
                            report.failures().stream().map(Failure::toString).toList()));
    }

    private final Path folder;
    private final Random random;
    private final int randomCases;
    private ExecutorService worker = newWorker();

    /**
     * @param folder      where the damaged copies are written (a test's temporary folder)
     * @param seed        the seed of every random choice
     * @param randomCases how many random-byte (and random-number) cases per format
     */
    public FormatFuzzer(Path folder, long seed, int randomCases) {
        this.folder = folder;
        this.random = new Random(seed);
        this.randomCases = randomCases;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Binary formats

    /**
     * Runs every binary mutation of {@code valid} through {@code reader}; the damaged file is written as
     * {@code folder/fileName}, next to whatever else the reader needs there.
     */
    public Report fuzzBinary(String format, String fileName, byte[] valid, List<Field> fields, Reader reader) {
        var cases = new LinkedHashMap<String, byte[]>();
        addTruncations(cases, valid);
        for (Field field : fields) {
            for (var value : fieldValues(field, valid)) {
                byte[] bytes = valid.clone();
                var buffer = ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN);
                int at = Math.toIntExact(field.offset());
                switch (value) {
                    case Integer i -> buffer.putInt(at, i);
                    case Long l -> buffer.putLong(at, l);
                    case Float f -> buffer.putFloat(at, f);
                    default -> throw new IllegalStateException();
                }
                cases.putIfAbsent(field.name() + " = " + value, bytes);
            }
        }
        for (int i = 0; i < randomCases; i++) {
            byte[] bytes = valid.clone();
            int count = 1 + random.nextInt(8);
            int range = i % 2 == 0 ? Math.min(bytes.length, 2048) : bytes.length;
            var where = new StringBuilder();
            for (int k = 0; k < count; k++) {
                int at = random.nextInt(range);
                bytes[at] = (byte) random.nextInt(256);
                where.append(k == 0 ? "" : ",").append(at);
            }
            cases.putIfAbsent("random bytes at " + where, bytes);
        }
        return run(format, fileName, cases, reader);
    }

    private void addTruncations(Map<String, byte[]> cases, byte[] valid) {
        int size = valid.length;
        var lengths = new ArrayList<>(List.of(
                0, 1, 3, 7, 8, 9, 16, 1023, 1024, 1025, 1028, 2047, 2048, 2052, size / 2, size - 8, size - 4,
                size - 1));
        for (int i = 0; i < 4; i++) lengths.add(random.nextInt(Math.max(1, size)));
        for (int length : lengths) {
            if (length >= 0 && length < size)
                cases.putIfAbsent("truncated to " + length + " bytes", Arrays.copyOf(valid, length));
        }
        cases.put("one extra byte", Arrays.copyOf(valid, size + 1));
        cases.put("4096 extra bytes", Arrays.copyOf(valid, size + 4096));
    }

    private static List<Object> fieldValues(Field field, byte[] valid) {
        var buffer = ByteBuffer.wrap(valid).order(ByteOrder.LITTLE_ENDIAN);
        int at = Math.toIntExact(field.offset());
        return switch (field.type()) {
            case INT32 -> {
                int own = buffer.getInt(at);
                yield List.of(
                        0,
                        1,
                        -1,
                        Integer.MIN_VALUE,
                        Integer.MAX_VALUE,
                        1 << 30,
                        65536,
                        1 << 20,
                        own + 1,
                        own - 1,
                        own * 2,
                        own * 1000,
                        own | 0x8000_0000);
            }
            case INT64 -> {
                long own = buffer.getLong(at);
                yield List.of(
                        0L,
                        1L,
                        -1L,
                        Long.MIN_VALUE,
                        Long.MAX_VALUE,
                        1L << 31,
                        1L << 32,
                        1L << 62,
                        own + 1,
                        own - 1,
                        own * 2,
                        own | Long.MIN_VALUE);
            }
            case FLOAT32 -> {
                float own = buffer.getFloat(at);
                yield List.of(
                        0f,
                        -1f,
                        -own,
                        Float.NaN,
                        Float.POSITIVE_INFINITY,
                        Float.NEGATIVE_INFINITY,
                        Float.MAX_VALUE,
                        1e30f,
                        1e-30f,
                        own * 1000,
                        Float.MIN_VALUE);
            }
        };
    }

    // ---------------------------------------------------------------------------------------------------------
    // Text formats

    private static final Pattern NUMBER = Pattern.compile("-?\\d+(\\.\\d+)?([eE][-+]?\\d+)?");
    private static final List<String> NUMBER_REPLACEMENTS = List.of(
            "0",
            "-1",
            "1",
            "2147483647",
            "2147483648",
            "-2147483649",
            "9223372036854775807",
            "9223372036854775808",
            "99999999999999999999",
            "1e400",
            "0.5");

    /**
     * Runs text mutations of {@code text} (numbers replaced, lines deleted and duplicated, random characters,
     * truncation) through {@code reader}; {@code assemble} turns the mutated text into the file's bytes (for a
     * file that is text plus a binary part, such as a safetensors header).
     */
    public Report fuzzText(
            String format, String fileName, String text, Function<String, byte[]> assemble, Reader reader) {
        var cases = new LinkedHashMap<String, byte[]>();
        var numbers = new ArrayList<int[]>();
        Matcher matcher = NUMBER.matcher(text);
        while (matcher.find()) numbers.add(new int[] {matcher.start(), matcher.end()});
        // every number when there are few; a seeded sample of them otherwise
        List<int[]> chosen = numbers.size() <= 40 ? numbers : sample(numbers, 40);
        for (int[] number : chosen) {
            for (String replacement : NUMBER_REPLACEMENTS) {
                String mutated = text.substring(0, number[0]) + replacement + text.substring(number[1]);
                cases.putIfAbsent(
                        "number at " + number[0] + " (" + text.substring(number[0], number[1]) + ") = " + replacement,
                        assemble.apply(mutated));
            }
        }
        List<String> lines = text.lines().toList();
        for (int i = 0; i < Math.min(lines.size(), randomCases / 4 + 1); i++) {
            int line = random.nextInt(lines.size());
            var deleted = new ArrayList<>(lines);
            deleted.remove(line);
            cases.putIfAbsent("line " + (line + 1) + " deleted", assemble.apply(String.join("\n", deleted) + "\n"));
            var duplicated = new ArrayList<>(lines);
            duplicated.add(line, lines.get(line));
            cases.putIfAbsent(
                    "line " + (line + 1) + " duplicated", assemble.apply(String.join("\n", duplicated) + "\n"));
        }
        for (int i = 0; i < randomCases; i++) {
            char[] chars = text.toCharArray();
            int count = 1 + random.nextInt(4);
            var where = new StringBuilder();
            for (int k = 0; k < count && chars.length > 0; k++) {
                int at = random.nextInt(chars.length);
                chars[at] = (char) (random.nextBoolean() ? 0x20 + random.nextInt(0x5F) : random.nextInt(0x80));
                where.append(k == 0 ? "" : ",").append(at);
            }
            cases.putIfAbsent("random characters at " + where, assemble.apply(new String(chars)));
        }
        for (int length : new int[] {0, 1, text.length() / 3, text.length() / 2, text.length() - 1}) {
            if (length >= 0 && length < text.length())
                cases.putIfAbsent("text cut to " + length + " characters", assemble.apply(text.substring(0, length)));
        }
        return run(format, fileName, cases, reader);
    }

    /** UTF-8 bytes of the text, for plain text files. */
    public static byte[] utf8(String text) {
        return text.getBytes(StandardCharsets.UTF_8);
    }

    private List<int[]> sample(List<int[]> all, int count) {
        var copy = new ArrayList<>(all);
        var out = new ArrayList<int[]>();
        for (int i = 0; i < count; i++) out.add(copy.remove(random.nextInt(copy.size())));
        return out;
    }

    // ---------------------------------------------------------------------------------------------------------
    // Running the cases

    private Report run(String format, String fileName, Map<String, byte[]> cases, Reader reader) {
        Path file = folder.resolve(fileName);
        var failures = new ArrayList<Failure>();
        int accepted = 0;
        for (var entry : cases.entrySet()) {
            try {
                Files.write(file, entry.getValue());
            } catch (IOException e) {
                throw new UncheckedIOException(e);
            }
            String problem = runOne(file, entry.getValue().length, reader);
            if (problem == null) accepted++;
            else if (!problem.isEmpty()) failures.add(new Failure(entry.getKey(), problem));
        }
        return new Report(format, cases.size(), accepted, failures);
    }

    /**
     * Heap a reader may allocate while reading a file of {@code fileBytes}: a few copies of the file and a fixed
     * allowance for the small objects every reader makes.
     */
    public static long allocationLimit(long fileBytes) {
        return 8 * fileBytes + (32L << 20);
    }

    /** null: accepted; "": refused as it must be; otherwise what went wrong. */
    private String runOne(Path file, long fileBytes, Reader reader) {
        Future<Object[]> result = worker.submit(() -> {
            var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long before = threads.getCurrentThreadAllocatedBytes();
            Throwable thrown = null;
            try {
                reader.read(file);
            } catch (Throwable t) {
                thrown = t;
            }
            return new Object[] {thrown, threads.getCurrentThreadAllocatedBytes() - before};
        });
        Object[] outcome;
        try {
            outcome = result.get(TIMEOUT_SECONDS, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            result.cancel(true);
            worker.shutdownNow();
            worker = newWorker(); // the stuck thread is a daemon; carry on with a fresh one
            return "no answer within " + TIMEOUT_SECONDS + " s (a hang)";
        } catch (InterruptedException | ExecutionException e) {
            throw new IllegalStateException(e);
        }
        Throwable thrown = (Throwable) outcome[0];
        long allocated = (long) outcome[1];
        if (allocated > allocationLimit(fileBytes))
            return "allocated %,d bytes of heap reading a file of %,d bytes".formatted(allocated, fileBytes);
        if (thrown == null) return null;
        if (!(thrown instanceof LlmcException)) return describe(thrown);
        String message = thrown.getMessage();
        if (message == null || message.contains("\n")) return "not one line: " + describe(thrown);
        if (!message.contains(file.getFileName().toString())) return "does not name the file: " + describe(thrown);
        return "";
    }

    private static String describe(Throwable t) {
        var where = t.getStackTrace().length > 0 ? " at " + t.getStackTrace()[0] : "";
        String message = String.valueOf(t.getMessage());
        if (message.length() > 200) message = message.substring(0, 200) + "...";
        return t.getClass().getSimpleName() + ": " + message + where;
    }

    private static ExecutorService newWorker() {
        return Executors.newSingleThreadExecutor(task -> {
            var thread = new Thread(task, "format-fuzzer");
            thread.setDaemon(true);
            return thread;
        });
    }
}
