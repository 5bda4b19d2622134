package dev.llmc4j.distributed;

import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.function.Consumer;

/**
 * The {@code -pi fs} liveness channel, through the shared folder that carried the NCCL id (no connections: the
 * machines of a Slurm job without PMIx may share nothing else). Each rank owns two files, tagged like the id file
 * ({@code .<SLURM_JOB_ID>} when set) and written atomically (temp file, rename):
 * <pre>
 * heartbeat[.tag].rank&lt;r&gt;   a counter rank r raises every period (timeout / 5, at most 5 s)
 * abort[.tag].rank&lt;r&gt;       rank r failed; the file holds its one-line message
 * </pre>
 * One daemon thread per rank raises its own counter, then looks at every peer: an abort file, or a counter that has
 * not changed within the timeout (60 s), is that peer's failure. A counter rather than the file's time, because the
 * machines' clocks differ; the change is timed by this machine's clock alone. A clean end removes the rank's own
 * files, and a peer whose heartbeat file has gone (after it was seen) has ended cleanly and is no longer watched.
 */
public final class FolderPeerWatch implements PeerWatch {

    private final int rank;
    private final int size;
    private final Path dir;
    private final String tag;
    private final Duration timeout;
    private final Consumer<Failure> onFailure;
    private final AtomicBoolean over = new AtomicBoolean(); // a failure seen, reportFailure or close
    private final CountDownLatch stop = new CountDownLatch(1); // wakes the thread for close
    private final Map<Integer, Beat> peers = new ConcurrentHashMap<>(); // the ranks still watched
    private final Thread thread;
    private volatile boolean reported; // our abort file stays for the others
    private long counter;

    /** What this rank last saw of one peer's heartbeat; touched by the watch thread only. */
    private static final class Beat {
        volatile String count; // the file's last contents, null until it was first seen
        long changedAt; // System.nanoTime() of the last change (or of the start)

        Beat(long now) {
            changedAt = now;
        }
    }

    /** Rank {@code rank} of {@code size} in {@code dir}; a peer silent for {@code timeout} counts as failed. */
    public FolderPeerWatch(int rank, int size, Path dir, String tag, Duration timeout, Consumer<Failure> onFailure) {
        this(rank, size, dir, tag, timeout, PeerWatch.heartbeatPeriod(timeout), onFailure);
    }

    /** With the period of the heartbeat and of the look at the peers given (tests: short, to see an abort at once). */
    FolderPeerWatch(
            int rank, int size, Path dir, String tag, Duration timeout, Duration period, Consumer<Failure> onFailure) {
        if (dir == null) throw new LlmcException("-pi fs needs -pf, a folder every process can read and write");
        this.rank = rank;
        this.size = size;
        this.dir = dir;
        this.tag = tag;
        this.timeout = timeout;
        this.onFailure = onFailure;
        beat(); // the first heartbeat before anyone could time us out
        long now = System.nanoTime();
        for (int peer = 0; peer < size; peer++) if (peer != rank) peers.put(peer, new Beat(now));
        thread = Thread.ofPlatform().name("peer-watch-fs").daemon().start(() -> run(period.toNanos()));
    }

    static Path abortFile(Path dir, String tag, int rank) {
        return dir.resolve("abort" + suffix(tag) + ".rank" + rank);
    }

    static Path heartbeatFile(Path dir, String tag, int rank) {
        return dir.resolve("heartbeat" + suffix(tag) + ".rank" + rank);
    }

    private static String suffix(String tag) {
        return tag == null || tag.isBlank() ? "" : "." + tag;
    }

    /** Removes rank's files of an earlier run (before the NCCL id exchange: see {@link PeerWatch#removeLeftovers}). */
    static void removeLeftovers(Path dir, String tag, int rank) {
        try {
            Files.deleteIfExists(abortFile(dir, tag, rank));
            Files.deleteIfExists(heartbeatFile(dir, tag, rank));
        } catch (IOException e) {
            throw new LlmcException(
                    "-pi fs: cannot remove an earlier run's files in " + dir + ": " + e.getMessage(), e);
        }
    }

    /** Whether this rank still watches {@code peer}: not seen to end cleanly (for tests). */
    boolean watching(int peer) {
        return peers.containsKey(peer);
    }

    /** Whether this rank has read a heartbeat of {@code peer}'s yet (for tests). */
    boolean heard(int peer) {
        Beat beat = peers.get(peer);
        return beat != null && beat.count != null;
    }

    @Override
    public void reportFailure(String message) {
        if (!over.compareAndSet(false, true)) return;
        reported = true;
        stop.countDown();
        try {
            AtomicFiles.write(
                    abortFile(dir, tag, rank), PeerWatch.oneLine(message).getBytes(StandardCharsets.UTF_8));
        } catch (LlmcException e) {
            System.err.println("-pi fs: cannot tell the other ranks that rank " + rank + " failed: " + e.getMessage());
        }
    }

    @Override
    public void close() {
        over.set(true);
        stop.countDown();
        try {
            if (Thread.currentThread() != thread) thread.join(); // no heartbeat may follow the file's removal
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
        try {
            Files.deleteIfExists(heartbeatFile(dir, tag, rank));
            if (!reported) Files.deleteIfExists(abortFile(dir, tag, rank));
        } catch (IOException e) {
            System.err.println("-pi fs: cannot remove rank " + rank + "'s files in " + dir + ": " + e.getMessage());
        }
    }

    private void run(long periodNanos) {
        try {
            while (!stop.await(periodNanos, TimeUnit.NANOSECONDS) && !over.get()) {
                try {
                    beat();
                } catch (LlmcException e) { // a full or vanished folder: peers will time this rank out if it lasts
                    System.err.println("-pi fs: rank " + rank + "'s heartbeat: " + e.getMessage());
                }
                check();
            }
        } catch (InterruptedException e) {
            // nobody interrupts this thread; if someone does, it ends
        }
    }

    private void beat() {
        AtomicFiles.write(
                heartbeatFile(dir, tag, rank), Long.toString(++counter).getBytes(StandardCharsets.UTF_8));
    }

    /** One look at every peer: its abort file first, then whether its counter moved. */
    private void check() {
        long now = System.nanoTime();
        for (var entry : peers.entrySet()) {
            int peer = entry.getKey();
            Beat beat = entry.getValue();
            Path abort = abortFile(dir, tag, peer);
            if (Files.exists(abort)) {
                failed(new Failure(peer, size, "failed: " + readMessage(abort)));
                return;
            }
            String count;
            try {
                count = Files.readString(heartbeatFile(dir, tag, peer)).strip();
            } catch (NoSuchFileException e) {
                if (beat.count != null) { // it was there and is gone: a clean end
                    peers.remove(peer);
                    continue;
                }
                count = null; // not written yet
            } catch (IOException e) {
                count = beat.count; // a passing read error (a network file system): as if unchanged
            }
            if (count != null && !count.equals(beat.count)) {
                beat.count = count;
                beat.changedAt = now;
            } else if (now - beat.changedAt > timeout.toNanos()) {
                failed(new Failure(
                        peer, size, "stopped answering (no heartbeat for " + PeerWatch.describe(timeout) + ")"));
                return;
            }
        }
    }

    private void failed(Failure failure) {
        if (over.compareAndSet(false, true)) onFailure.accept(failure);
    }

    private static String readMessage(Path abortFile) {
        try {
            return PeerWatch.oneLine(Files.readString(abortFile));
        } catch (IOException e) {
            return "(its message in " + abortFile + " is unreadable: " + e.getMessage() + ")";
        }
    }
}
