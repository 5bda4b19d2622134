package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.util.LlmcException;

/**
 * A CUDA driver or cuBLASLt call returned an error. The message names the call and the error, e.g.
 * {@code cuMemAlloc_v2(1073741824 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (out of memory)}.
 *
 * @see CudaDriver#check
 */
public final class CudaException extends LlmcException {
    private static final long serialVersionUID = 1L;

    private final String call;
    private final String errorName;
    private final int code;

    public CudaException(String call, int code, String errorName, String description) {
        super(call + " failed: " + errorName
                + (description == null || description.isEmpty() ? "" : " (" + description + ")"));
        this.call = call;
        this.errorName = errorName;
        this.code = code;
    }

    /** The call that failed, with its interesting arguments. */
    public String call() {
        return call;
    }

    /** The symbolic error, e.g. CUDA_ERROR_OUT_OF_MEMORY or CUBLAS_STATUS_NOT_SUPPORTED. */
    public String errorName() {
        return errorName;
    }

    /** The numeric CUresult / cublasStatus_t. */
    public int code() {
        return code;
    }
}
