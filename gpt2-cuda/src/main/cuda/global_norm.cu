// Global gradient norm, deterministic in two stages:
//   stage 1: a FIXED number of blocks (chosen by the host, independent of timing) each sum the squares of a
//            grid-strided slice into partials[blockIdx.x];
//   stage 2: one block adds the partials in a fixed order into out[0].
// The host takes the square root. Because squares of inf/NaN stay inf/NaN, a non-finite result also tells
// the fp16 loss scaler that the gradients overflowed.
#include "common.cuh"

template <typename floatX>
__device__ void norm_squared_partial(float* partials, const floatX* x, size_t n) {
    __shared__ float scratch[32];
    float sum = 0.0f;
    FOR_EACH_INDEX(i, n) { float v = to_f32(x[i]); sum += v * v; }
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) partials[blockIdx.x] = sum;
}

#define EXPORT_NORM(suffix, floatX)                                                                          \
    extern "C" __global__ void norm_squared_partial_##suffix(float* partials, const floatX* x, size_t n) {   \
        norm_squared_partial(partials, x, n);                                                                \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_NORM)

// Stage 2: launch with exactly one block. Thread i adds partials i, i+blockDim, ... then the block sums.
extern "C" __global__ void sum_partials(float* out, const float* partials, int count) {
    __shared__ float scratch[32];
    float sum = 0.0f;
    for (int i = threadIdx.x; i < count; i += blockDim.x) sum += partials[i];
    sum = block_sum(sum, scratch);
    if (threadIdx.x == 0) out[0] = sum;
}
