package dev.llmc4j.cli.monitor;

import dev.llmc4j.format.Json;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.WebSocket;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionStage;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.function.Predicate;

/**
 * A real browser for the page's tests: Debian's headless Chromium, driven over the DevTools protocol (a WebSocket,
 * the JDK's own client, one connection to the browser with the page attached "flat"). It evaluates JavaScript in the page and takes screenshots. {@link #find()} is empty where
 * Chromium is not installed (the tests then skip; CI installs it).
 */
final class HeadlessChromium implements AutoCloseable {

    private final Process process;
    private final WebSocket socket;
    private String session; // the page's DevTools session; null: commands to the browser
    private final BlockingQueue<Map<String, Object>> replies = new LinkedBlockingQueue<>();
    private final AtomicInteger ids = new AtomicInteger();
    private final List<String> output = new ArrayList<>();

    /** The chromium command on the PATH, if any. */
    static Optional<Path> find() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(":")) {
            for (String name : List.of("chromium", "chromium-browser")) {
                Path candidate = Path.of(dir, name);
                if (Files.isExecutable(candidate)) return Optional.of(candidate);
            }
        }
        return Optional.empty();
    }

    /** Starts Chromium with a fresh profile in {@code profile} and opens {@code url} in a page of width x height. */
    HeadlessChromium(Path chromium, String url, Path profile, int width, int height) throws Exception {
        process = new ProcessBuilder(
                        chromium.toString(),
                        "--headless",
                        "--no-sandbox",
                        "--disable-gpu",
                        "--disable-background-networking",
                        "--disable-component-update",
                        "--disable-sync",
                        "--no-first-run",
                        "--hide-scrollbars",
                        "--user-data-dir=" + profile,
                        "--remote-debugging-port=0",
                        "--window-size=" + width + "," + height,
                        "about:blank")
                .redirectErrorStream(true)
                .start();
        try {
            socket = connect();
            // our own page, attached in "flat" mode: its commands go through the browser's socket with a session id
            var target = call(
                    "Target.createTarget", Map.of("url", url, "newWindow", true, "width", width, "height", height));
            session =
                    (String) call("Target.attachToTarget", Map.of("targetId", target.get("targetId"), "flatten", true))
                            .get("sessionId");
        } catch (Exception e) {
            process.destroyForcibly();
            throw e;
        }
    }

    /** The browser's DevTools socket, at the address Chromium prints when it is ready. */
    private WebSocket connect() throws Exception {
        var devtools = new CompletableFuture<String>();
        Thread.ofVirtual()
                .start(
                        () -> { // keep reading Chromium's output, so that it never blocks on a full pipe
                            try (var lines = new BufferedReader(
                                    new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
                                for (String line; (line = lines.readLine()) != null; ) {
                                    synchronized (output) {
                                        output.add(line);
                                    }
                                    if (line.startsWith("DevTools listening on "))
                                        devtools.complete(line.substring("DevTools listening on ".length()));
                                }
                            } catch (IOException ignored) {
                                // the process ended
                            }
                            devtools.completeExceptionally(new IllegalStateException("chromium exited: " + output()));
                        });
        URI browser = URI.create(devtools.get(120, TimeUnit.SECONDS));
        var http = HttpClient.newBuilder()
                .version(HttpClient.Version.HTTP_1_1)
                .connectTimeout(Duration.ofSeconds(30))
                .build();
        try {
            return http.newWebSocketBuilder()
                    .buildAsync(browser, new Listener())
                    .get(120, TimeUnit.SECONDS);
        } catch (TimeoutException e) {
            throw new IllegalStateException("no DevTools connection to " + browser + "; chromium said: " + output(), e);
        }
    }

    /** Complete DevTools messages; replies (with an id) go to the queue, events are dropped. */
    private final class Listener implements WebSocket.Listener {
        private final StringBuilder partial = new StringBuilder();

        @Override
        @SuppressWarnings("unchecked")
        public CompletionStage<?> onText(WebSocket webSocket, CharSequence data, boolean last) {
            partial.append(data);
            if (last) {
                var message = (Map<String, Object>) Json.parse(partial.toString());
                partial.setLength(0);
                if (message.containsKey("id")) replies.add(message); // events (no id) are not needed
            }
            webSocket.request(1);
            return null;
        }
    }

    /** One DevTools command; returns its result. */
    @SuppressWarnings("unchecked")
    Map<String, Object> call(String method, Map<String, Object> params) throws Exception {
        int id = ids.incrementAndGet();
        var command = new LinkedHashMap<String, Object>();
        command.put("id", id);
        command.put("method", method);
        command.put("params", params);
        if (session != null) command.put("sessionId", session);
        socket.sendText(JsonText.of(command), true).get(30, TimeUnit.SECONDS);
        while (true) {
            var reply = replies.poll(60, TimeUnit.SECONDS);
            if (reply == null) throw new IllegalStateException(method + ": no reply from chromium");
            if (((Number) reply.get("id")).intValue() != id) continue;
            if (reply.containsKey("error")) throw new IllegalStateException(method + ": " + reply.get("error"));
            return (Map<String, Object>) reply.get("result");
        }
    }

    /** The value of a JavaScript expression in the page (JSON-like: numbers, strings, booleans, lists, maps). */
    Object evaluate(String expression) throws Exception {
        var result = call("Runtime.evaluate", Map.of("expression", expression, "returnByValue", true));
        if (result.containsKey("exceptionDetails"))
            throw new IllegalStateException(expression + ": " + result.get("exceptionDetails"));
        return ((Map<?, ?>) result.get("result")).get("value");
    }

    /** Evaluates until the value passes the test (every 100 ms, at most {@code timeout}); returns it. */
    Object waitFor(String expression, Predicate<Object> test, Duration timeout) throws Exception {
        long deadline = System.nanoTime() + timeout.toNanos();
        Object value = null;
        while (System.nanoTime() < deadline) {
            try {
                value = evaluate(expression);
                if (test.test(value)) return value;
            } catch (IllegalStateException notYet) {
                value = notYet.getMessage(); // e.g. the page's script has not run yet
            }
            Thread.sleep(100);
        }
        throw new AssertionError("waited " + timeout + " for " + expression + "; last value: " + value);
    }

    /** A PNG of the whole page. */
    byte[] screenshot() throws Exception {
        var result = call("Page.captureScreenshot", Map.of("format", "png", "captureBeyondViewport", true));
        return Base64.getDecoder().decode((String) result.get("data"));
    }

    private String output() {
        synchronized (output) {
            return String.join("\n", output);
        }
    }

    /**
     * Ends the browser and every process it started: the renderer and helper processes can outlive the browser
     * process by a moment and keep writing into the profile folder, which the test's temporary folder then fails to
     * delete. So all of them are ended and waited for.
     */
    @Override
    public void close() throws Exception {
        if (socket != null) socket.abort();
        List<ProcessHandle> children = process.descendants().toList();
        process.destroy();
        if (!process.waitFor(10, TimeUnit.SECONDS)) process.destroyForcibly().waitFor(10, TimeUnit.SECONDS);
        for (ProcessHandle child : children) child.destroyForcibly();
        for (ProcessHandle child : children) {
            try {
                child.onExit().get(10, TimeUnit.SECONDS);
            } catch (java.util.concurrent.TimeoutException stillRunning) {
                // a child that will not end is left to the operating system; the test itself has finished
            }
        }
    }
}
