package dev.llmc4j.cli.monitor;

import com.sun.net.httpserver.HttpExchange;
import com.sun.net.httpserver.HttpServer;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.util.List;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

/**
 * The live page of a run, served by the JDK's own HTTP server: the page's files, {@code state.json} (the state
 * now) and {@code events}, a server-sent event stream that starts with the whole state and then sends each change.
 * Read-only: GET and HEAD only. Each request runs on its own virtual thread, so a page holding its event stream
 * open costs no platform thread, and the training thread only ever adds to queues.
 */
public final class MonitorServer implements AutoCloseable {

    /** A comment line every so often, so proxies and browsers keep an idle stream open. */
    private static final long KEEP_ALIVE_SECONDS = 15;

    private static final String CLOSE = "";

    private final RunMonitor monitor;
    private final HttpServer server;
    private final ExecutorService threads = Executors.newVirtualThreadPerTaskExecutor();
    private final List<BlockingQueue<String>> streams = new CopyOnWriteArrayList<>();

    /** Serves {@code monitor} on bind:port (port 0: any free port) until {@link #close()}. */
    public MonitorServer(RunMonitor monitor, String bind, int port) {
        this.monitor = monitor;
        try {
            this.server = HttpServer.create(new InetSocketAddress(bind, port), 0);
        } catch (IOException e) {
            throw new LlmcException("--ui: cannot serve on %s:%d: %s".formatted(bind, port, e.getMessage()), e);
        }
        server.setExecutor(threads);
        server.createContext("/", this::handle);
        server.start();
    }

    /** The address a browser opens. */
    public String url() {
        var address = server.getAddress();
        String host = address.getAddress().isAnyLocalAddress() ? "localhost" : address.getHostString();
        return "http://" + (host.contains(":") ? "[" + host + "]" : host) + ":" + address.getPort() + "/";
    }

    public int port() {
        return server.getAddress().getPort();
    }

    private void handle(HttpExchange exchange) throws IOException {
        try (exchange) {
            String method = exchange.getRequestMethod();
            if (!method.equals("GET") && !method.equals("HEAD")) {
                exchange.getResponseHeaders().set("Allow", "GET, HEAD");
                exchange.sendResponseHeaders(405, -1);
                return;
            }
            String name = exchange.getRequestURI().getPath().substring(1);
            if (name.isEmpty()) name = "index.html";
            if (name.equals("events")) {
                stream(exchange);
            } else if (name.equals("state.json")) {
                send(
                        exchange,
                        "application/json; charset=utf-8",
                        monitor.snapshot().getBytes(StandardCharsets.UTF_8));
            } else if (name.equals("state.js")) { // the report puts the state here; live, the page reads events
                byte[] live = "window.LLMC_LIVE = true;\n".getBytes(StandardCharsets.UTF_8);
                send(exchange, MonitorAssets.contentType(name), live);
            } else if (MonitorAssets.FILES.contains(name)) {
                send(exchange, MonitorAssets.contentType(name), MonitorAssets.read(name));
            } else {
                send404(exchange);
            }
        }
    }

    private static void send(HttpExchange exchange, String type, byte[] body) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", type);
        exchange.getResponseHeaders().set("Cache-Control", "no-store");
        boolean head = exchange.getRequestMethod().equals("HEAD");
        exchange.sendResponseHeaders(200, head ? -1 : body.length);
        if (!head) exchange.getResponseBody().write(body);
    }

    private static void send404(HttpExchange exchange) throws IOException {
        exchange.sendResponseHeaders(404, -1);
    }

    /** Server-sent events until the run ends, the page goes away or the server closes. */
    private void stream(HttpExchange exchange) throws IOException {
        exchange.getResponseHeaders().set("Content-Type", "text/event-stream; charset=utf-8");
        exchange.getResponseHeaders().set("Cache-Control", "no-store");
        exchange.sendResponseHeaders(200, 0);
        var queue = new LinkedBlockingQueue<String>();
        streams.add(queue);
        OutputStream body = exchange.getResponseBody();
        try {
            String frame = monitor.subscribe(queue);
            while (true) {
                body.write(frame.getBytes(StandardCharsets.UTF_8));
                body.flush();
                if (frame.startsWith("event: end\n")) return;
                frame = queue.poll(KEEP_ALIVE_SECONDS, TimeUnit.SECONDS);
                if (frame == null) frame = ": keep-alive\n\n";
                else if (frame == CLOSE) return;
            }
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        } catch (IOException gone) {
            // the page was closed: nothing to do
        } finally {
            monitor.unsubscribe(queue);
            streams.remove(queue);
        }
    }

    /** Ends the open event streams (after the events already queued) and stops serving. */
    @Override
    public void close() {
        for (var queue : streams) queue.offer(CLOSE);
        server.stop(1);
        threads.shutdownNow();
    }
}
