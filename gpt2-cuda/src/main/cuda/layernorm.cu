// LayerNorm over the channel dimension, eps = 1e-5, biased variance, as in llm.c and PyTorch.
//
//   mean = sum(x)/C;  var = sum((x-mean)^2)/C;  rstd = 1/sqrt(var+eps);  out = (x-mean)*rstd*w + b
//
// inp/out (N,C) with N = B*T rows; mean/rstd (N) in fp32 (kept for the backward pass); weight/bias (C).
// One warp per row: 32 lanes stride over the C channels, the statistics are reduced with shuffles.
#include "common.cuh"

constexpr float LN_EPS = 1e-5f;

// Row statistics, two-pass for a stable variance. Every lane returns the same mean and rstd.
template <typename floatX>
__device__ __forceinline__ void row_stats(const floatX* x, int C, int lane, float& mean, float& rstd) {
    float sum = 0.0f;
    for (int c = lane; c < C; c += 32) sum += to_f32(x[c]);
    mean = warp_sum(sum) / C;
    float sq = 0.0f;
    for (int c = lane; c < C; c += 32) { float d = to_f32(x[c]) - mean; sq += d * d; }
    rstd = rsqrtf(warp_sum(sq) / C + LN_EPS);
}

template <typename floatX>
__device__ void layernorm_forward(floatX* out, float* mean, float* rstd, const floatX* inp,
                                  const floatX* weight, const floatX* bias, int N, int C) {
    int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    const floatX* x = inp + (size_t) row * C;
    float m, s;
    row_stats(x, C, lane, m, s);
    floatX* o = out + (size_t) row * C;
    for (int c = lane; c < C; c += 32)
        o[c] = from_f32<floatX>((to_f32(x[c]) - m) * s * to_f32(weight[c]) + to_f32(bias[c]));
    if (lane == 0) {
        if (mean != nullptr) mean[row] = m;
        if (rstd != nullptr) rstd[row] = s;
    }
}

// residual = a + b (stored, rounded to floatX), then out = layernorm(residual).
// This is how every block boundary works in GPT-2: residual2 = residual + attproj feeds ln2, and
// residual3 = residual2 + fcproj feeds the next layer's ln1 (or lnf). Fusing saves one read of the residual.
template <typename floatX>
__device__ void fused_residual_layernorm_forward(floatX* residual, floatX* out, float* mean, float* rstd,
                                                 const floatX* a, const floatX* b, const floatX* weight,
                                                 const floatX* bias, int N, int C) {
    int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t off = (size_t) row * C;
    // each lane writes and later reads back the same channels, so no synchronisation is needed
    for (int c = lane; c < C; c += 32)
        residual[off + c] = from_f32<floatX>(to_f32(a[off + c]) + to_f32(b[off + c]));
    float m, s;
    row_stats(residual + off, C, lane, m, s);
    for (int c = lane; c < C; c += 32)
        out[off + c] = from_f32<floatX>((to_f32(residual[off + c]) - m) * s * to_f32(weight[c]) + to_f32(bias[c]));
    if (lane == 0) { mean[row] = m; rstd[row] = s; }
}

// Backward, input part. With n = (x-mean)*rstd and g = w*dout:
//   dinp += (g - mean(g) - n*mean(g*n)) * rstd          (accumulates: the residual stream's gradient adds up)
// One warp per row.
template <typename floatX>
__device__ void layernorm_backward_input(floatX* dinp, const floatX* dout, const floatX* inp,
                                         const floatX* weight, const float* mean, const float* rstd,
                                         int N, int C) {
    int row = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (row >= N) return;
    size_t off = (size_t) row * C;
    float m = mean[row], s = rstd[row];
    float gSum = 0.0f, gnSum = 0.0f;
    for (int c = lane; c < C; c += 32) {
        float n = (to_f32(inp[off + c]) - m) * s;
        float g = to_f32(weight[c]) * to_f32(dout[off + c]);
        gSum += g;
        gnSum += g * n;
    }
    float gMean = warp_sum(gSum) / C, gnMean = warp_sum(gnSum) / C;
    for (int c = lane; c < C; c += 32) {
        float n = (to_f32(inp[off + c]) - m) * s;
        float g = to_f32(weight[c]) * to_f32(dout[off + c]);
        dinp[off + c] = from_f32<floatX>(to_f32(dinp[off + c]) + (g - gMean - n * gnMean) * s);
    }
}

// Backward, parameter part, stage 1 of 2: dweight = sum_rows n*dout, dbias = sum_rows dout.
// These are sums over all N rows per channel. To stay deterministic without atomics, rows are cut into chunks of
// rowsPerChunk; block (x, chunk) writes the fp32 partial sums of its chunk for blockDim.x channels:
//   partial[chunk*C + c] (dweight) and partial[(numChunks + chunk)*C + c] (dbias).
// Stage 2 (column_sum_finish in bias_backward.cu) adds the chunks in order into the floatX gradients.
template <typename floatX>
__device__ void layernorm_backward_params_partial(float* partial, const floatX* dout, const floatX* inp,
                                                  const float* mean, const float* rstd, int N, int C,
                                                  int rowsPerChunk) {
    int c = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y, numChunks = gridDim.y;
    if (c >= C) return;
    int rowEnd = min(N, (chunk + 1) * rowsPerChunk);
    float dw = 0.0f, db = 0.0f;
    for (int row = chunk * rowsPerChunk; row < rowEnd; row++) {
        size_t i = (size_t) row * C + c;
        float d = to_f32(dout[i]);
        dw += (to_f32(inp[i]) - mean[row]) * rstd[row] * d;
        db += d;
    }
    partial[(size_t) chunk * C + c] = dw;
    partial[(size_t) (numChunks + chunk) * C + c] = db;
}

#define EXPORT_LAYERNORM(suffix, floatX)                                                                          \
    extern "C" __global__ void layernorm_forward_##suffix(floatX* out, float* mean, float* rstd, const floatX* inp, \
                                                          const floatX* weight, const floatX* bias, int N, int C) { \
        layernorm_forward(out, mean, rstd, inp, weight, bias, N, C);                                              \
    }                                                                                                             \
    extern "C" __global__ void fused_residual_layernorm_forward_##suffix(                                         \
        floatX* residual, floatX* out, float* mean, float* rstd, const floatX* a, const floatX* b,                \
        const floatX* weight, const floatX* bias, int N, int C) {                                                 \
        fused_residual_layernorm_forward(residual, out, mean, rstd, a, b, weight, bias, N, C);                    \
    }                                                                                                             \
    extern "C" __global__ void layernorm_backward_input_##suffix(floatX* dinp, const floatX* dout,               \
                                                                 const floatX* inp, const floatX* weight,         \
                                                                 const float* mean, const float* rstd, int N, int C) { \
        layernorm_backward_input(dinp, dout, inp, weight, mean, rstd, N, C);                                      \
    }                                                                                                             \
    extern "C" __global__ void layernorm_backward_params_partial_##suffix(                                        \
        float* partial, const floatX* dout, const floatX* inp, const float* mean, const float* rstd, int N, int C, \
        int rowsPerChunk) {                                                                                       \
        layernorm_backward_params_partial(partial, dout, inp, mean, rstd, N, C, rowsPerChunk);                    \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_LAYERNORM)
