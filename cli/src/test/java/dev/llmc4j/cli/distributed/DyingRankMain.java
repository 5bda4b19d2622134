package dev.llmc4j.cli.distributed;

import dev.llmc4j.distributed.MpiCommunicator;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * A rank that dies hard: every rank all-reduces in a loop, and rank {@code args[0]} halts the JVM at the third
 * iteration without a word to MPI (after leaving a note in the file args[1]) (as a segfault or an OOM kill would). mpirun must then stop the others.
 */
public final class DyingRankMain {
    public static void main(String[] args) throws IOException {
        int dying = Integer.parseInt(args[0]);
        var marker = Path.of(args[1]);
        var comm = MpiCommunicator.init();
        for (int i = 0; ; i++) {
            if (comm.rank() == dying && i == 3) {
                Files.writeString(marker, "rank " + dying + " died at iteration " + i);
                Runtime.getRuntime().halt(7);
            }
            comm.allReduceSum(i);
        }
    }
}
