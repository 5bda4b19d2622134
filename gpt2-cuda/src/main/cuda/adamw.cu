// AdamW for one parameter tensor of n elements.
//
//   g  = grad * gradScale                      (gradScale folds in clipping and, for fp16, 1/lossScale)
//   m  = beta1 m + (1-beta1) g;   v = beta2 v + (1-beta2) g^2              m, v: fp32
//   p -= lr * ( (m/beta1Correction) / (sqrt(v/beta2Correction) + eps) + weightDecay * p )
//
// beta1Correction = 1 - beta1^t and beta2Correction = 1 - beta2^t are computed on the host (t = step + 1).
// The update happens in fp32 on the master copy (master != null) or on the up-cast parameter (fp32 runs, or no
// master weights), then the parameter is stored back in floatX: bf16 with stochastic rounding, seeded per tensor
// per step by the host, so that repeated runs are bitwise identical. The random bits of element i depend on the
// seed and on firstIndex + i, its index in the whole tensor: ZeRO-1 updates a tensor in pieces (one launch per piece,
// on the rank that owns it), and each element still rounds exactly as in one launch over the whole tensor.
#include "common.cuh"

template <typename floatX>
__device__ void adamw_update(floatX* params, float* master, const floatX* grads, float* m, float* v, size_t n,
                             float lr, float beta1, float beta2, float beta1Correction, float beta2Correction,
                             float eps, float weightDecay, float gradScale, unsigned int seed, size_t firstIndex) {
    FOR_EACH_INDEX(i, n) {
        float g = to_f32(grads[i]) * gradScale;
        float mi = beta1 * m[i] + (1.0f - beta1) * g;
        float vi = beta2 * v[i] + (1.0f - beta2) * g * g;
        m[i] = mi;
        v[i] = vi;
        float p = master != nullptr ? master[i] : to_f32(params[i]);
        p -= lr * ((mi / beta1Correction) / (sqrtf(vi / beta2Correction) + eps) + weightDecay * p);
        if (master != nullptr) master[i] = p;
        store_param(&params[i], p, random_bits(seed, firstIndex + i));
    }
}

#define EXPORT_ADAMW(suffix, floatX)                                                                           \
    extern "C" __global__ void adamw_update_##suffix(floatX* params, float* master, const floatX* grads,       \
                                                     float* m, float* v, size_t n, float lr, float beta1,      \
                                                     float beta2, float beta1Correction, float beta2Correction, \
                                                     float eps, float weightDecay, float gradScale,            \
                                                     unsigned int seed, size_t firstIndex) {                   \
        adamw_update(params, master, grads, m, v, n, lr, beta1, beta2, beta1Correction, beta2Correction, eps,  \
                     weightDecay, gradScale, seed, firstIndex);                                                \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_ADAMW)
