package dev.llmc4j.distributed;

import java.nio.file.Path;
import java.time.Duration;

/**
 * The child JVM of {@link PeerWatchTest#startChildRank}: one rank that joins, then waits to be killed. Arguments:
 * {@code tcp RANK SIZE PORT} (rank 0 on loopback) or {@code fs RANK SIZE DIR}.
 */
final class PeerWatchChild {
    private PeerWatchChild() {}

    public static void main(String[] args) throws InterruptedException {
        int rank = Integer.parseInt(args[1]);
        int size = Integer.parseInt(args[2]);
        var watch = switch (args[0]) {
            case "tcp" ->
                new TcpPeerWatch(
                        rank,
                        size,
                        "127.0.0.1",
                        Integer.parseInt(args[3]),
                        Duration.ofSeconds(30),
                        f -> System.exit(3));
            case "fs" ->
                new FolderPeerWatch(
                        rank,
                        size,
                        Path.of(args[3]),
                        null,
                        Duration.ofSeconds(30),
                        Duration.ofMillis(20),
                        f -> System.exit(3));
            default -> throw new IllegalArgumentException(args[0]);
        };
        System.out.println("joined as rank " + rank + ": " + watch);
        Thread.sleep(Duration.ofMinutes(2)); // killed long before: at worst a leftover for two minutes
    }
}
