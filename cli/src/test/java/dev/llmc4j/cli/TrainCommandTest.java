package dev.llmc4j.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

import dev.llmc4j.gpt2.cuda.CudaDriver;
import dev.llmc4j.gpt2.cuda.GPT2Cuda;
import dev.llmc4j.gpt2.cuda.Precision;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

/** {@code ./llmc train} and {@code ./llmc test-gpt2}: the device flags, parsed and checked without a GPU. */
class TrainCommandTest {
    @TempDir
    Path folder;

    private static TrainCommand parse(String... args) {
        var command = new TrainCommand();
        new CommandLine(command).parseArgs(args);
        return command;
    }

    /** Empty train/val files: enough for the existence check, which comes before the model is built. */
    private String[] data() throws IOException {
        Path train = Files.createFile(folder.resolve("train.bin"));
        Path val = Files.createFile(folder.resolve("val.bin"));
        return new String[] {"-i", train.toString(), "-j", val.toString()};
    }

    @Test
    void uiIsOffUnlessAskedForAndTakesAnOptionalPort() {
        assertFalse(parse().monitor.enabled());
        assertEquals(8080, parse("--ui").monitor.port());
        assertEquals(0, parse("--ui", "0", "-x", "5").monitor.port());
        var beforeAnotherOption = parse("--ui", "-x", "5");
        assertEquals(8080, beforeAnotherOption.monitor.port());
        assertEquals(5, beforeAnotherOption.training.maxSteps);
    }

    @Test
    void defaultsAreCpuAndLlmcsGpuDefaults() {
        var command = parse();
        assertEquals(DeviceOptions.Device.CPU, command.device.device());
        assertFalse(command.device.isCuda());
        var options = command.cudaOptions();
        assertEquals(new GPT2Cuda.Options(Precision.BF16, GPT2Cuda.Attention.FLASH, 1, true, true), options);
    }

    @Test
    void cudaFlagsParse() {
        var command = parse("--device", "cuda", "--precision", "fp32", "-r", "2", "-w", "0", "-f", "0");
        assertTrue(command.device.isCuda());
        // fp32 picks plain attention by itself
        assertEquals(
                new GPT2Cuda.Options(Precision.FP32, GPT2Cuda.Attention.PLAIN, 2, false, false), command.cudaOptions());

        var bf16 = parse("--device", "CUDA", "--precision", "bf16", "--attention", "plain", "--recompute", "0");
        assertEquals(new GPT2Cuda.Options(Precision.BF16, GPT2Cuda.Attention.PLAIN, 0, true, true), bf16.cudaOptions());
        assertEquals("cuda (bf16, plain attention, recompute 0)", bf16.device.describe());

        var fp16 = parse("--device", "cuda", "--precision", "fp16");
        assertEquals(Precision.FP16, fp16.cudaOptions().precision());
        assertEquals(GPT2Cuda.Attention.FLASH, fp16.cudaOptions().attention());
    }

    @Test
    void badCombinationsAreUserErrors() {
        assertThrows(LlmcException.class, () -> parse("--device", "tpu").device.device());
        assertThrows(
                LlmcException.class,
                () -> parse("--device", "cuda", "--precision", "fp8").cudaOptions());
        assertThrows(
                LlmcException.class,
                () -> parse("--device", "cuda", "--attention", "sparse").cudaOptions());
        assertThrows(
                LlmcException.class,
                () -> parse("--device", "cuda", "--precision", "fp32", "--attention", "flash")
                        .cudaOptions());
        assertThrows(
                LlmcException.class, () -> parse("--device", "cuda", "-r", "3").cudaOptions());
        assertThrows(
                LlmcException.class, () -> parse("--device", "cuda", "-w", "2").cudaOptions());
        assertThrows(
                LlmcException.class, () -> parse("--precision", "bf16").device.checkCpu());
        parse("--precision", "fp32", "-r", "2").device.checkCpu(); // fp32 on the CPU is what it does; -r is accepted
        assertThrows(LlmcException.class, () -> parse("-r", "3").device.cpuRecompute());
    }

    @Test
    void recomputeReachesTheCpuModel() {
        assertEquals(1, parse().device.cpuRecompute(), "llm.c's default, -r 1");
        assertEquals(2, parse("-r", "2").device.cpuRecompute());
        assertEquals(0, parse("--recompute", "0").device.cpuRecompute());
        assertEquals("cpu (fp32, recompute 2)", parse("-r", "2").device.describe());
    }

    @Test
    void cpuModelGetsTheRecomputeLevel() throws IOException {
        var command =
                parse(concat(new String[] {"--layers", "1", "--heads", "2", "--channels", "16", "-r", "2"}, data()));
        try (var model = command.buildModel(command.trainingConfig())) {
            assertEquals(2, ((dev.llmc4j.gpt2.GPT2) model).recompute());
        }
    }

    @Test
    void unknownDeviceExitsWithOneLine() throws IOException {
        var result = LlmcRun.of(concat(new String[] {"train", "--device", "tpu", "-x", "1"}, data()));
        assertEquals(1, result.exitCode());
        assertEquals(
                "error: unknown device 'tpu': expected cpu or cuda",
                result.err().strip());
    }

    @Test
    void bf16OnTheCpuIsRefused() throws IOException {
        var result = LlmcRun.of(concat(new String[] {"train", "--precision", "bf16", "-e", "d6", "-x", "1"}, data()));
        assertEquals(1, result.exitCode());
        assertTrue(result.err().strip().startsWith("error: --precision bf16 needs --device cuda"), result.err());
    }

    @Test
    void trainOnCudaWithoutAGpuExitsWithOneLine() throws IOException {
        assumeFalse(CudaDriver.isAvailable(), "a CUDA device is present");
        var result = LlmcRun.of(concat(new String[] {"train", "--device", "cuda", "-e", "d6", "-x", "1"}, data()));
        assertEquals(1, result.exitCode());
        String err = result.err().strip();
        assertTrue(err.startsWith("error: no CUDA device: "), err);
        assertEquals(1, err.lines().count(), err);
        assertFalse(err.contains("Exception"), err);
    }

    @Test
    void testGpt2OnCudaWithoutAGpuExitsWithOneLine() {
        assumeFalse(CudaDriver.isAvailable(), "a CUDA device is present");
        var result = LlmcRun.of(
                "test-gpt2",
                "--device",
                "cuda",
                "--model",
                folder.resolve("gpt2_124M_bf16.bin").toString(),
                "--state",
                folder.resolve("state.bin").toString());
        assertEquals(1, result.exitCode());
        String err = result.err().strip();
        assertTrue(err.startsWith("error: no CUDA device: "), err);
        assertEquals(1, err.lines().count(), err);
    }

    @Test
    void helpListsTheDeviceOptions() {
        var result = LlmcRun.of("train", "--help");
        assertEquals(0, result.exitCode());
        for (String option :
                new String[] {"--device", "--precision", "--recompute", "--attention", "--master-weights", "--tf32"})
            assertTrue(result.out().contains(option), option + " in\n" + result.out());
        var test = LlmcRun.of("test-gpt2", "--help");
        assertTrue(test.out().contains("--device") && test.out().contains("--precision"), test.out());
    }

    private static String[] concat(String[] a, String[] b) {
        var all = java.util.Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, all, a.length, b.length);
        return all;
    }
}
