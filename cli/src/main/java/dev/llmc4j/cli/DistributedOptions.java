package dev.llmc4j.cli;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.MpiCommunicator;
import dev.llmc4j.distributed.MultiGpuConfig;
import dev.llmc4j.distributed.NcclIdExchange;
import dev.llmc4j.distributed.SingleProcess;
import dev.llmc4j.util.LlmcException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.nio.file.Path;
import java.util.function.Consumer;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Option;
import picocli.CommandLine.Spec;

/**
 * llm.c's multi-process flags. On CPUs the processes talk through MPI: start them with
 * {@code mpirun -np 2 ./llmc train ...} and rank and count come from MPI. On GPUs NCCL does the work and -pi chooses
 * how its id travels (mpi, or tcp / fs with -pn and -pr given to each process, for Slurm without PMIx).
 */
final class DistributedOptions {

    @Spec(Spec.Target.MIXEE)
    CommandSpec command; // the command these options belong to (train, llama3 train), for the messages

    @Range(min = 1, max = 65536)
    @Option(
            names = {"-pn", "--num-processes"},
            paramLabel = "N",
            defaultValue = "1",
            description = "processes in the run (under mpirun: from MPI) (default: ${DEFAULT-VALUE})")
    int numProcesses;

    @Range(min = 0, max = 65535)
    @Option(
            names = {"-pr", "--process-rank"},
            paramLabel = "R",
            defaultValue = "0",
            description = "this process's rank (under mpirun: from MPI) (default: ${DEFAULT-VALUE})")
    int rank;

    @Range(min = 1, max = 1024)
    @Option(
            names = {"-pg", "--gpus-per-node"},
            paramLabel = "N",
            defaultValue = "8",
            description = "GPUs per machine, for -pi tcp/fs: GPU = rank %% N (default: ${DEFAULT-VALUE})")
    int gpusPerNode;

    @Option(
            names = {"-pi", "--process-init"},
            paramLabel = "mpi|tcp|fs",
            defaultValue = "mpi",
            description =
                    "how GPU processes exchange the NCCL id: mpi, tcp (rank 0 serves it) or fs (a shared folder) (default: ${DEFAULT-VALUE})")
    String init;

    @Option(
            names = {"-ps", "--server-host"},
            paramLabel = "HOST",
            description = "-pi tcp: the address of rank 0's machine")
    String serverHost;

    @Option(
            names = {"-pf", "--fs-path"},
            paramLabel = "DIR",
            description = "-pi fs: a folder every machine shares")
    Path fsPath;

    @Range(min = 0, max = 1)
    @Option(
            names = {"-z", "--zero-stage"},
            paramLabel = "0|1",
            defaultValue = "0",
            description = "ZeRO stage: 1 shards AdamW's state across the processes (default: ${DEFAULT-VALUE})")
    int zeroStage;

    /** Which communicator a training run gets. */
    enum Setup {
        /** one process (CPU or GPU): every collective is a no-op */
        SINGLE,
        /** CPU processes started by mpirun, talking through MPI on host memory */
        MPI_CPU,
        /** one process per GPU, NCCL on device memory; the id travels by -pi (mpi under mpirun, or tcp/fs) */
        NCCL_GPU
    }

    /**
     * Decides the setup from the flags and whether mpirun started us, before anything is opened, so that a run the
     * trainer cannot do ends with one line at once rather than after loading a model.
     */
    Setup setup(boolean cuda, boolean underMpirun) {
        var method = NcclIdExchange.Method.parse(init);
        if (!cuda) {
            if (underMpirun && method != NcclIdExchange.Method.MPI)
                throw new LlmcException("-pi " + init
                        + " initialises NCCL for GPU training; the CPU trainer under mpirun uses MPI (leave -pi out)");
            if (underMpirun) return Setup.MPI_CPU;
            if (numProcesses > 1)
                throw new LlmcException(
                        ("-pn %d without mpirun: CPU processes train together through MPI; start them with"
                                        + " mpirun -np %d ./%s ... (-pi tcp/fs with -pn/-pr start GPU runs, whose NCCL needs no MPI)")
                                .formatted(numProcesses, numProcesses, commandName()));
            return Setup.SINGLE;
        }
        if (!underMpirun && numProcesses == 1) return Setup.SINGLE;
        if (!underMpirun && method == NcclIdExchange.Method.MPI)
            throw new LlmcException(
                    ("-pn %d with -pi mpi needs mpirun: start the GPU processes with mpirun -np %d ./llmc train"
                                    + " --device cuda ..., or give each one -pn %d -pr RANK and -pi tcp -ps HOST (or -pi fs -pf DIR)")
                            .formatted(numProcesses, numProcesses, numProcesses));
        return Setup.NCCL_GPU;
    }

    /**
     * {@link #setup} for a trainer that has only the CPU path ({@code llama3 train}): -pi tcp|fs, which start NCCL
     * (GPU) runs, have nothing to start there, with or without mpirun.
     */
    Setup setupCpuOnly() {
        if (NcclIdExchange.Method.parse(init) != NcclIdExchange.Method.MPI)
            throw new LlmcException("-pi " + init + " initialises NCCL for GPU training; ./" + commandName()
                    + " runs on CPUs, several processes through MPI under mpirun (leave -pi out)");
        return setup(false, MpiCommunicator.underMpirun());
    }

    /** "llmc train", "llmc llama3 train": as the user typed it. */
    private String commandName() {
        return command != null ? command.qualifiedName() : "llmc train";
    }

    /** Under mpirun: MPI (which carries the NCCL id for -pi mpi, and stops every rank on an error); else null. */
    Communicator openMpiIfStarted() {
        if (!MpiCommunicator.underMpirun()) return null;
        var comm = MpiCommunicator.init();
        if (numProcesses != 1 && numProcesses != comm.size()) {
            var error = new LlmcException(
                    "-pn %d disagrees with mpirun's %d processes".formatted(numProcesses, comm.size()));
            comm.close();
            throw error;
        }
        return comm;
    }

    /**
     * The CPU trainer's communicator: MPI when mpirun started us, else a single process. tcp/fs start-up is for
     * NCCL (GPUs); on CPUs there is nothing they could connect.
     */
    Communicator openCpu() {
        var method = NcclIdExchange.Method.parse(init);
        if (MpiCommunicator.underMpirun()) {
            if (method != NcclIdExchange.Method.MPI)
                throw new LlmcException("-pi " + init
                        + " initialises NCCL for GPU training; the CPU trainer under mpirun uses MPI (leave -pi out)");
            return openMpiIfStarted();
        }
        if (numProcesses > 1)
            throw new LlmcException(("-pn %d without mpirun: CPU processes train together through MPI; start them with"
                            + " mpirun -np %d ./%s ... (-pi tcp/fs with -pn/-pr start GPU runs, whose NCCL needs no MPI)")
                    .formatted(numProcesses, numProcesses, commandName()));
        return SingleProcess.INSTANCE;
    }

    /**
     * One CPU rank's training: opens its communicator ({@link #openCpu}), runs {@code training} with it, closes it.
     * When one of several ranks fails it says so and stops them all (MPI_Abort): the others would wait forever in
     * their next collective.
     */
    void trainOnCpu(Consumer<Communicator> training) {
        Communicator comm = openCpu(); // MPI under mpirun, else a single process
        try {
            training.accept(comm);
        } catch (RuntimeException | Error e) {
            if (comm.size() > 1) {
                if (!(e instanceof LlmcException)) e.printStackTrace();
                System.err.println("error on rank %d of %d: %s%nrank %d: stopping every rank (MPI_Abort)"
                        .formatted(comm.rank(), comm.size(), e.getMessage(), comm.rank()));
                comm.abort(1);
            }
            throw e;
        }
        comm.close();
    }

    /** Rank 0 speaks for the run; the others print only their errors. */
    static PrintStream rankZeroOut(int rank) {
        return rank == 0 ? System.out : new PrintStream(OutputStream.nullOutputStream());
    }

    /** What a GPU trainer needs to set up NCCL (rank and count from MPI when mpirun started us). */
    MultiGpuConfig multiGpu(Communicator mpi) {
        var method = NcclIdExchange.Method.parse(init);
        int size = mpi != null && mpi.size() > 1 ? mpi.size() : numProcesses;
        int r = mpi != null && mpi.size() > 1 ? mpi.rank() : rank;
        return new MultiGpuConfig(size, r, gpusPerNode, method, serverHost, fsPath);
    }
}
