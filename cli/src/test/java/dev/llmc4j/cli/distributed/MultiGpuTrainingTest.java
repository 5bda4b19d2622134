package dev.llmc4j.cli.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.distributed.Nccl;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.cuda.CudaDriver;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Two GPUs of one machine training together through NCCL, started as two {@code llmc train --device cuda} processes
 * with {@code -pn 2 -pr R -pi fs} (no mpirun needed), against one GPU:
 * <ul>
 *   <li>fp32 (plain attention, no TF32): 2 ranks train like 1 GPU with twice the gradient accumulation on the same
 *       batches, losses within 1e-5 relative (the gradients are averaged during the backward, layer by layer);</li>
 *   <li>bf16: ZeRO-1 (reduce-scatter, sharded m, v and master weights, all-gather) trains like ZeRO-0;</li>
 *   <li>bf16 ZeRO-1 resumed from its step-3 checkpoint (each rank's state file holds its own master weights and
 *       moments) ends with the same step-6 model file, byte for byte, as the uninterrupted run.</li>
 * </ul>
 * Needs 2 GPUs and libnccl.so.2; skipped otherwise, with what is missing.
 */
@Tag("gpu")
@Tag("mpi")
class MultiGpuTrainingTest {
    @TempDir
    Path dir;

    static final GPT2Config SMALL = new GPT2Config(64, 96, 128, 2, 2, 128); // head size 64: flash attention works too

    private static void assumeTwoGpusAndNccl() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        int gpus = CudaDriver.get().deviceCount();
        assumeTrue(gpus >= 2, "needs 2 GPUs, found " + gpus);
        try {
            Nccl.load();
        } catch (LlmcException e) {
            assumeTrue(false, "needs NCCL: " + e.getMessage());
        }
    }

    private List<String> train(String out, String... extra) {
        var args = new ArrayList<>(List.of(
                "train",
                "--device",
                "cuda",
                "-e",
                dir.resolve("model.bin").toString(),
                "-i",
                dir.resolve("train.bin").toString(),
                "-j",
                dir.resolve("val.bin").toString(),
                "-b",
                "2",
                "-t",
                "64",
                "-x",
                "6",
                "-l",
                "1e-3",
                "-v",
                "3",
                "-m",
                "1",
                "-g",
                "0",
                "-o",
                dir.resolve(out).toString()));
        args.addAll(List.of(extra));
        return Mpirun.java("dev.llmc4j.cli.Llmc", args.toArray(String[]::new));
    }

    /** Starts every command at once and waits for all; fails with their output if one fails. Returns rank 0's output. */
    private static Path runTogether(Path dir, List<List<String>> commands) throws IOException, InterruptedException {
        var processes = new ArrayList<Process>();
        var logs = new ArrayList<Path>();
        for (var command : commands) {
            Path log = dir.resolve("process-" + logs.size() + "-" + System.nanoTime() + ".log");
            logs.add(log);
            processes.add(new ProcessBuilder(command)
                    .redirectErrorStream(true)
                    .redirectOutput(log.toFile())
                    .start());
        }
        for (int i = 0; i < processes.size(); i++) {
            Process process = processes.get(i);
            boolean done = process.waitFor(600, TimeUnit.SECONDS);
            if (!done) processes.forEach(Process::destroyForcibly);
            if (!done || process.exitValue() != 0)
                fail("process " + i + (done ? " exited with " + process.exitValue() : " timed out") + ":\n"
                        + Files.readString(logs.get(i), StandardCharsets.UTF_8));
        }
        return logs.getFirst();
    }

    private List<List<String>> twoRanks(String out, String... extra) {
        var ranks = new ArrayList<List<String>>();
        for (int rank = 0; rank < 2; rank++) {
            var args = new ArrayList<>(List.of(extra));
            args.addAll(List.of(
                    "-pn",
                    "2",
                    "-pr",
                    Integer.toString(rank),
                    "-pi",
                    "fs",
                    "-pf",
                    dir.resolve("shared-" + out).toString()));
            ranks.add(train(out, args.toArray(String[]::new)));
        }
        return ranks;
    }

    /** The train losses rank 0 printed ("step N/M | loss X (...)": six decimals, main.log has four). */
    private static List<Double> trainLosses(Path output) throws IOException {
        return Files.readAllLines(output).stream()
                .filter(l -> l.startsWith("step ") && l.contains("| loss "))
                .map(l -> Double.parseDouble(
                        l.substring(l.indexOf("| loss ") + 7).trim().split(" ")[0]))
                .toList();
    }

    private static void assertClose(List<Double> expected, List<Double> found, double relative, String what) {
        assertEquals(expected.size(), found.size(), what + ": number of steps");
        for (int i = 0; i < expected.size(); i++)
            assertTrue(
                    Math.abs(expected.get(i) - found.get(i)) <= relative * Math.abs(expected.get(i)),
                    "%s, step %d: expected %.6f, found %.6f".formatted(what, i + 1, expected.get(i), found.get(i)));
    }

    @Test
    void twoGpusTrainLikeOneWithTwiceTheAccumulationAndZero1LikeZero0() throws Exception {
        assumeTwoGpusAndNccl();
        try (var gpt2 = GPT2.randomInit(SMALL)) {
            gpt2.saveCheckpoint(dir.resolve("model.bin"));
        }
        // exactly one batch of B*T per rank and step: the single GPU's 2 micro-batches are the 2 ranks' batches
        TokenShard.write(dir.resolve("train.bin"), TokenShard.Kind.GPT2, RandomTokens.of(2 * 2 * 64 + 1, 96, 5));
        TokenShard.write(dir.resolve("val.bin"), TokenShard.Kind.GPT2, RandomTokens.of(2 * 2 * 64 + 1, 96, 6));
        String[] fp32 = {"--precision", "fp32", "--attention", "plain", "-f", "0"};

        var oneGpu = new ArrayList<>(List.of(fp32));
        oneGpu.addAll(List.of("-d", Integer.toString(2 * 2 * 64)));
        var one = trainLosses(runTogether(dir, List.of(train("one", oneGpu.toArray(String[]::new)))));
        var two = trainLosses(runTogether(dir, twoRanks("two", fp32)));
        assertEquals(6, one.size(), "6 step lines");
        assertClose(one, two, 1e-5, "fp32, 2 GPUs vs 1 GPU with accumulation 2");

        var zero0 = trainLosses(runTogether(dir, twoRanks("zero0", "-z", "0")));
        var zero1 = trainLosses(runTogether(dir, twoRanks("zero1", "-z", "1", "-n", "3")));
        assertClose(zero0, zero1, 1e-3, "bf16, ZeRO-1 vs ZeRO-0");
        assertTrue(zero0.getLast() < zero0.getFirst(), "the loss falls: " + zero0);

        // resume the ZeRO-1 run from its step-3 checkpoint, copied alone into a fresh folder
        Path resumed = Files.createDirectories(dir.resolve("resumed"));
        for (String name :
                List.of("model_00000003.bin", "state_00000003_00000.bin", "state_00000003_00001.bin", "DONE_00000003"))
            Files.copy(dir.resolve("zero1").resolve(name), resumed.resolve(name));
        runTogether(dir, twoRanks("resumed", "-z", "1", "-n", "3", "-y", "1"));
        assertArrayEquals(
                Files.readAllBytes(dir.resolve("zero1/model_00000006.bin")),
                Files.readAllBytes(resumed.resolve("model_00000006.bin")),
                "a resumed 2-GPU ZeRO-1 bf16 run ends bit for bit as the uninterrupted one");
        for (int rank = 0; rank < 2; rank++) {
            String state = "state_00000006_0000%d.bin".formatted(rank);
            assertArrayEquals(
                    Files.readAllBytes(dir.resolve("zero1").resolve(state)),
                    Files.readAllBytes(resumed.resolve(state)),
                    state);
        }
    }
}
