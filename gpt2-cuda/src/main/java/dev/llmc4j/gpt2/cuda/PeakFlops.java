package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.model.GPT2Config;
import java.util.Locale;

/**
 * Model FLOPs utilisation: how much of the GPU's dense bf16 tensor-core peak a training step achieves.
 *
 * <p>Work per token: 6 N (forward 2N, backward 4N multiply-adds of the weights) plus 6 L C T for attention
 * (QK^T and AV, forward and backward), as llm.c counts it. Peak: the vendor's dense bf16 number.
 */
public final class PeakFlops {
    private PeakFlops() {}

    /** Dense bf16 peak in TFLOPS for a device name as cuDeviceGetName reports it; -1 if unknown. */
    public static double bf16Tflops(String deviceName) {
        String n = deviceName.toUpperCase(Locale.ROOT);
        if (n.contains("H200")) return 989.0; // same SXM tensor cores as H100
        if (n.contains("H100")) return n.contains("PCIE") ? 756.0 : 989.0; // SXM (HBM3) vs PCIe
        if (n.contains("GH200")) return 989.0;
        if (n.contains("A100")) return 312.0;
        if (n.contains("A800")) return 312.0;
        if (n.contains("L40S")) return 362.0;
        if (n.contains("RTX 4090")) return 165.2;
        if (n.contains("RTX 3090")) return 71.0;
        if (n.contains("A10G")) return 70.0;
        return -1;
    }

    /** Training FLOPs per token: 6 N + 6 L C T. */
    public static double flopsPerToken(GPT2Config config, int seqLen) {
        return 6.0 * config.numParameters() + 6.0 * config.numLayers() * config.channels() * seqLen;
    }

    /** MFU in [0,1] for a step of {@code tokens} tokens taking {@code seconds}; -1 if the peak is unknown. */
    public static double mfu(GPT2Config config, int seqLen, long tokens, double seconds, String deviceName) {
        double peak = bf16Tflops(deviceName);
        if (peak <= 0) return -1;
        return flopsPerToken(config, seqLen) * tokens / seconds / (peak * 1e12);
    }
}
