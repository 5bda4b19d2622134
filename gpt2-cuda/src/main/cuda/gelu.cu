// GELU, tanh approximation (GPT-2's "gelu_new"):
//   gelu(x) = 0.5 x (1 + tanh(u)),  u = sqrt(2/pi) (x + 0.044715 x^3)
//   gelu'(x) = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) sqrt(2/pi) (1 + 3*0.044715 x^2)
// Never build this with fast-math: the approximate tanh produced NaNs for large |x| in llm.c's history.
#include "common.cuh"

constexpr float GELU_SCALE = 0.7978845608028654f;   // sqrt(2/pi)
constexpr float GELU_CUBIC = 0.044715f;

template <typename floatX>
__device__ void gelu_forward(floatX* out, const floatX* inp, size_t n) {
    FOR_EACH_INDEX(i, n) {
        float x = to_f32(inp[i]);
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        out[i] = from_f32<floatX>(0.5f * x * (1.0f + tanhf(u)));
    }
}

// In place: on entry dinout holds dL/d(gelu output), on exit dL/d(gelu input). Overwrites (the MLP's hidden
// activation has exactly one consumer, so there is nothing to accumulate).
template <typename floatX>
__device__ void gelu_backward_inplace(floatX* dinout, const floatX* inp, size_t n) {
    FOR_EACH_INDEX(i, n) {
        float x = to_f32(inp[i]);
        float u = GELU_SCALE * (x + GELU_CUBIC * x * x * x);
        float th = tanhf(u);
        float local = 0.5f * (1.0f + th) + 0.5f * x * (1.0f - th * th) * GELU_SCALE * (1.0f + 3.0f * GELU_CUBIC * x * x);
        dinout[i] = from_f32<floatX>(local * to_f32(dinout[i]));
    }
}

#define EXPORT_GELU(suffix, floatX)                                                                        \
    extern "C" __global__ void gelu_forward_##suffix(floatX* out, const floatX* inp, size_t n) {           \
        gelu_forward(out, inp, n);                                                                         \
    }                                                                                                      \
    extern "C" __global__ void gelu_backward_inplace_##suffix(floatX* dinout, const floatX* inp, size_t n) { \
        gelu_backward_inplace(dinout, inp, n);                                                             \
    }
DEFINE_FOR_EACH_FLOATX(EXPORT_GELU)
