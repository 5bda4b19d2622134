package dev.llmc4j.distributed;

import java.io.PrintStream;
import java.time.Duration;
import java.util.function.Consumer;
import java.util.function.IntConsumer;

/**
 * A rank that dies makes the others stop with a clear error instead of hanging: a small liveness channel next to
 * NCCL for runs started with {@code -pi tcp|fs}, where no MPI ends the job for us. NCCL still does every collective;
 * this only carries "rank r failed" and notices ranks that vanish.
 * <pre>
 * -pi tcp   every rank keeps a connection to rank 0 (port 12346, one above the id's): "abort r message" from a
 *           failing rank, relayed by rank 0 to all; an end of stream without "bye", or nothing (not even the
 *           "ping" both sides send every few seconds) within the timeout (60 s), is a failure    {@link TcpPeerWatch}
 * -pi fs    files in the shared folder: abort.rank&lt;r&gt; with the message, and a heartbeat counter per rank that
 *           must change within the timeout (60 s)                                                {@link FolderPeerWatch}
 * mpi, 1    {@link #NONE}: MPI_Abort already stops every rank
 * </pre>
 * A watch that learns of a failure hands it to its {@code onFailure} once; in a run that is {@link #stopProcess}:
 * one line on stderr, ncclCommAbort (which unblocks a collective waiting for the dead rank), exit code 1.
 */
public interface PeerWatch extends AutoCloseable {

    /** How long a peer may be silent (fs: heartbeat counter, tcp: pings) or take to connect (tcp) before it counts as failed. */
    Duration DEFAULT_TIMEOUT = Duration.ofSeconds(60);

    /** This rank is failing: tell the others (best effort, returns once sent), and stop watching. */
    void reportFailure(String message);

    /** A clean end: say goodbye (tcp "bye", fs removes this rank's files) and stop watching. */
    @Override
    void close();

    /** mpirun runs and single processes: nothing to watch. */
    PeerWatch NONE = new PeerWatch() {
        @Override
        public void reportFailure(String message) {}

        @Override
        public void close() {}
    };

    /**
     * Rank {@code rank} of {@code size} failed; {@code what} completes the sentence: "failed: CUDA out of memory",
     * "closed its connection without saying goodbye", "stopped answering (no heartbeat for 60 s)", "stopped answering
     * (nothing over TCP for 60 s)".
     */
    record Failure(int rank, int size, String what) {
        public String line() {
            return "error: rank %d of %d %s".formatted(rank, size, what);
        }
    }

    /**
     * What a run does when a peer failed: the failure's line on {@code err}, {@code abortNccl} (ncclCommAbort, so that
     * a collective stuck waiting for the dead rank returns), then {@code halt.accept(1)} (Runtime.halt in a run: no
     * shutdown hooks, which could wait on the stuck thread).
     */
    static Consumer<Failure> stopProcess(PrintStream err, Runnable abortNccl, IntConsumer halt) {
        return failure -> {
            err.println(failure.line());
            err.flush();
            try {
                abortNccl.run();
            } catch (RuntimeException e) {
                err.println("ncclCommAbort: " + e.getMessage());
            }
            err.flush();
            halt.accept(1);
        };
    }

    /**
     * The watch for this process of a multi-GPU run, started after ncclCommInitRank: tcp or fs with more than one
     * process, else {@link #NONE}. A failing peer prints its line, calls {@code abortNccl} and halts this process.
     */
    static PeerWatch start(MultiGpuConfig gpus, Duration timeout, Runnable abortNccl) {
        if (gpus.numProcesses() == 1) return NONE;
        var onFailure = stopProcess(System.err, abortNccl, Runtime.getRuntime()::halt);
        return switch (gpus.init()) {
            case MPI -> NONE;
            case TCP ->
                new TcpPeerWatch(
                        gpus.rank(),
                        gpus.numProcesses(),
                        gpus.serverHost(),
                        TcpPeerWatch.DEFAULT_PORT,
                        timeout,
                        onFailure);
            case FS ->
                new FolderPeerWatch(
                        gpus.rank(),
                        gpus.numProcesses(),
                        gpus.fsPath(),
                        System.getenv("SLURM_JOB_ID"),
                        timeout,
                        onFailure);
        };
    }

    /**
     * -pi fs: removes this rank's abort and heartbeat files left by an earlier run in the same folder. Called before
     * the NCCL id exchange: no rank starts watching before every rank has passed ncclCommInitRank, so by then no
     * leftover can be mistaken for a failure of this run.
     */
    static void removeLeftovers(MultiGpuConfig gpus) {
        if (gpus.numProcesses() > 1 && gpus.init() == NcclIdExchange.Method.FS)
            FolderPeerWatch.removeLeftovers(gpus.fsPath(), System.getenv("SLURM_JOB_ID"), gpus.rank());
    }

    /** How often a rank shows that it is alive (fs: its counter, tcp: a ping): five times a timeout, at most every 5 s. */
    static Duration heartbeatPeriod(Duration timeout) {
        Duration fifth = timeout.dividedBy(5), most = Duration.ofSeconds(5);
        return fifth.compareTo(most) < 0 ? fifth : most;
    }

    /** "60 s", or "300 ms" when not whole seconds: for the failure lines. */
    static String describe(Duration duration) {
        long millis = duration.toMillis();
        return millis % 1000 == 0 ? millis / 1000 + " s" : millis + " ms";
    }

    /** A failure message on one line (it travels as one line of text), never empty. */
    static String oneLine(String message) {
        String line =
                message == null ? "" : message.replaceAll("[\\r\\n]+", " ").strip();
        return line.isEmpty() ? "(no message)" : line;
    }
}
