package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.llmc4j.model.GPT2Config;
import org.junit.jupiter.api.Test;

class PeakFlopsTest {

    @Test
    void knownDevices() {
        assertEquals(989.0, PeakFlops.bf16Tflops("NVIDIA H100 80GB HBM3"));
        assertEquals(756.0, PeakFlops.bf16Tflops("NVIDIA H100 PCIe"));
        assertEquals(989.0, PeakFlops.bf16Tflops("NVIDIA H200"));
        assertEquals(312.0, PeakFlops.bf16Tflops("NVIDIA A100-SXM4-80GB"));
        assertEquals(165.2, PeakFlops.bf16Tflops("NVIDIA GeForce RTX 4090"));
        assertEquals(-1, PeakFlops.bf16Tflops("Tesla V100-SXM2-16GB"));
    }

    @Test
    void flopsPerTokenOfGpt2Small() {
        var d12 = GPT2Config.fromDescriptor("d12");
        // 6 * 124,475,904 + 6 * 12 * 768 * 1024
        assertEquals(6.0 * 124_475_904 + 6.0 * 12 * 768 * 1024, PeakFlops.flopsPerToken(d12, 1024));
    }

    @Test
    void mfu() {
        var d12 = GPT2Config.fromDescriptor("d12");
        double flops = PeakFlops.flopsPerToken(d12, 1024) * 16 * 1024; // one B=16, T=1024 step
        double seconds = flops / 312e12 / 0.5; // 50% of an A100
        assertEquals(0.5, PeakFlops.mfu(d12, 1024, 16 * 1024, seconds, "NVIDIA A100-SXM4-40GB"), 1e-12);
        assertEquals(-1, PeakFlops.mfu(d12, 1024, 16 * 1024, seconds, "unknown"));
    }
}
