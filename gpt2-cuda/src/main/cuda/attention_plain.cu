// Plain causal self-attention: materialises the (T,T) attention matrix per head. It is the readable reference
// the flash kernels are tested against, the fp32 path, and the "plain" side of the benchmark.
//
//   qkv (B,T,3C): q at channel offset 0, k at C, v at 2C; head h uses channels h*hs .. h*hs+hs-1 (hs = C/NH)
//   att (B,NH,T,T) fp32: softmax probabilities, row t only has entries t2 <= t (the rest are written as 0)
//   out (B,T,C):  out[b,t,h*hs+d] = sum_{t2<=t} att[b,h,t,t2] * v[b,t2,h,d]
//
// One warp per (b, h, t) row. Slow (O(T^2) memory traffic) but simple and exact in fp32.
#include "common.cuh"

template <typename floatX>
__device__ void attention_forward_plain(floatX* out, float* att, const floatX* qkv, int B, int T, int C, int NH) {
    int warpId = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warpId >= B * NH * T) return;
    int t = warpId % T, h = (warpId / T) % NH, b = warpId / (T * NH);
    int hs = C / NH;
    float scale = rsqrtf((float) hs);
    const floatX* q = qkv + ((size_t) b * T + t) * 3 * C + h * hs;
    float* row = att + (((size_t) b * NH + h) * T + t) * T;

    // scores and their max; lane handles keys t2 = lane, lane+32, ...
    float maxScore = -FLT_MAX;
    for (int t2 = lane; t2 <= t; t2 += 32) {
        const floatX* k = qkv + ((size_t) b * T + t2) * 3 * C + C + h * hs;
        float dot = 0.0f;
        for (int d = 0; d < hs; d++) dot += to_f32(q[d]) * to_f32(k[d]);
        row[t2] = dot * scale;
        maxScore = fmaxf(maxScore, dot * scale);
    }
    maxScore = warp_max(maxScore);
    float sum = 0.0f;
    for (int t2 = lane; t2 <= t; t2 += 32) {
        float e = expf(row[t2] - maxScore);
        row[t2] = e;
        sum += e;
    }
    float inv = 1.0f / warp_sum(sum);
    for (int t2 = lane; t2 < T; t2 += 32) row[t2] = t2 <= t ? row[t2] * inv : 0.0f;
    __syncwarp();   // the weighted sum below reads probabilities written by other lanes

    // out: lane handles channels d = lane, lane+32, ...
    floatX* o = out + ((size_t) b * T + t) * C + h * hs;
    for (int d = lane; d < hs; d += 32) {
        float acc = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) acc += row[t2] * to_f32(qkv[((size_t) b * T + t2) * 3 * C + 2 * C + h * hs + d]);
        o[d] = from_f32<floatX>(acc);
    }
}

// Backward, pass 1, one warp per query row (b,h,t):
//   datt[t2]    = dout_t . v_t2
//   dpreatt[t2] = att[t2] * (datt[t2] - sum_j att[j] datt[j])      (softmax backward), stored in `dpreatt`
//   dq_t        = scale * sum_t2 dpreatt[t2] k_t2                   (written, overwriting dqkv's q part)
template <typename floatX>
__device__ void attention_backward_plain_rows(floatX* dqkv, float* dpreatt, const floatX* dout, const floatX* qkv,
                                              const float* att, int B, int T, int C, int NH) {
    int warpId = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warpId >= B * NH * T) return;
    int t = warpId % T, h = (warpId / T) % NH, b = warpId / (T * NH);
    int hs = C / NH;
    float scale = rsqrtf((float) hs);
    size_t rowOff = (((size_t) b * NH + h) * T + t) * T;
    const floatX* dO = dout + ((size_t) b * T + t) * C + h * hs;

    float weighted = 0.0f;
    for (int t2 = lane; t2 <= t; t2 += 32) {
        const floatX* v = qkv + ((size_t) b * T + t2) * 3 * C + 2 * C + h * hs;
        float dot = 0.0f;
        for (int d = 0; d < hs; d++) dot += to_f32(dO[d]) * to_f32(v[d]);
        dpreatt[rowOff + t2] = dot;
        weighted += att[rowOff + t2] * dot;
    }
    weighted = warp_sum(weighted);
    for (int t2 = lane; t2 <= t; t2 += 32) dpreatt[rowOff + t2] = att[rowOff + t2] * (dpreatt[rowOff + t2] - weighted);
    __syncwarp();

    floatX* dq = dqkv + ((size_t) b * T + t) * 3 * C + h * hs;
    for (int d = lane; d < hs; d += 32) {
        float acc = 0.0f;
        for (int t2 = 0; t2 <= t; t2++) acc += dpreatt[rowOff + t2] * to_f32(qkv[((size_t) b * T + t2) * 3 * C + C + h * hs + d]);
        dq[d] = from_f32<floatX>(acc * scale);
    }
}

// Backward, pass 2, one warp per key row (b,h,t2) — a column of the attention matrix:
//   dk_t2 = scale * sum_{t>=t2} dpreatt[t][t2] q_t;     dv_t2 = sum_{t>=t2} att[t][t2] dout_t
// Gathering by column (instead of scattering from each row) keeps it deterministic without atomics.
template <typename floatX>
__device__ void attention_backward_plain_cols(floatX* dqkv, const float* dpreatt, const floatX* dout,
                                              const floatX* qkv, const float* att, int B, int T, int C, int NH) {
    int warpId = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warpId >= B * NH * T) return;
    int t2 = warpId % T, h = (warpId / T) % NH, b = warpId / (T * NH);
    int hs = C / NH;
    float scale = rsqrtf((float) hs);
    size_t headOff = ((size_t) b * NH + h) * T * T;
    floatX* dk = dqkv + ((size_t) b * T + t2) * 3 * C + C + h * hs;
    floatX* dv = dk + C;
    for (int d = lane; d < hs; d += 32) {
        float accK = 0.0f, accV = 0.0f;
        for (int t = t2; t < T; t++) {
            size_t bt = (size_t) b * T + t;
            accK += dpreatt[headOff + (size_t) t * T + t2] * to_f32(qkv[bt * 3 * C + h * hs + d]);
            accV += att[headOff + (size_t) t * T + t2] * to_f32(dout[bt * C + h * hs + d]);
        }
        dk[d] = from_f32<floatX>(accK * scale);
        dv[d] = from_f32<floatX>(accV);
    }
}

#define EXPORT_ATTENTION_PLAIN(suffix, floatX)                                                                   \
    extern "C" __global__ void attention_forward_plain_##suffix(floatX* out, float* att, const floatX* qkv,      \
                                                                int B, int T, int C, int NH) {                   \
        attention_forward_plain(out, att, qkv, B, T, C, NH);                                                     \
    }                                                                                                            \
    extern "C" __global__ void attention_backward_plain_rows_##suffix(floatX* dqkv, float* dpreatt,              \
                                                                      const floatX* dout, const floatX* qkv,     \
                                                                      const float* att, int B, int T, int C,     \
                                                                      int NH) {                                  \
        attention_backward_plain_rows(dqkv, dpreatt, dout, qkv, att, B, T, C, NH);                               \
    }                                                                                                            \
    extern "C" __global__ void attention_backward_plain_cols_##suffix(floatX* dqkv, const float* dpreatt,        \
                                                                      const floatX* dout, const floatX* qkv,     \
                                                                      const float* att, int B, int T, int C,     \
                                                                      int NH) {                                  \
        attention_backward_plain_cols(dqkv, dpreatt, dout, qkv, att, B, T, C, NH);                               \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_ATTENTION_PLAIN)
