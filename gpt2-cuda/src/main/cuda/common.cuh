// Shared helpers for every kernel in this folder.
//
// Every kernel is written once as a template over `floatX`, the storage type of parameters, gradients and
// activations (bf16, fp16 or fp32), and exported three times with plain C names ending in _bf16, _f16 or _f32,
// so the Java side can look each one up by name with cuModuleGetFunction. Arithmetic is always done in fp32;
// floatX is only how numbers are stored.
#pragma once

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>
#include <float.h>

// ----------------------------------------------------------------------------------------------------------------
// floatX <-> float

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }

// Round-to-nearest-even, the same as PyTorch's .to(dtype).
template <typename floatX> __device__ __forceinline__ floatX from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) { return __float2bfloat16_rn(x); }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }

// ----------------------------------------------------------------------------------------------------------------
// Export macros: DEFINE_FOR_EACH_FLOATX(M) expands M(suffix, type) for the three storage types.

#define DEFINE_FOR_EACH_FLOATX(M) M(bf16, __nv_bfloat16) M(f16, __half) M(f32, float)
#define DEFINE_FOR_16BIT_FLOATX(M) M(bf16, __nv_bfloat16) M(f16, __half)

// ----------------------------------------------------------------------------------------------------------------
// Reductions. All of them combine values in a fixed order, so results are bitwise reproducible run to run.

__device__ __forceinline__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, offset));
    return v;
}

// Sum over the whole block (blockDim.x a multiple of 32, at most 1024). `scratch` holds 32 floats of shared memory.
// Every thread gets the total. Order: butterfly inside each warp, then warp 0 sums the 32 warp totals.
__device__ __forceinline__ float block_sum(float v, float* scratch) {
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, numWarps = blockDim.x / 32;
    v = warp_sum(v);
    __syncthreads();                // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float total = lane < numWarps ? scratch[lane] : 0.0f;
    total = warp_sum(total);        // every warp computes the same total from the same values
    return total;
}

// ----------------------------------------------------------------------------------------------------------------
// Stochastic rounding fp32 -> bf16.
//
// Rounding fp32 master weights to bf16 to nearest throws away every update smaller than half a bf16 step, so
// small learning rates would stop moving the bf16 copy at all. Rounding up with probability equal to the dropped
// fraction keeps the bf16 weights right *on average*. We add 16 random bits below the bf16 mantissa and
// truncate: the carry into bit 16 happens with probability (low 16 bits) / 65536.

// A 32-bit integer hash (xorshift-multiply finaliser) giving well-mixed bits from (seed, index).
__device__ __forceinline__ uint32_t hash_u32(uint32_t x) {
    x ^= x >> 16; x *= 0x7feb352du;
    x ^= x >> 15; x *= 0x846ca68bu;
    x ^= x >> 16;
    return x;
}

__device__ __forceinline__ uint32_t random_bits(uint32_t seed, size_t index) {
    return hash_u32(seed ^ hash_u32((uint32_t) index ^ hash_u32((uint32_t) (index >> 32) + 0x9e3779b9u)));
}

__device__ __forceinline__ __nv_bfloat16 stochastic_round_bf16(float x, uint32_t random) {
    if (!isfinite(x)) return __float2bfloat16_rn(x);
    uint32_t bits = __float_as_uint(x);
    uint32_t rounded = (bits + (random & 0xFFFFu)) & 0xFFFF0000u;
    // the carry can overflow the largest finite bf16 into inf; fall back to nearest there
    if (!isfinite(__uint_as_float(rounded))) return __float2bfloat16_rn(x);
    return __float2bfloat16_rn(__uint_as_float(rounded));   // exact: the low 16 bits are zero
}

// Store an updated parameter: bf16 stochastically, fp16 to nearest, fp32 exactly.
__device__ __forceinline__ void store_param(__nv_bfloat16* p, float x, uint32_t random) { *p = stochastic_round_bf16(x, random); }
__device__ __forceinline__ void store_param(__half* p, float x, uint32_t) { *p = __float2half_rn(x); }
__device__ __forceinline__ void store_param(float* p, float x, uint32_t) { *p = x; }

// Grid-stride loop over n elements (n may exceed 2^31).
#define FOR_EACH_INDEX(i, n) \
    for (size_t i = (size_t) blockIdx.x * blockDim.x + threadIdx.x; i < (size_t) (n); i += (size_t) gridDim.x * blockDim.x)
