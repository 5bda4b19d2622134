package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.llmc4j.distributed.MpiCommunicator;
import dev.llmc4j.distributed.NcclIdExchange;
import dev.llmc4j.distributed.SingleProcess;
import dev.llmc4j.gpt2.cuda.GPT2CudaModel;
import dev.llmc4j.util.LlmcException;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** The multi-process flags outside mpirun: one process, or a one-line error that says how to start several. */
class DistributedOptionsTest {

    private static String errorOf(String... args) {
        var err = new ByteArrayOutputStream();
        PrintStream oldErr = System.err;
        try {
            System.setErr(new PrintStream(err, true, StandardCharsets.UTF_8));
            assertEquals(1, Llmc.execute(args));
        } finally {
            System.setErr(oldErr);
        }
        return err.toString(StandardCharsets.UTF_8).strip();
    }

    @Test
    void withoutMpirunTheCpuTrainerIsOneProcessOrExplainsMpirun() {
        assumeFalse(MpiCommunicator.underMpirun(), "this test itself runs under mpirun");
        var options = new DistributedOptions();
        options.numProcesses = 1;
        options.init = "mpi";
        assertEquals(SingleProcess.INSTANCE, options.openCpu());
        assertEquals(
                "error: -pn 2 without mpirun: CPU processes train together through MPI; start them with mpirun -np 2"
                        + " ./llmc train ... (-pi tcp/fs with -pn/-pr start GPU runs, whose NCCL needs no MPI)",
                errorOf("train", "-pn", "2"));
        assertEquals("error: -pi: expected mpi, tcp or fs, found udp", errorOf("train", "-pi", "udp"));
    }

    @Test
    void gpuFlagsBecomeAMultiGpuConfig() {
        var command = new TrainCommand();
        new CommandLine(command)
                .parseArgs("-pn", "16", "-pr", "9", "-pg", "8", "-pi", "tcp", "-ps", "node01", "-z", "1");
        var config = command.distributed.multiGpu(null);
        assertEquals(16, config.numProcesses());
        assertEquals(9, config.rank());
        assertEquals(1, config.localDevice());
        assertEquals(NcclIdExchange.Method.TCP, config.init());
        assertEquals("node01", config.serverHost());
        assertEquals(1, command.distributed.zeroStage);
    }

    private static DistributedOptions parse(String... args) {
        var command = new TrainCommand();
        new CommandLine(command).parseArgs(args);
        return command.distributed;
    }

    @Test
    void whichCommunicatorForWhichFlags() {
        //                                        cuda   under mpirun
        assertEquals(DistributedOptions.Setup.SINGLE, parse().setup(false, false));
        assertEquals(DistributedOptions.Setup.SINGLE, parse().setup(true, false));
        assertEquals(DistributedOptions.Setup.MPI_CPU, parse().setup(false, true));
        assertEquals(DistributedOptions.Setup.MPI_CPU, parse("-z", "1").setup(false, true));
        assertEquals(DistributedOptions.Setup.NCCL_GPU, parse().setup(true, true));
        assertEquals(DistributedOptions.Setup.NCCL_GPU, parse("-pi", "tcp").setup(true, true));
        assertEquals(
                DistributedOptions.Setup.NCCL_GPU,
                parse("-pn", "2", "-pr", "1", "-pi", "tcp", "-ps", "node0").setup(true, false));
        assertEquals(
                DistributedOptions.Setup.NCCL_GPU,
                parse("-pn", "2", "-pi", "fs", "-pf", "/shared").setup(true, false));
    }

    @Test
    void gpuRunsTheTrainerCannotDoEndInOneLine() {
        // ZeRO-1 on GPUs is accepted (the GPU model shards AdamW's state and its fp32 master weights)
        assertEquals(DistributedOptions.Setup.NCCL_GPU, parse("-z", "1").setup(true, true));
        assertEquals(
                DistributedOptions.Setup.NCCL_GPU,
                parse("-pn", "2", "-pi", "tcp", "-ps", "node0", "-z", "1").setup(true, false));
        assertEquals(
                "-pn 2 with -pi mpi needs mpirun: start the GPU processes with mpirun -np 2 ./llmc train --device cuda ...,"
                        + " or give each one -pn 2 -pr RANK and -pi tcp -ps HOST (or -pi fs -pf DIR)",
                assertThrows(LlmcException.class, () -> parse("-pn", "2").setup(true, false))
                        .getMessage());
        assertEquals(
                "-pi tcp initialises NCCL for GPU training; the CPU trainer under mpirun uses MPI (leave -pi out)",
                assertThrows(LlmcException.class, () -> parse("-pi", "tcp").setup(false, true))
                        .getMessage());
    }

    @Test
    void theCommandLineRefusesBeforeLoadingAnything() {
        assumeFalse(MpiCommunicator.underMpirun(), "this test itself runs under mpirun");
        assertEquals(
                "error: -pn 2 with -pi mpi needs mpirun: start the GPU processes with mpirun -np 2 ./llmc train --device cuda ...,"
                        + " or give each one -pn 2 -pr RANK and -pi tcp -ps HOST (or -pi fs -pf DIR)",
                errorOf("train", "--device", "cuda", "-pn", "2"));
    }

    private static boolean hasGpu() {
        try {
            GPT2CudaModel.requireDevice();
            return true;
        } catch (LlmcException e) {
            return false;
        }
    }

    /** Without a GPU a multi-GPU rank gets as far as building its model, and stops there with one line, before any NCCL. */
    @Test
    void withoutAGpuAMultiGpuRankStopsAtTheModel(@TempDir Path dir) throws Exception {
        assumeFalse(MpiCommunicator.underMpirun(), "this test itself runs under mpirun");
        assumeFalse(hasGpu(), "this machine has a GPU");
        Path data = Files.write(dir.resolve("tokens.bin"), new byte[0]);
        String error = errorOf(
                "train",
                "--device",
                "cuda",
                "-e",
                "d6",
                "-pn",
                "2",
                "-pr",
                "1",
                "-pi",
                "fs",
                "-pf",
                dir.toString(),
                "-i",
                data.toString(),
                "-j",
                data.toString());
        assertTrue(error.startsWith("error: no CUDA device: "), error);
        assertTrue(
                Files.list(dir).noneMatch(p -> p.getFileName().toString().startsWith("ncclUniqueId")),
                "no NCCL id exchange began");
    }
}
