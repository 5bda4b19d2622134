package dev.llmc4j.cli.distributed;

import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

/** Starts test programs under Open MPI's mpirun, on this machine, over loopback and shared memory. */
final class Mpirun {
    private Mpirun() {}

    record Result(int exitCode, String output, double seconds) {}

    /** mpirun on the PATH, or the test is skipped with the reason. */
    static String mpirun() {
        for (String dir : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            Path candidate = Path.of(dir, "mpirun");
            if (Files.isExecutable(candidate)) return candidate.toString();
        }
        assumeTrue(
                false,
                "mpirun not found: install Open MPI (apt-get install openmpi-bin) to run the multi-process tests");
        return null;
    }

    /** The JVM command line that runs mainClass with this test's classpath. */
    static List<String> java(String mainClass, String... args) {
        var command = new ArrayList<>(List.of(
                Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules",
                "jdk.incubator.vector",
                "--enable-native-access=ALL-UNNAMED",
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-Dllmc.threads=1",
                "-cp",
                System.getProperty("java.class.path"),
                mainClass));
        command.addAll(List.of(args));
        return command;
    }

    /** mpirun -np ranks (one program for all), or MPMD: "-np 1 a : -np 1 b" when given several programs. */
    @SafeVarargs
    static Result run(Path dir, long timeoutSeconds, List<String>... programs)
            throws IOException, InterruptedException {
        var command = new ArrayList<>(List.of(mpirun(), "--allow-run-as-root", "--oversubscribe", "--bind-to", "none"));
        for (int i = 0; i < programs.length; i++) {
            if (i > 0) command.add(":");
            command.addAll(programs[i]);
        }
        Path log = dir.resolve("mpirun-" + System.nanoTime() + ".log");
        var builder = new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile());
        builder.environment().put("OMP_NUM_THREADS", "1");
        builder.environment().put("OMPI_MCA_mpi_yield_when_idle", "1"); // 2 ranks on 2 shared cores: do not spin
        builder.environment().put("OMPI_MCA_btl_vader_single_copy_mechanism", "none"); // containers lack CMA
        long start = System.nanoTime();
        Process process = builder.start();
        if (!process.waitFor(timeoutSeconds, TimeUnit.SECONDS)) {
            process.descendants().forEach(ProcessHandle::destroyForcibly);
            process.destroyForcibly();
            fail("mpirun did not finish within " + timeoutSeconds + " s:\n"
                    + Files.readString(log, StandardCharsets.UTF_8));
        }
        return new Result(
                process.exitValue(), Files.readString(log, StandardCharsets.UTF_8), (System.nanoTime() - start) / 1e9);
    }

    static List<String> np(int ranks, List<String> program) {
        var command = new ArrayList<>(List.of("-np", Integer.toString(ranks)));
        command.addAll(program);
        return command;
    }
}
