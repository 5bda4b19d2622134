// Matmul bias gradient: dbias[o] += sum over the N = B*T rows of dout[row, o].       dout (N,OC), dbias (OC)
//
// cuBLASLt does the two big backward matmuls; the bias gradient is a column sum, which we do ourselves so that
// it is deterministic: rows are cut into chunks, stage 1 writes one fp32 partial sum per (chunk, column),
// stage 2 adds the chunks in a fixed order. No atomics, so the same inputs always give the same bits.
#include "common.cuh"

// Stage 1: grid (ceil(OC/blockDim.x), numChunks). partial (numChunks, OC) fp32.
template <typename floatX>
__device__ void bias_backward_partial(float* partial, const floatX* dout, int N, int OC, int rowsPerChunk) {
    int o = blockIdx.x * blockDim.x + threadIdx.x, chunk = blockIdx.y;
    if (o >= OC) return;
    int rowEnd = min(N, (chunk + 1) * rowsPerChunk);
    float sum = 0.0f;
    for (int row = chunk * rowsPerChunk; row < rowEnd; row++) sum += to_f32(dout[(size_t) row * OC + o]);
    partial[(size_t) chunk * OC + o] = sum;
}

// Stage 2 (shared with the LayerNorm weight/bias gradients): out[c] += sum_{chunk} partial[chunk*width + c].
template <typename floatX>
__device__ void column_sum_finish(floatX* out, const float* partial, int numChunks, int width) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= width) return;
    float sum = 0.0f;
    for (int chunk = 0; chunk < numChunks; chunk++) sum += partial[(size_t) chunk * width + c];
    out[c] = from_f32<floatX>(to_f32(out[c]) + sum);
}

#define EXPORT_BIAS_BACKWARD(suffix, floatX)                                                                   \
    extern "C" __global__ void bias_backward_partial_##suffix(float* partial, const floatX* dout, int N, int OC, \
                                                              int rowsPerChunk) {                              \
        bias_backward_partial(partial, dout, N, OC, rowsPerChunk);                                             \
    }                                                                                                          \
    extern "C" __global__ void column_sum_finish_##suffix(floatX* out, const float* partial, int numChunks,     \
                                                          int width) {                                         \
        column_sum_finish(out, partial, numChunks, width);                                                     \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_BIAS_BACKWARD)
