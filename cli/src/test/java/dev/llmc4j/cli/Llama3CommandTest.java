package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.TokenShard;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code ./llmc llama3 train} runs the shared trainer with llm.c's flags; {@code sample} takes top-k and top-p. */
class Llama3CommandTest {

    @TempDir
    Path dir;

    static final String[] TINY = {
        "--vocab", "96", "--layers", "1", "--heads", "2", "--kv-heads", "1", "--channels", "16", "--max-seq-len", "16"
    };

    private void writeShards() {
        var random = new Random(1);
        int[] train = random.ints(1000, 0, 96).toArray(),
                val = random.ints(200, 0, 96).toArray();
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.LLAMA3, train);
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.LLAMA3, val);
    }

    private static String[] concat(String[] a, String... b) {
        String[] all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }

    @Test
    void trainsWritesCheckpointsAndResumes() throws Exception {
        writeShards();
        Path out = dir.resolve("run");
        String[] common = concat(
                concat(new String[] {"llama3", "train"}, TINY),
                "-i",
                dir.resolve("train.bin").toString(),
                "-j",
                dir.resolve("val.bin").toString(),
                "-b",
                "2",
                "-t",
                "8",
                "-d",
                "32",
                "-l",
                "1e-3",
                "-k",
                "cosine",
                "-v",
                "2",
                "-m",
                "1",
                "-s",
                "2",
                "-g",
                "3",
                "-o",
                out.toString(),
                "-n",
                "2");
        var first = LlmcRun.of(concat(common, "-x", "2"));
        assertEquals(0, first.exitCode(), first.err());
        assertTrue(
                first.out().contains("val loss")
                        && first.out().contains("generating:")
                        && first.out().contains("2 micro-steps"),
                first.out());
        assertTrue(Files.exists(out.resolve("model_00000002.bin")) && Files.exists(out.resolve("DONE_00000002")));
        assertTrue(Files.exists(out.resolve("loss.png")) && Files.exists(out.resolve("main.log")));

        var resumed = LlmcRun.of(concat(common, "-x", "4", "-y", "1"));
        assertEquals(0, resumed.exitCode(), resumed.err());
        assertTrue(resumed.out().contains("resumed from") && resumed.out().contains("step    4/4"), resumed.out());

        var sample = LlmcRun.of(
                "llama3",
                "sample",
                "-e",
                out.resolve("model_00000004.bin").toString(),
                "-n",
                "5",
                "--top-k",
                "10",
                "--top-p",
                "0.9");
        assertEquals(0, sample.exitCode(), sample.err());
        assertTrue(sample.out().contains("5 new tokens"), sample.out());
        var bf16 = LlmcRun.of(
                "llama3", "sample", "-e", out.resolve("model_00000004.bin").toString(), "-n", "5", "--weights", "bf16");
        assertEquals(0, bf16.exitCode(), bf16.err());
        assertTrue(bf16.out().contains("5 new tokens") && bf16.out().contains("bf16 weights"), bf16.out());
    }

    @Test
    void badDataIsAOneLineError() {
        var result = LlmcRun.of(concat(
                concat(new String[] {"llama3", "train"}, TINY),
                "-i",
                dir.resolve("none.bin").toString(),
                "-j",
                dir.resolve("none.bin").toString(),
                "-t",
                "8",
                "-x",
                "1"));
        assertEquals(1, result.exitCode());
        assertTrue(result.err().startsWith("error: ") && result.err().contains("none.bin"), result.err());
        assertEquals(1, result.err().strip().lines().count(), result.err());
    }

    @Test
    void sharedTrainingFlagsParseForLlama3Too() {
        var command = new CommandLine(new Llama3Command());
        var parsed =
                command.parseArgs("train", "-i", "a", "-j", "b", "-d", "4096", "-nk", "2", "-k", "wsd", "-sl", "3");
        Llama3Command.Train train =
                (Llama3Command.Train) parsed.subcommand().commandSpec().userObject();
        assertEquals(4096, train.training.totalBatchTokens);
        assertEquals(2, train.training.checkpointsKeep);
        assertEquals("wsd", train.training.schedule);
        var sample = new CommandLine(new SampleCommand());
        sample.parseArgs("-e", "m.bin", "--top-p", "0.9");
        assertEquals(0.9f, ((SampleCommand) sample.getCommand()).topP);
    }

    @Test
    void multiProcessFlagsWithoutMpirunOrForGpusAreOneLineErrors() {
        String[] common = concat(
                concat(new String[] {"llama3", "train"}, TINY),
                "-i",
                dir.resolve("none.bin").toString(),
                "-j",
                dir.resolve("none.bin").toString());
        var tcp = LlmcRun.of(concat(common, "-pi", "tcp", "-ps", "node0"));
        assertEquals(1, tcp.exitCode());
        assertEquals(
                "error: -pi tcp initialises NCCL for GPU training; ./llmc llama3 train runs on CPUs, several processes"
                        + " through MPI under mpirun (leave -pi out)",
                tcp.err().strip());
        var twoRanks = LlmcRun.of(concat(common, "-pn", "2"));
        assertEquals(1, twoRanks.exitCode());
        assertTrue(
                twoRanks.err().startsWith("error: -pn 2 without mpirun")
                        && twoRanks.err().contains("mpirun -np 2 ./llmc llama3 train ..."),
                twoRanks.err());
        assertEquals(1, twoRanks.err().strip().lines().count(), twoRanks.err());
        var device = LlmcRun.of(concat(common, "--device", "cuda"));
        assertEquals(2, device.exitCode(), "picocli: unknown option"); // Llama 3 trains on the CPU only
    }
}
