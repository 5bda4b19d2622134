// Token + position embedding.
//
// forward:  out[b,t,:] = wte[tokens[b,t], :] + wpe[t, :]          out (B,T,C), wte (Vp,C), wpe (maxT,C)
// backward: dwte[v,:] += sum over positions p with tokens[p] == v of dout[p,:]
//           dwpe[t,:] += sum over b of dout[b,t,:]
//
// The backward pass is deterministic without atomics: a token can occur many times in a batch, and adding its
// gradients with atomics would make the sum's rounding depend on thread timing. Instead the host groups the B*T
// positions by token (EncoderBuckets.java): bucket i holds token bucketTokens[i] and the positions
// positions[bucketStarts[i] .. bucketStarts[i+1]-1] in ascending order. One thread per (bucket, channel) adds
// them up in that order, and each row of dwte is written by exactly one bucket.
#include "common.cuh"

template <typename floatX>
__device__ void encoder_forward(floatX* out, const int* tokens, const floatX* wte, const floatX* wpe,
                                int B, int T, int C) {
    FOR_EACH_INDEX(i, (size_t) B * T * C) {
        size_t bt = i / C;
        int c = (int) (i % C);
        int t = (int) (bt % T);
        int token = tokens[bt];
        out[i] = from_f32<floatX>(to_f32(wte[(size_t) token * C + c]) + to_f32(wpe[(size_t) t * C + c]));
    }
}

// dwpe (maxT,C): one thread per (t, c), the B rows summed in order b = 0..B-1.
template <typename floatX>
__device__ void encoder_backward_wpe(floatX* dwpe, const floatX* dout, int B, int T, int C) {
    FOR_EACH_INDEX(i, (size_t) T * C) {
        size_t t = i / C, c = i % C;
        float sum = 0.0f;
        for (int b = 0; b < B; b++) sum += to_f32(dout[((size_t) b * T + t) * C + c]);
        dwpe[i] = from_f32<floatX>(to_f32(dwpe[i]) + sum);
    }
}

// dwte (Vp,C): grid (ceil(C/blockDim.x), numBuckets); thread = one channel of one bucket.
template <typename floatX>
__device__ void encoder_backward_wte(floatX* dwte, const floatX* dout, const int* bucketTokens,
                                     const int* bucketStarts, const int* positions, int numBuckets, int C) {
    int bucket = blockIdx.y;
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (bucket >= numBuckets || c >= C) return;
    float sum = 0.0f;
    for (int p = bucketStarts[bucket]; p < bucketStarts[bucket + 1]; p++)
        sum += to_f32(dout[(size_t) positions[p] * C + c]);
    size_t row = (size_t) bucketTokens[bucket] * C;
    dwte[row + c] = from_f32<floatX>(to_f32(dwte[row + c]) + sum);
}

#define EXPORT_ENCODER(suffix, floatX)                                                                             \
    extern "C" __global__ void encoder_forward_##suffix(floatX* out, const int* tokens, const floatX* wte,          \
                                                        const floatX* wpe, int B, int T, int C) {                  \
        encoder_forward(out, tokens, wte, wpe, B, T, C);                                                           \
    }                                                                                                              \
    extern "C" __global__ void encoder_backward_wpe_##suffix(floatX* dwpe, const floatX* dout, int B, int T, int C) { \
        encoder_backward_wpe(dwpe, dout, B, T, C);                                                                 \
    }                                                                                                              \
    extern "C" __global__ void encoder_backward_wte_##suffix(floatX* dwte, const floatX* dout,                     \
                                                             const int* bucketTokens, const int* bucketStarts,     \
                                                             const int* positions, int numBuckets, int C) {        \
        encoder_backward_wte(dwte, dout, bucketTokens, bucketStarts, positions, numBuckets, C);                    \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_ENCODER)
