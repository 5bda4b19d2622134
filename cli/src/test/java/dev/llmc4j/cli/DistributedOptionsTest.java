package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.llmc4j.distributed.MpiCommunicator;
import dev.llmc4j.distributed.NcclIdExchange;
import dev.llmc4j.distributed.SingleProcess;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import org.junit.jupiter.api.Test;
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
        assertEquals("error: -pn 2 without mpirun: CPU processes train together through MPI; start them with mpirun -np 2"
                + " ./llmc train ... (-pi tcp/fs with -pn/-pr start GPU runs, whose NCCL needs no MPI)", errorOf("train", "-pn", "2"));
        assertEquals("error: -pi: expected mpi, tcp or fs, found udp", errorOf("train", "-pi", "udp"));
    }

    @Test
    void gpuFlagsBecomeAMultiGpuConfig() {
        var command = new TrainCommand();
        new CommandLine(command).parseArgs("-pn", "16", "-pr", "9", "-pg", "8", "-pi", "tcp", "-ps", "node01", "-z", "1");
        var config = command.distributed.multiGpu(null);
        assertEquals(16, config.numProcesses());
        assertEquals(9, config.rank());
        assertEquals(1, config.localDevice());
        assertEquals(NcclIdExchange.Method.TCP, config.init());
        assertEquals("node01", config.serverHost());
        assertEquals(1, command.distributed.zeroStage);
    }
}
