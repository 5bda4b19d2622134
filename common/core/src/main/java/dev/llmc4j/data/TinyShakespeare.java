package dev.llmc4j.data;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.time.Duration;
import java.util.HexFormat;

/**
 * The tinyshakespeare text (Karpathy's char-rnn {@code input.txt}, 1,115,394 bytes): where it comes from, its
 * SHA-256, and a cached download. Any copy we use, downloaded or given with {@code --input}, must match the hash,
 * so the token counts (32,768 val + 305,260 train) are llm.c's.
 */
public final class TinyShakespeare {
    private TinyShakespeare() {}

    public static final URI SOURCE =
            URI.create("https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt");
    public static final String SHA256 = "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed";
    public static final String FILE_NAME = "input.txt";
    /** llm.c's validation split: the first 32,768 tokens. */
    public static final int VAL_TOKENS = 32_768;

    /** Told how a download goes: bytes so far and the total (-1 when the server does not say). */
    @FunctionalInterface
    public interface Progress {
        void update(long bytesDone, long bytesTotal);

        Progress NONE = (done, total) -> {};
    }

    /** {@code $XDG_CACHE_HOME/llmc4j/tinyshakespeare}, else {@code ~/.cache/llmc4j/tinyshakespeare}. */
    public static Path defaultCacheDir() {
        String xdg = System.getenv("XDG_CACHE_HOME");
        Path base = xdg != null && !xdg.isBlank() ? Path.of(xdg) : Path.of(System.getProperty("user.home"), ".cache");
        return base.resolve("llmc4j").resolve("tinyshakespeare");
    }

    /**
     * The verified text file: {@code input} when given (checked against the hash), else the cached copy in
     * {@code cacheDir}, downloading it first when missing.
     */
    public static Path locate(Path input, Path cacheDir, Progress progress) {
        if (input != null) {
            if (!Files.isRegularFile(input)) throw new LlmcException("--input file not found: " + input);
            verify(input);
            return input;
        }
        Path cached = cacheDir.resolve(FILE_NAME);
        if (!Files.exists(cached)) download(SOURCE, cached, progress);
        verify(cached);
        return cached;
    }

    /** Checks the SHA-256 of a file against tinyshakespeare's. */
    public static void verify(Path file) {
        String found;
        try (InputStream in = Files.newInputStream(file)) {
            var digest = sha256();
            byte[] chunk = new byte[1 << 16];
            for (int n; (n = in.read(chunk)) > 0; ) digest.update(chunk, 0, n);
            found = HexFormat.of().formatHex(digest.digest());
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (!found.equals(SHA256)) {
            throw new LlmcException(
                    "%s: SHA-256: expected %s (char-rnn's tinyshakespeare input.txt), found %s; delete it or pass the right file with --input"
                            .formatted(file, SHA256, found));
        }
    }

    /**
     * Downloads {@code source} to {@code target} (temporary file + rename, so an interrupted download leaves
     * nothing behind). Fails with one message giving both ways out when offline.
     */
    public static void download(URI source, Path target, Progress progress) {
        var client = HttpClient.newBuilder()
                .followRedirects(HttpClient.Redirect.NORMAL)
                .connectTimeout(Duration.ofSeconds(20))
                .build();
        var request = HttpRequest.newBuilder(source)
                .timeout(Duration.ofMinutes(5))
                .GET()
                .build();
        try {
            HttpResponse<InputStream> response = client.send(request, HttpResponse.BodyHandlers.ofInputStream());
            try (InputStream body = response.body()) {
                if (response.statusCode() != 200) {
                    throw new IOException("HTTP status " + response.statusCode());
                }
                long total =
                        response.headers().firstValueAsLong("content-length").orElse(-1);
                AtomicFiles.write(target, channel -> {
                    byte[] chunk = new byte[1 << 16];
                    long done = 0;
                    progress.update(0, total);
                    for (int n; (n = body.read(chunk)) > 0; ) {
                        var buffer = ByteBuffer.wrap(chunk, 0, n);
                        while (buffer.hasRemaining()) channel.write(buffer);
                        done += n;
                        progress.update(done, total);
                    }
                });
            }
        } catch (IOException | LlmcException e) {
            throw offline(source, target, e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new LlmcException("download of " + source + " interrupted");
        }
    }

    private static LlmcException offline(URI source, Path target, Exception cause) {
        String reason = cause instanceof java.net.ConnectException || cause instanceof java.net.UnknownHostException
                ? "no connection"
                : cause.getMessage() != null
                        ? cause.getMessage()
                        : cause.getClass().getSimpleName();
        return new LlmcException(
                ("cannot download tinyshakespeare from %s (%s). Either pass a copy with --input FILE, "
                                + "or download it yourself to %s (for example: curl -L -o %s %s)")
                        .formatted(source, reason, target, target, source),
                cause);
    }

    private static MessageDigest sha256() {
        try {
            return MessageDigest.getInstance("SHA-256");
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("every JDK has SHA-256", e);
        }
    }
}
