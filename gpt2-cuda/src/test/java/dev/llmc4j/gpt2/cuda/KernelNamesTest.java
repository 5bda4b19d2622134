package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.util.LlmcException;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;
import org.junit.jupiter.api.Test;

/**
 * Every kernel a {@link CudaKernels} launcher can use is exported by the fatbin (kernels.txt, which
 * build-kernels.sh extracts from the preprocessed sources), and a missing one is named when the module loads.
 * Catches a renamed kernel on a machine without a GPU.
 */
class KernelNamesTest {

    @Test
    void everyLauncherKernelIsExported() {
        assumeTrue(KernelModule.fatbinPresent(), "kernels.fatbin not built (no nvcc at build time)");
        Set<String> exported = KernelModule.exportedNames();
        var missing = new TreeSet<>(CudaKernels.kernelNames());
        missing.removeAll(exported);
        assertEquals(Set.of(), missing);
        assertDoesNotThrow(() -> KernelModule.requireExported(exported, CudaKernels.kernelNames()));
    }

    @Test
    void theLaunchersNameEveryKernelOfTheFatbin() {
        assumeTrue(KernelModule.fatbinPresent(), "kernels.fatbin not built (no nvcc at build time)");
        var unused = new TreeSet<>(KernelModule.exportedNames());
        CudaKernels.kernelNames().forEach(unused::remove);
        assertEquals(Set.of(), unused, "kernels no launcher uses");
    }

    @Test
    void kernelNamesCoverEveryPrecisionAndFlashHeadSize() {
        List<String> names = CudaKernels.kernelNames();
        assertEquals(names.size(), new HashSet<>(names).size(), "no duplicates");
        assertTrue(names.contains("layernorm_forward_f32"));
        assertTrue(names.contains("adamw_update_bf16"));
        assertTrue(names.contains("flash_attention_backward_dq_f16_hs128"));
        assertFalse(names.contains("flash_attention_forward_f32_hs64"), "no fp32 flash attention");
        assertFalse(names.contains("convert_f32_to_f32"));
    }

    @Test
    void aMissingKernelIsNamedWhenTheModuleLoads() {
        var exported = new TreeSet<>(CudaKernels.kernelNames());
        exported.remove("gelu_forward_bf16");
        exported.remove("sum_partials");
        var e = assertThrows(
                LlmcException.class, () -> KernelModule.requireExported(exported, CudaKernels.kernelNames()));
        assertTrue(
                e.getMessage().startsWith("kernels.fatbin has no kernel gelu_forward_bf16, sum_partials"),
                e.getMessage());
        var none = assertThrows(LlmcException.class, () -> KernelModule.requireExported(Set.of(), List.of("x")));
        assertTrue(none.getMessage().contains("built without nvcc"), none.getMessage());
    }

    @Test
    void fatbinHasTheFatbinMagic() {
        assumeTrue(KernelModule.fatbinPresent(), "kernels.fatbin not built (no nvcc at build time)");
        byte[] image = KernelModule.readResource(KernelModule.FATBIN);
        // fatbin files start with 0xBA55ED50 (little-endian 50 ED 55 BA)
        assertEquals((byte) 0x50, image[0]);
        assertEquals((byte) 0xED, image[1]);
        assertEquals((byte) 0x55, image[2]);
        assertEquals((byte) 0xBA, image[3]);
        assertTrue(image.length > 100_000, "size " + image.length);
    }
}
