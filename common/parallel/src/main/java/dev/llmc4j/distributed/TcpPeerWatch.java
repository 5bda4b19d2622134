package dev.llmc4j.distributed;

import dev.llmc4j.util.LlmcException;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.OutputStreamWriter;
import java.io.Writer;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.net.SocketTimeoutException;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.Map;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * The {@code -pi tcp} liveness channel: a star around rank 0. Rank 0 listens on port 12346 (the NCCL id's port plus
 * one; the id's socket closes once the id is handed out) and every other rank keeps one connection to it for the
 * whole run. The connections carry lines of text:
 * <pre>
 * rank r -&gt; 0     hello r             once, on connecting
 * rank r -&gt; 0     abort r message     rank r is failing; rank 0 relays the same line to every other rank
 * rank 0 -&gt; r     lost q what         rank 0 saw rank q vanish ("closed its connection without saying goodbye",
 *                                     "stopped answering (nothing over TCP for 60 s)")
 * both ways       ping                every timeout / 5 (at most every 5 s): "still here", nothing else
 * both ways       bye                 a clean end; the connection closes after it
 * </pre>
 * The kernel closes a dead process's sockets, so a rank killed with SIGKILL still shows up as an end of stream, and
 * one without a "bye" before it is a failure. A machine that vanishes without closing anything (power, a cut
 * network, a hung kernel) sends no end of stream; its pings stop instead. Every connection has a read timeout of
 * the timeout (60 s): a side that has read nothing at all from its peer for that long counts the peer as failed.
 * The pings come from a thread of their own, so a long step or a checkpoint does not delay them. A rank other than
 * 0 that loses rank 0, either way, stops too.
 *
 * <p>One daemon thread reads each connection (rank 0: one per peer, plus one accepting them), and one sends the
 * pings. A failure is handed to {@code onFailure} once; after that, or after {@link #reportFailure} or
 * {@link #close}, nothing more is reported.
 */
public final class TcpPeerWatch implements PeerWatch {

    /** Rank 0's port for the channel: one above the NCCL id's. */
    public static final int DEFAULT_PORT = NcclIdExchange.DEFAULT_PORT + 1;

    static final String NO_GOODBYE = "closed its connection without saying goodbye";

    private final int rank;
    private final int size;
    private final int port;
    private final Duration timeout; // for connecting, and for a silent peer
    private final Consumer<Failure> onFailure;
    private final AtomicBoolean over = new AtomicBoolean(); // a failure seen, reportFailure or close
    private final Map<Integer, Link> links = new ConcurrentHashMap<>(); // open connections by peer rank
    private final Set<Integer> joined = ConcurrentHashMap.newKeySet(); // rank 0: every rank that said hello
    private final ServerSocket server; // rank 0 only
    private final CountDownLatch stopPinging = new CountDownLatch(1); // wakes the ping thread for close

    /**
     * Rank 0 binds {@code port} (0: any free one, see {@link #port()}) and accepts the others in the background;
     * a rank that has not connected within {@code timeout} counts as failed. Any other rank connects to
     * {@code host:port}, retrying until rank 0 listens or {@code timeout} passes (then an LlmcException). Once
     * connected, a peer that sends nothing (not even a ping) for {@code timeout} counts as failed.
     */
    public TcpPeerWatch(int rank, int size, String host, int port, Duration timeout, Consumer<Failure> onFailure) {
        this.rank = rank;
        this.size = size;
        this.timeout = timeout;
        this.onFailure = onFailure;
        if (rank == 0) {
            try {
                server = new ServerSocket();
                server.setReuseAddress(true);
                server.bind(new InetSocketAddress(port));
            } catch (IOException e) {
                throw new LlmcException(
                        "-pi tcp: rank 0 cannot listen on port " + port + " for the other ranks' liveness connections: "
                                + e.getMessage(),
                        e);
            }
            this.port = server.getLocalPort();
            daemon("peer-watch-accept", () -> acceptPeers(timeout));
        } else {
            server = null;
            this.port = port;
            Link link = connect(host, timeout);
            links.put(0, link);
            daemon("peer-watch-rank0", () -> listen(link));
        }
        daemon("peer-watch-ping", () -> ping(PeerWatch.heartbeatPeriod(timeout)));
    }

    /** The port rank 0 listens on (the one given, or the free one it got for 0). */
    int port() {
        return port;
    }

    /** Whether this rank still has an open connection to {@code peer} that has not said goodbye (for tests). */
    boolean watching(int peer) {
        return links.containsKey(peer);
    }

    @Override
    public void reportFailure(String message) {
        if (!over.compareAndSet(false, true)) return;
        String line = "abort " + rank + " " + PeerWatch.oneLine(message);
        for (Link link : links.values()) link.send(line);
    }

    @Override
    public void close() {
        over.set(true);
        stopPinging.countDown(); // a ping already on its way may follow the bye: the peer ignores it
        for (Link link : links.values()) {
            link.send("bye");
            link.close();
        }
        links.clear();
        if (server != null) closeQuietly(server);
    }

    /** Rank 0: takes the other ranks' connections until all have said hello, or the timeout says who is missing. */
    private void acceptPeers(Duration timeout) {
        long deadline = System.nanoTime() + timeout.toNanos();
        try (server) {
            while (joined.size() < size - 1 && !over.get()) {
                server.setSoTimeout(remainingMillis(deadline));
                Socket socket = server.accept();
                try {
                    socket.setSoTimeout(remainingMillis(deadline));
                    var in = reader(socket);
                    String[] hello = in.readLine() instanceof String line ? line.split(" ") : new String[0];
                    int peer = hello.length == 2 && hello[0].equals("hello") ? Integer.parseInt(hello[1]) : -1;
                    if (peer < 1 || peer >= size || !joined.add(peer)) throw new IOException("not a rank's hello");
                    var link = new Link(peer, socket, in, timeout);
                    links.put(peer, link);
                    if (over.get()) link.close(); // close() came meanwhile: its listener ends at once
                    daemon("peer-watch-rank" + peer, () -> listen(link));
                } catch (IOException | NumberFormatException e) { // not one of ours (a port scanner, a late duplicate)
                    closeQuietly(socket);
                }
            }
        } catch (SocketTimeoutException e) {
            for (int peer = 1; peer < size; peer++) {
                if (joined.contains(peer)) continue;
                String what =
                        "did not connect to rank 0 (port %d) within %s".formatted(port, PeerWatch.describe(timeout));
                failed(new Failure(peer, size, what), "lost " + peer + " " + what);
                return;
            }
        } catch (IOException e) {
            // the server socket closed under accept: close() was called
        }
    }

    /**
     * Reads one connection until it ends; an end without "bye" is the peer's failure, and so is a read that waited
     * the whole timeout (the socket's read timeout) for a single byte.
     */
    private void listen(Link link) {
        String silent = null; // what the peer did if it went quiet instead of closing
        try {
            String line;
            while ((line = link.in.readLine()) != null) {
                String[] words = line.split(" ", 3);
                try {
                    switch (words[0]) {
                        case "ping" -> {} // it is alive: the read returned, and that is all a ping is for
                        case "bye" -> link.saidBye = true; // the end of stream follows
                        case "abort" ->
                            failed(
                                    new Failure(
                                            Integer.parseInt(words[1]),
                                            size,
                                            "failed: " + (words.length > 2 ? words[2] : "(no message)")),
                                    line);
                        case "lost" ->
                            failed(
                                    new Failure(
                                            Integer.parseInt(words[1]), size, words.length > 2 ? words[2] : NO_GOODBYE),
                                    line);
                        default -> {} // a newer peer's word: ignore it
                    }
                } catch (RuntimeException e) { // ArrayIndexOutOfBounds, NumberFormat: a garbled line
                    // ignore it: a real failure still ends the connection
                }
            }
        } catch (SocketTimeoutException e) { // no pings: the peer's machine or its process hangs, or the network is cut
            silent = "stopped answering (nothing over TCP for " + PeerWatch.describe(timeout) + ")";
        } catch (IOException e) {
            // reset, or closed by close(): the same as an end of stream
        }
        links.remove(link.peer, link);
        link.close();
        String what = silent != null ? silent : NO_GOODBYE;
        if (!link.saidBye) failed(new Failure(link.peer, size, what), "lost " + link.peer + " " + what);
    }

    /** The ping thread: "ping" on every open connection each period, until close or a failure. */
    private void ping(Duration period) {
        try {
            while (!stopPinging.await(period.toNanos(), TimeUnit.NANOSECONDS) && !over.get()) {
                for (Link link : links.values()) link.send("ping");
            }
        } catch (InterruptedException e) {
            // nobody interrupts this thread; if someone does, it ends
        }
    }

    /** The first failure wins: rank 0 passes it on to every other rank, then {@code onFailure} (which halts, in a run). */
    private void failed(Failure failure, String relay) {
        if (!over.compareAndSet(false, true)) return;
        if (rank == 0) {
            for (Link link : links.values()) if (link.peer != failure.rank()) link.send(relay);
        }
        onFailure.accept(failure);
    }

    /** A rank other than 0: connects to rank 0, retrying while it is not listening yet, and says hello. */
    private Link connect(String host, Duration timeout) {
        if (host == null || host.isBlank())
            throw new LlmcException("-pi tcp needs -ps, the address of rank 0's machine");
        long deadline = System.nanoTime() + timeout.toNanos();
        IOException last = null;
        do {
            var socket = new Socket();
            try {
                socket.connect(new InetSocketAddress(host, port), Math.min(1000, remainingMillis(deadline)));
                var link = new Link(0, socket, reader(socket), timeout);
                link.out.write("hello " + rank + "\n");
                link.out.flush();
                return link;
            } catch (IOException e) {
                closeQuietly(socket);
                last = e;
                try {
                    Thread.sleep(100);
                } catch (InterruptedException interrupted) {
                    Thread.currentThread().interrupt();
                    break;
                }
            }
        } while (System.nanoTime() < deadline);
        throw new LlmcException(
                "-pi tcp: rank %d could not open its liveness connection to rank 0 at %s:%d within %s (%s)"
                        .formatted(
                                rank,
                                host,
                                port,
                                PeerWatch.describe(timeout),
                                last == null ? "interrupted" : last.getMessage()));
    }

    /** One connection; its writers (the pings, the relay, reportFailure, close) take turns on {@link #send}. */
    private static final class Link {
        final int peer;
        final Socket socket;
        final BufferedReader in;
        final Writer out;
        volatile boolean saidBye;

        /**
         * @param in the socket's reader, made before the hello was read (it may have read ahead)
         * @param silence how long a read may wait for the peer's next byte before it throws SocketTimeoutException
         */
        Link(int peer, Socket socket, BufferedReader in, Duration silence) throws IOException {
            this.peer = peer;
            this.socket = socket;
            this.in = in;
            this.out = new OutputStreamWriter(socket.getOutputStream(), StandardCharsets.UTF_8);
            socket.setTcpNoDelay(true);
            socket.setKeepAlive(true);
            socket.setSoTimeout((int) Math.clamp(silence.toMillis(), 1, Integer.MAX_VALUE)); // 0 would mean forever
        }

        /** Best effort: a peer that is gone cannot be told anything. Synchronized: a ping never splits a relay. */
        synchronized void send(String line) {
            try {
                out.write(line + "\n");
                out.flush();
            } catch (IOException ignored) {
                // the reader of this connection reports the peer, if it matters
            }
        }

        void close() {
            closeQuietly(socket);
        }
    }

    private static BufferedReader reader(Socket socket) throws IOException {
        return new BufferedReader(new InputStreamReader(socket.getInputStream(), StandardCharsets.UTF_8));
    }

    private static void daemon(String name, Runnable task) {
        Thread.ofPlatform().name(name).daemon().start(task);
    }

    private static void closeQuietly(AutoCloseable closeable) {
        try {
            closeable.close();
        } catch (Exception ignored) {
            // closing is all that is left to do
        }
    }

    private static int remainingMillis(long deadline) {
        return (int) Math.max(1, Math.min(Integer.MAX_VALUE, (deadline - System.nanoTime()) / 1_000_000));
    }
}
