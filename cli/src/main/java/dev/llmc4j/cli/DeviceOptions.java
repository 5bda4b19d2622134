package dev.llmc4j.cli;

import dev.llmc4j.gpt2.cuda.GPT2Cuda;
import dev.llmc4j.gpt2.cuda.Precision;
import dev.llmc4j.util.LlmcException;
import java.util.Locale;
import picocli.CommandLine.Option;

/**
 * Where a GPT-2 runs: {@code --device cpu} (fp32, the default) or {@code --device cuda} with the GPU's options,
 * llm.c's build switches and flags: {@code --precision} (its PRECISION=), {@code -r} recompute, and our
 * {@code --attention}. Nothing here touches the CUDA driver: it is loaded only when a CUDA model is built.
 */
public final class DeviceOptions {

    /** The two devices a GPT-2 runs on. */
    public enum Device {
        CPU,
        CUDA
    }

    @Option(
            names = "--device",
            paramLabel = "cpu|cuda",
            defaultValue = "cpu",
            description = "cpu (fp32, the default) or cuda (an NVIDIA GPU, compute capability 8.0+)")
    String device;

    @Option(
            names = "--precision",
            paramLabel = "bf16|fp32|fp16",
            description = "cuda: storage type of parameters, gradients and activations (default bf16); cpu: fp32 only")
    String precision;

    @Range(min = 0, max = 2)
    @Option(
            names = {"-r", "--recompute"},
            paramLabel = "0|1|2",
            defaultValue = "1",
            description =
                    "0 keep all activations, 1 recompute GELU in backward, 2 also LayerNorm (default: ${DEFAULT-VALUE})")
    int recompute;

    @Option(
            names = "--attention",
            paramLabel = "flash|plain",
            description =
                    "cuda: flash (16-bit, head size 64/96/128) or plain (default: flash for bf16/fp16, plain for fp32)")
    String attention;

    public Device device() {
        return switch (device.toLowerCase(Locale.ROOT)) {
            case "cpu" -> Device.CPU;
            case "cuda", "gpu" -> Device.CUDA;
            default -> throw new LlmcException("unknown device '" + device + "': expected cpu or cuda");
        };
    }

    public boolean isCuda() {
        return device() == Device.CUDA;
    }

    /** The precision on the GPU (bf16 unless --precision says otherwise). */
    public Precision precision() {
        return precision == null ? Precision.BF16 : Precision.parse(precision);
    }

    public GPT2Cuda.Attention attention(Precision p) {
        if (attention == null) return p.supportsFlashAttention() ? GPT2Cuda.Attention.FLASH : GPT2Cuda.Attention.PLAIN;
        return switch (attention.toLowerCase(Locale.ROOT)) {
            case "flash" -> GPT2Cuda.Attention.FLASH;
            case "plain" -> GPT2Cuda.Attention.PLAIN;
            default -> throw new LlmcException("unknown attention '" + attention + "': expected flash or plain");
        };
    }

    /** The GPU model's options (checked: recompute 0..2, flash attention only with 16-bit storage). */
    public GPT2Cuda.Options cudaOptions(boolean masterWeights, boolean allowTf32) {
        Precision p = precision();
        return new GPT2Cuda.Options(p, attention(p), recompute, masterWeights, allowTf32);
    }

    /** The recompute level (-r) for the CPU model, checked: 0, 1 or 2. */
    public int cpuRecompute() {
        checkCpu();
        return recompute;
    }

    /** Rejects GPU-only settings that cannot apply on the CPU (the CPU model computes in fp32 only). */
    public void checkCpu() {
        if (precision != null && precision() != Precision.FP32)
            throw new LlmcException(
                    "--precision " + precision + " needs --device cuda: the CPU model computes in fp32");
        if (recompute < 0 || recompute > 2)
            throw new LlmcException("recompute (-r) must be 0, 1 or 2, found " + recompute);
    }

    /** "cuda (bf16, flash attention, recompute 1)" or "cpu (fp32, recompute 1)". */
    public String describe() {
        if (!isCuda()) return "cpu (fp32, recompute %d)".formatted(recompute);
        Precision p = precision();
        return "cuda (%s, %s attention, recompute %d)"
                .formatted(
                        p.name().toLowerCase(Locale.ROOT), attention(p).name().toLowerCase(Locale.ROOT), recompute);
    }
}
