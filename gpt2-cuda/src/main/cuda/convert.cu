// Precision conversions and fp16 loss-scaling helpers.
//
// convert_f32_to_X: fp32 -> floatX, round to nearest even (loading an fp32 checkpoint into a bf16 model).
// convert_X_to_f32: floatX -> fp32, exact (copying parameters or gradients back to the host).
// check_finite_X:   sets *flag = 1 if any element is inf or NaN. Several threads may write the same 1: the
//                   result does not depend on who wins, so this is deterministic without atomics.
// scale_inplace_X:  x *= factor (unscaling gradients by 1/lossScale when not folded into AdamW).
#include "common.cuh"

template <typename floatX>
__device__ void convert_f32_to(floatX* out, const float* in, size_t n) {
    FOR_EACH_INDEX(i, n) out[i] = from_f32<floatX>(in[i]);
}

template <typename floatX>
__device__ void convert_to_f32(float* out, const floatX* in, size_t n) {
    FOR_EACH_INDEX(i, n) out[i] = to_f32(in[i]);
}

template <typename floatX>
__device__ void check_finite(int* flag, const floatX* x, size_t n) {
    FOR_EACH_INDEX(i, n) {
        if (!isfinite(to_f32(x[i]))) *flag = 1;
    }
}

template <typename floatX>
__device__ void scale_inplace(floatX* x, size_t n, float factor) {
    FOR_EACH_INDEX(i, n) x[i] = from_f32<floatX>(to_f32(x[i]) * factor);
}

// fp32 runs need no conversion (the host copies bytes), so only the 16-bit types export converters;
// that also keeps the names unique (convert_f32_to_f32 would be both directions).
#define EXPORT_CONVERT(suffix, floatX)                                                                          \
    extern "C" __global__ void convert_f32_to_##suffix(floatX* out, const float* in, size_t n) {                \
        convert_f32_to(out, in, n);                                                                             \
    }                                                                                                           \
    extern "C" __global__ void convert_##suffix##_to_f32(float* out, const floatX* in, size_t n) {              \
        convert_to_f32(out, in, n);                                                                             \
    }
DEFINE_FOR_16BIT_FLOATX(EXPORT_CONVERT)

#define EXPORT_LOSS_SCALING(suffix, floatX)                                                                     \
    extern "C" __global__ void check_finite_##suffix(int* flag, const floatX* x, size_t n) {                    \
        check_finite(flag, x, n);                                                                               \
    }                                                                                                           \
    extern "C" __global__ void scale_inplace_##suffix(floatX* x, size_t n, float factor) {                      \
        scale_inplace(x, n, factor);                                                                            \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_LOSS_SCALING)
