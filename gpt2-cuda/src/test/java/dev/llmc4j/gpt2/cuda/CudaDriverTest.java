package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.util.LlmcException;
import java.util.List;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;

class CudaDriverTest {

    @Test
    void withoutADriverTheErrorSaysSo() {
        assumeFalse(driverLoads(), "a CUDA driver is installed here");
        assertFalse(CudaDriver.isAvailable());
        var e = assertThrows(LlmcException.class, CudaDriver::get);
        assertTrue(e.getMessage().startsWith("no CUDA driver (libcuda.so.1) found: "), e.getMessage());
        // the same failure every time, without retrying the load
        assertSame(e, assertThrows(LlmcException.class, CudaDriver::get));
    }

    @Test
    void aMissingLibraryNamesEveryCandidate() {
        var e = assertThrows(
                LlmcException.class,
                () -> NativeLibraries.open(
                        "cuBLASLt (libcublasLt.so)",
                        List.of("libdoes-not-exist-llmc.so.1", "/nowhere/libcublasLt.so.12")));
        assertTrue(
                e.getMessage().startsWith("no cuBLASLt (libcublasLt.so) found: tried libdoes-not-exist-llmc.so.1"),
                e.getMessage());
        assertTrue(e.getMessage().contains("/nowhere/libcublasLt.so.12 (absent)"), e.getMessage());
    }

    @Test
    void cudaExceptionCarriesTheNameAndTheCall() {
        var e = new CudaException("cuMemAlloc_v2(1024 bytes)", 2, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory");
        assertEquals("cuMemAlloc_v2(1024 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)", e.getMessage());
        assertEquals("CUDA_ERROR_OUT_OF_MEMORY", e.errorName());
        assertEquals(2, e.code());
        assertInstanceOf(LlmcException.class, e);
    }

    @Tag("gpu")
    @Test
    void onAGpuMachineTheDriverAnswers() {
        assumeTrue(CudaDriver.isAvailable(), "no CUDA device");
        var cuda = CudaDriver.get();
        assertTrue(cuda.deviceCount() > 0);
        int dev = cuda.device(0);
        assertFalse(cuda.deviceName(dev).isBlank());
        assertTrue(cuda.driverVersion() >= 11000);
        var e = assertThrows(CudaException.class, () -> cuda.device(10_000));
        assertEquals("CUDA_ERROR_INVALID_DEVICE", e.errorName());
    }

    private static boolean driverLoads() {
        try {
            CudaDriver.get();
            return true;
        } catch (LlmcException e) {
            return !e.getMessage().startsWith("no CUDA driver");
        }
    }
}
