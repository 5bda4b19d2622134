// Fused classifier: softmax + cross-entropy + its gradient, one block per row, never storing probabilities.
//
//   logits (N, Vp) floatX, only the first V columns are real tokens (Vp is V padded to a multiple of 128)
//   losses[row] = logZ - logits[row, target],   logZ = log(sum_{i<V} exp(logits[row, i]))
//   if writeDlogits: logits[row, i] := (softmax_i - [i == target]) * dloss  for i < V, 0 for the padding
//
// A (B*T, 50304) probability buffer would be the largest tensor of the whole model; instead the logits buffer
// is overwritten in place with the gradient. Pass 1 finds max and sum together with the online-softmax
// recurrence (a running max m and a sum s rescaled by exp(m_old - m_new) whenever the max grows), so the row is
// read once for the statistics and once more for the gradient.
#include "common.cuh"

// Merge two (max, sum-of-exp) pairs.
__device__ __forceinline__ void softmax_merge(float& m, float& s, float m2, float s2) {
    float mNew = fmaxf(m, m2);
    s = s * expf(m - mNew) + s2 * expf(m2 - mNew);
    m = mNew;
}

template <typename floatX>
__device__ void fused_classifier(floatX* logits, float* losses, const int* targets, float dloss,
                                 int N, int V, int Vp, int writeDlogits) {
    __shared__ float sharedMax[32], sharedSum[32];
    __shared__ float sharedLogZ;
    int row = blockIdx.x;
    if (row >= N) return;
    floatX* x = logits + (size_t) row * Vp;

    // pass 1: per-thread online softmax over a strided subset of the columns.
    // -FLT_MAX rather than -inf as the start value keeps exp(m - mNew) finite (0) for threads without columns.
    float m = -FLT_MAX, s = 0.0f;
    for (int i = threadIdx.x; i < V; i += blockDim.x) {
        float v = to_f32(x[i]);
        if (v > m) { s = s * expf(m - v) + 1.0f; m = v; }
        else s += expf(v - m);
    }
    // warp, then block: the merge order is fixed, so the result is deterministic
    for (int offset = 16; offset > 0; offset >>= 1) {
        float m2 = __shfl_xor_sync(0xffffffffu, m, offset), s2 = __shfl_xor_sync(0xffffffffu, s, offset);
        softmax_merge(m, s, m2, s2);
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, numWarps = blockDim.x / 32;
    if (lane == 0) { sharedMax[warp] = m; sharedSum[warp] = s; }
    __syncthreads();
    if (warp == 0) {
        m = lane < numWarps ? sharedMax[lane] : -FLT_MAX;
        s = lane < numWarps ? sharedSum[lane] : 0.0f;
        for (int offset = 16; offset > 0; offset >>= 1) {
            float m2 = __shfl_xor_sync(0xffffffffu, m, offset), s2 = __shfl_xor_sync(0xffffffffu, s, offset);
            softmax_merge(m, s, m2, s2);
        }
        if (lane == 0) {
            float logZ = m + logf(s);
            sharedLogZ = logZ;
            losses[row] = logZ - to_f32(x[targets[row]]);   // read the target logit before anyone overwrites it
        }
    }
    __syncthreads();
    if (!writeDlogits) return;

    // pass 2: dlogits = (p - onehot) * dloss, in place
    float logZ = sharedLogZ;
    int target = targets[row];
    for (int i = threadIdx.x; i < Vp; i += blockDim.x) {
        float d = 0.0f;
        if (i < V) {
            float p = expf(to_f32(x[i]) - logZ);
            d = (p - (i == target ? 1.0f : 0.0f)) * dloss;
        }
        x[i] = from_f32<floatX>(d);
    }
}

#define EXPORT_CLASSIFIER(suffix, floatX)                                                                        \
    extern "C" __global__ void fused_classifier_##suffix(floatX* logits, float* losses, const int* targets,      \
                                                         float dloss, int N, int V, int Vp, int writeDlogits) {  \
        fused_classifier(logits, losses, targets, dloss, N, V, Vp, writeDlogits);                                \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_CLASSIFIER)
