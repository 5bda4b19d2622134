package dev.llmc4j.cli.distributed;

import dev.llmc4j.distributed.MpiCommunicator;

/**
 * A rank that dies hard: every rank all-reduces in a loop, and rank {@code args[0]} halts the JVM at the third
 * iteration without a word to MPI (as a segfault or an OOM kill would). mpirun must then stop the others.
 */
public final class DyingRankMain {
    public static void main(String[] args) {
        int dying = Integer.parseInt(args[0]);
        var comm = MpiCommunicator.init();
        for (int i = 0; ; i++) {
            if (comm.rank() == dying && i == 3) {
                System.out.println("rank " + dying + ": dying now");
                System.out.flush();
                Runtime.getRuntime().halt(7);
            }
            comm.allReduceSum(i);
        }
    }
}
