package dev.llmc4j.gpt2.cuda;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Every kernel the host code launches exists in the fatbin (via kernels.txt, which build-kernels.sh extracts from
 * the preprocessed sources). Catches a renamed kernel on a machine without a GPU.
 */
class KernelNamesTest {

    /** Names GPT2Cuda builds with k("...") are suffixed per precision; these are the bases. */
    static List<String> baseNamesUsedBy(Path source) throws IOException {
        var names = new ArrayList<String>();
        var m = Pattern.compile("k\\(\"([a-z_0-9]+)\"\\)").matcher(Files.readString(source));
        while (m.find()) names.add(m.group(1));
        return names;
    }

    static Path source(String file) {
        String root = System.getProperty("llmc.root", "..");
        Path p = Path.of(root, "gpt2-cuda/src/main/java/dev/llmc4j/gpt2/cuda", file);
        return Files.exists(p) ? p : Path.of("src/main/java/dev/llmc4j/gpt2/cuda", file);
    }

    @Test
    void everyLaunchedKernelIsExported() throws IOException {
        assumeTrue(Kernels.fatbinPresent(), "kernels.fatbin not built (no nvcc at build time)");
        Set<String> exported = Kernels.exportedNames();
        assertFalse(exported.isEmpty(), "kernels.txt is empty");

        List<String> bases = baseNamesUsedBy(source("GPT2Cuda.java"));
        assertTrue(bases.size() >= 15, "found " + bases);
        for (Precision p : Precision.values()) {
            for (String base : bases) assertTrue(exported.contains(base + "_" + p.suffix()), base + "_" + p.suffix());
            assertTrue(exported.contains("check_finite_" + p.suffix()));
            if (p != Precision.FP32) {
                assertTrue(exported.contains("convert_f32_to_" + p.suffix()));
                assertTrue(exported.contains("convert_" + p.suffix() + "_to_f32"));
                assertTrue(exported.contains(FlashAttention.preprocessKernel(p)));
                for (int hs : new int[] {64, 96, 128}) {
                    assertTrue(exported.contains(FlashAttention.forwardKernel(p, hs)));
                    assertTrue(exported.contains(FlashAttention.backwardDkDvKernel(p, hs)));
                    assertTrue(exported.contains(FlashAttention.backwardDqKernel(p, hs)));
                }
            }
        }
        assertTrue(exported.contains("sum_partials"));
    }

    @Test
    void fatbinHasTheFatbinMagic() {
        assumeTrue(Kernels.fatbinPresent(), "kernels.fatbin not built (no nvcc at build time)");
        byte[] image = Kernels.readResource(Kernels.FATBIN);
        // fatbin files start with 0xBA55ED50 (little-endian 50 ED 55 BA)
        assertEquals((byte) 0x50, image[0]);
        assertEquals((byte) 0xED, image[1]);
        assertEquals((byte) 0x55, image[2]);
        assertEquals((byte) 0xBA, image[3]);
        assertTrue(image.length > 100_000, "size " + image.length);
    }
}
