package dev.llmc4j.distributed;

import dev.llmc4j.util.LlmcException;
import java.nio.file.Path;
import java.time.Duration;

/**
 * Where this process stands in a multi-GPU run, and how its NCCL communicator comes to be (llm.c's zero.cuh):
 * process {@code rank} of {@code numProcesses} drives GPU {@code rank % gpusPerNode} of its machine; rank 0 makes the
 * NCCL id and {@link NcclIdExchange} passes it on by {@code init} (mpi, tcp or fs).
 *
 * @param numProcesses -pn (taken from MPI under mpirun)
 * @param rank         -pr (taken from MPI under mpirun)
 * @param gpusPerNode  -pg (8)
 * @param init         -pi mpi | tcp | fs
 * @param serverHost   -ps rank 0's address for tcp
 * @param fsPath       -pf shared folder for fs
 */
public record MultiGpuConfig(
        int numProcesses, int rank, int gpusPerNode, NcclIdExchange.Method init, String serverHost, Path fsPath) {

    /** How long the other ranks wait for rank 0's id (a slow cluster start-up, not a hang). */
    public static final Duration ID_TIMEOUT = Duration.ofMinutes(5);

    public MultiGpuConfig {
        if (numProcesses < 1)
            throw new LlmcException("-pn: the number of processes must be at least 1, found " + numProcesses);
        if (rank < 0 || rank >= numProcesses)
            throw new LlmcException("-pr: rank must be in 0.." + (numProcesses - 1) + ", found " + rank);
        if (gpusPerNode < 1) throw new LlmcException("-pg: GPUs per machine must be at least 1, found " + gpusPerNode);
        if (init == NcclIdExchange.Method.TCP
                && numProcesses > 1
                && rank > 0
                && (serverHost == null || serverHost.isBlank()))
            throw new LlmcException("-pi tcp needs -ps, the address of rank 0's machine");
        if (init == NcclIdExchange.Method.FS && numProcesses > 1 && fsPath == null)
            throw new LlmcException("-pi fs needs -pf, a folder all machines share");
    }

    /** The CUDA device this process uses on its machine. */
    public int localDevice() {
        return rank % gpusPerNode;
    }

    /** Every rank gets rank 0's id; mpi needs the MPI communicator, tcp and fs do not. */
    public byte[] exchangeId(Communicator mpi, java.util.function.Supplier<byte[]> makeId, Duration timeout) {
        return switch (init) {
            case MPI -> {
                if (mpi == null || mpi.size() != numProcesses)
                    throw new LlmcException(
                            "-pi mpi: start the processes with mpirun (or use -pi tcp / -pi fs with -pn and -pr)");
                yield NcclIdExchange.viaMpi(mpi, makeId);
            }
            case TCP ->
                NcclIdExchange.viaTcp(rank, numProcesses, serverHost, NcclIdExchange.DEFAULT_PORT, makeId, timeout);
            case FS ->
                NcclIdExchange.viaFileSystem(
                        rank, numProcesses, fsPath, System.getenv("SLURM_JOB_ID"), makeId, timeout);
        };
    }

    /** The NCCL communicator of this process (after the CUDA context of {@link #localDevice()} is current). */
    public Nccl.Comm connect(Nccl nccl, Communicator mpi) {
        byte[] id = exchangeId(mpi, nccl::uniqueId, ID_TIMEOUT);
        return nccl.initRank(numProcesses, id, rank);
    }
}
