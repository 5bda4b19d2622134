package dev.llmc4j.gpt2.cuda;

/**
 * The storage type of parameters, gradients and activations on the GPU ("floatX" in the kernels). Arithmetic is
 * fp32 everywhere; LayerNorm statistics, losses, AdamW moments and master weights are always fp32.
 *
 * @param suffix        the kernel-name suffix (layernorm_forward_bf16, ...)
 * @param bytes         bytes per element
 * @param cudaDataType  cudaDataType_t for cuBLASLt (CUDA_R_16BF = 14, CUDA_R_16F = 2, CUDA_R_32F = 0)
 */
public enum Precision {
    BF16("bf16", 2, 14),
    /** fp16 has 5 exponent bits: gradients underflow without loss scaling, see {@link DynamicLossScaler}. */
    FP16("f16", 2, 2),
    FP32("f32", 4, 0);

    private final String suffix;
    private final int bytes;
    private final int cudaDataType;

    Precision(String suffix, int bytes, int cudaDataType) {
        this.suffix = suffix;
        this.bytes = bytes;
        this.cudaDataType = cudaDataType;
    }

    public String suffix() {
        return suffix;
    }

    public int bytes() {
        return bytes;
    }

    public int cudaDataType() {
        return cudaDataType;
    }

    /** Our flash attention runs on bf16/fp16 tensor cores; fp32 models use the plain attention kernels. */
    public boolean supportsFlashAttention() {
        return this != FP32;
    }

    /** "bf16", "fp16" or "fp32" (case-insensitive; "f16"/"f32"/"half"/"float" too). */
    public static Precision parse(String s) {
        return switch (s.toLowerCase(java.util.Locale.ROOT)) {
            case "bf16", "bfloat16" -> BF16;
            case "fp16", "f16", "half", "float16" -> FP16;
            case "fp32", "f32", "float", "float32" -> FP32;
            default ->
                throw new dev.llmc4j.util.LlmcException("unknown precision '" + s + "': expected bf16, fp16 or fp32");
        };
    }
}
