package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.tutorials.cudakernel.WarpSoftmax;
import dev.llmc4j.tutorials.step16.Fatbins;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The "writing a CUDA kernel" page: the warp's butterfly reductions, the warp-per-row softmax replayed on the CPU
 * against a plain softmax, the coalescing arithmetic, and softmax.cu through nvcc (skipped without nvcc).
 */
class CudaKernelTest {
    static final Path SOFTMAX_CU =
            Path.of(System.getProperty("llmc.root", ".."), "tutorials/src/main/cuda/kernels/softmax.cu");

    @Test
    void fiveButterflyStepsGiveEveryLaneTheWholeWarpsSumAndMax() {
        float[] sum = new float[32], max = new float[32];
        for (int lane = 0; lane < 32; lane++) {
            sum[lane] = lane + 1; // 1 + 2 + ... + 32 = 528, exact in float
            max[lane] = (lane * 7) % 32 - 10; // a permutation of -10 .. 21
        }
        WarpSoftmax.warpSum(sum);
        WarpSoftmax.warpMax(max);
        float[] all528 = new float[32], all21 = new float[32];
        java.util.Arrays.fill(all528, 528);
        java.util.Arrays.fill(all21, 21);
        assertArrayEquals(all528, sum, "every lane holds the sum");
        assertArrayEquals(all21, max, "every lane holds the max");
        System.out.println("warp butterflies: 32 lanes holding 1..32 all hold 528 after offsets 16, 8, 4, 2, 1");
    }

    @Test
    void theWarpPerRowSoftmaxIsTheSoftmax() {
        var random = new Random(32);
        double worst = 0;
        for (int cols : new int[] {1, 7, 31, 32, 33, 100, 1000}) {
            float[] x = new float[cols];
            for (int i = 0; i < cols; i++) x[i] = (float) (3 * random.nextGaussian());
            double max = Double.NEGATIVE_INFINITY, sum = 0;
            for (float v : x) max = Math.max(max, v);
            for (float v : x) sum += Math.exp(v - max);
            float[] warp = WarpSoftmax.softmaxRow(x);
            for (int i = 0; i < cols; i++) {
                double expected = Math.exp(x[i] - max) / sum;
                worst = Math.max(worst, Math.abs(warp[i] - expected) / expected);
            }
        }
        System.out.printf(
                "softmax_warp_per_row replayed lane by lane vs softmax in double, rows of 1 to 1000:"
                        + " worst relative error %.1e%n",
                worst);
        assertTrue(worst < 1e-5, "float rounding only: " + worst);
    }

    @Test
    void coalescedLoadsTouchOneSegmentStridedOnesThirtyTwo() {
        assertEquals(1, WarpSoftmax.segmentsTouched(0, 1), "32 neighbouring floats, aligned: one 128-byte segment");
        assertEquals(2, WarpSoftmax.segmentsTouched(8, 1), "the same, 32 bytes off: two segments");
        assertEquals(2, WarpSoftmax.segmentsTouched(0, 2), "every other float: two segments, half of each wasted");
        assertEquals(32, WarpSoftmax.segmentsTouched(0, 768), "one thread per row of 768: 32 segments");
        System.out.printf(
                "one warp-wide load: coalesced %d segment, thread-per-row (C = 768) %d segments%n",
                WarpSoftmax.segmentsTouched(0, 1), WarpSoftmax.segmentsTouched(0, 768));
    }

    @Test
    void nvccCompilesTheThreeKernels(@TempDir Path dir) throws Exception {
        var nvcc = Fatbins.findNvcc();
        assumeTrue(nvcc.isPresent(), "no nvcc (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin): softmax.cu not compiled");
        Path fatbin = dir.resolve("softmax.fatbin");
        var command = Fatbins.nvccCommand(nvcc.get().toString(), SOFTMAX_CU, fatbin, 80);
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(180, TimeUnit.SECONDS), "nvcc timed out");
        assertEquals(0, process.exitValue(), String.join(" ", command) + "\n" + output);
        byte[] image = Files.readAllBytes(fatbin);
        for (String kernel : new String[] {"softmax_thread_per_row", "softmax_warp_per_row", "softmax_block_per_row"})
            assertTrue(Fatbins.mentions(image, kernel), kernel + " is in the image");
        System.out.printf("nvcc -fatbin softmax.cu (sm_80): %,d bytes, three kernels%n", image.length);
    }
}
