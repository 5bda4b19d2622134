// Flash attention, forward and backward, causal, for bf16/fp16 on tensor cores (wmma 16x16x16, fp32 accumulate).
//
//   qkv  (B,T,3C) floatX  q at channel offset 0, k at C, v at 2C; head h at h*HS .. h*HS+HS-1
//   out  (B,T,C)  floatX  softmax(q k^T * scale, causal) v
//   lse  (B,NH,T) fp32    log-sum-exp of each row of scaled scores: the ONLY thing kept for the backward pass
//                         instead of the (B,NH,T,T) attention matrix
//
// Forward: a block owns a tile of BR = 64 query rows of one (b, h); 4 warps own 16 rows each. It walks the key
// tiles (BC = 64 keys) left to right up to the diagonal, and keeps for every row a running max m, a running sum
// l and an unnormalised output O. Each new tile's scores may raise the max; then the old l and O are rescaled
// by alpha = exp(m_old - m_new) before the tile's contribution is added ("online softmax"). At the end
// out = O / l and lse = m + log l. l adds up P in fp32 (FlashAttention-2's rule); P is rounded to floatX only
// for the tensor-core matmul PV.
//
// Backward (recompute instead of store): with P = exp(S*scale - lse) recomputed per tile and
// D = rowsum(dO * O) precomputed,
//   dV = P^T dO,   dP = dO V^T,   dS = P * (dP - D),   dQ = scale * dS K,   dK = scale * dS^T Q.
// dK/dV sum over query rows and dQ sums over key rows. Accumulating both in one kernel needs atomics for one of
// them (that is what FlashAttention-2 does for dQ); we run two kernels instead, one per key tile (dK, dV) and
// one per query tile (dQ), each recomputing P and dS. It costs one extra S and dP matmul but every gradient is
// written by exactly one warp, in a fixed order: deterministic.
//
// Shared memory (dynamic, size computed by FlashAttention.java with the same formula; each kernel checks it):
// the tiles are floatX, the per-warp score scratch fp32. All offsets are multiples of 32 bytes (wmma needs that).
#include "common.cuh"
#include <mma.h>

using namespace nvcuda;

constexpr int FA_BR = 64;       // query rows per tile
constexpr int FA_BC = 64;       // key rows per tile
constexpr int FA_WARPS = 4;     // 4 warps x 16 rows = one 64-row tile
constexpr int FA_THREADS = FA_WARPS * 32;
constexpr int WM = 16;          // wmma tile edge

template <typename floatX> using FragA = wmma::fragment<wmma::matrix_a, WM, WM, WM, floatX, wmma::row_major>;
template <typename floatX> using FragBRow = wmma::fragment<wmma::matrix_b, WM, WM, WM, floatX, wmma::row_major>;
template <typename floatX> using FragBCol = wmma::fragment<wmma::matrix_b, WM, WM, WM, floatX, wmma::col_major>;
using FragAcc = wmma::fragment<wmma::accumulator, WM, WM, WM, float>;

__device__ __forceinline__ unsigned int dynamic_smem_bytes() {
    unsigned int bytes;
    asm volatile("mov.u32 %0, %%dynamic_smem_size;" : "=r"(bytes));
    return bytes;
}

// Bump allocator over the dynamic shared memory.
struct SmemCarver {
    char* next;
    template <typename U> __device__ U* take(size_t count) { U* p = reinterpret_cast<U*>(next); next += count * sizeof(U); return p; }
};

// Copy rows [row0, row0+64) of one head's q (part 0), k (part 1) or v (part 2) into a (64,HS) tile,
// zero-filling rows past T so the matmuls can run on full tiles.
template <typename floatX, int HS>
__device__ void load_head_tile(floatX* tile, const floatX* qkv, int b, int h, int part, int row0, int T, int C) {
    for (int idx = threadIdx.x; idx < 64 * HS; idx += FA_THREADS) {
        int r = idx / HS, d = idx % HS, t = row0 + r;
        tile[idx] = t < T ? qkv[((size_t) b * T + t) * 3 * C + part * C + h * HS + d] : from_f32<floatX>(0.0f);
    }
}

// Same for a (B,T,C) tensor (dout): rows [row0, row0+64) of head h.
template <typename floatX, int HS>
__device__ void load_btc_tile(floatX* tile, const floatX* x, int b, int h, int row0, int T, int C) {
    for (int idx = threadIdx.x; idx < 64 * HS; idx += FA_THREADS) {
        int r = idx / HS, d = idx % HS, t = row0 + r;
        tile[idx] = t < T ? x[((size_t) b * T + t) * C + h * HS + d] : from_f32<floatX>(0.0f);
    }
}

// dst (16 x 64, fp32, ld 64) = a (16 x HS, row-major, ld HS) * bt^T where bt is a (64 x HS) row-major tile.
// Reading bt as a col-major matrix_b gives its transpose without moving any data.
template <typename floatX, int HS>
__device__ void matmul_16x64_abT(float* dst, const floatX* a, const floatX* bt) {
    for (int n = 0; n < 64 / WM; n++) {
        FragAcc acc;
        wmma::fill_fragment(acc, 0.0f);
        for (int k = 0; k < HS / WM; k++) {
            FragA<floatX> fa;
            FragBCol<floatX> fb;
            wmma::load_matrix_sync(fa, a + k * WM, HS);
            wmma::load_matrix_sync(fb, bt + n * WM * HS + k * WM, HS);
            wmma::mma_sync(acc, fa, fb, acc);
        }
        wmma::store_matrix_sync(dst + n * WM, acc, 64, wmma::mem_row_major);
    }
}

// acc[n] += a (16 x 64, row-major, ld 64) * b (64 x HS, row-major, ld HS), acc[n] holding columns n*16..n*16+15.
template <typename floatX, int HS>
__device__ void matmul_acc_16xHS(FragAcc* acc, const floatX* a, const floatX* b) {
    for (int n = 0; n < HS / WM; n++) {
        for (int k = 0; k < 64 / WM; k++) {
            FragA<floatX> fa;
            FragBRow<floatX> fb;
            wmma::load_matrix_sync(fa, a + k * WM, 64);
            wmma::load_matrix_sync(fb, b + k * WM * HS + n * WM, HS);
            wmma::mma_sync(acc[n], fa, fb, acc[n]);
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Forward. grid (ceil(T/64), NH, B), block 128.

template <typename floatX, int HS>
__device__ void flash_attention_forward(floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH) {
    extern __shared__ __align__(128) char smem[];
    constexpr int SCRATCH = HS > FA_BC ? HS : FA_BC;
    SmemCarver carve{smem};
    floatX* Qs = carve.take<floatX>(FA_BR * HS);
    floatX* Ks = carve.take<floatX>(FA_BC * HS);
    floatX* Vs = carve.take<floatX>(FA_BC * HS);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *Sw = nullptr, *Ow = nullptr, *rowMax = nullptr, *rowSum = nullptr, *rowAlpha = nullptr;
    floatX* Pw = nullptr;
    for (int w = 0; w < FA_WARPS; w++) {   // carve every warp's region, keep ours
        float* s = carve.take<float>(WM * SCRATCH);
        floatX* p = carve.take<floatX>(WM * FA_BC);
        float* o = carve.take<float>(WM * HS);
        float* stats = carve.take<float>(64);   // m[16], l[16], alpha[16], padding to 256 bytes
        if (w == warp) { Sw = s; Pw = p; Ow = o; rowMax = stats; rowSum = stats + 16; rowAlpha = stats + 32; }
    }
    if ((size_t) (carve.next - smem) > dynamic_smem_bytes()) __trap();

    const int qTile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int q0 = qTile * FA_BR;
    const float scale = rsqrtf((float) HS);

    load_head_tile<floatX, HS>(Qs, qkv, b, h, 0, q0, T, C);
    for (int i = lane; i < WM * HS; i += 32) Ow[i] = 0.0f;
    if (lane < WM) { rowMax[lane] = -INFINITY; rowSum[lane] = 0.0f; }

    // causal: keys up to the last query of this tile, i.e. key tiles 0..qTile
    for (int kTile = 0; kTile <= qTile; kTile++) {
        const int k0 = kTile * FA_BC;
        __syncthreads();                        // everyone is done with the previous K/V tile
        load_head_tile<floatX, HS>(Ks, qkv, b, h, 1, k0, T, C);
        load_head_tile<floatX, HS>(Vs, qkv, b, h, 2, k0, T, C);
        __syncthreads();

        // S (16 x 64) = Q_w K^T
        matmul_16x64_abT<floatX, HS>(Sw, Qs + warp * WM * HS, Ks);
        __syncwarp();

        // online softmax: two lanes per row, 32 columns each
        {
            const int r = lane / 2, c0 = (lane % 2) * 32;
            const int qIdx = q0 + warp * WM + r;
            float tileMax = -INFINITY;
            for (int j = 0; j < 32; j++) {
                int kIdx = k0 + c0 + j;
                float s = (kIdx <= qIdx && kIdx < T) ? Sw[r * FA_BC + c0 + j] * scale : -INFINITY;
                Sw[r * FA_BC + c0 + j] = s;
                tileMax = fmaxf(tileMax, s);
            }
            tileMax = fmaxf(tileMax, __shfl_xor_sync(0xffffffffu, tileMax, 1));
            float mOld = rowMax[r];
            float mNew = fmaxf(mOld, tileMax);
            // a row with nothing unmasked yet (only padding rows past T) keeps exp() at 0 instead of NaN
            float base = mNew == -INFINITY ? 0.0f : mNew;
            float tileSum = 0.0f;
            for (int j = 0; j < 32; j++) {
                // the row sum takes P in fp32, as FlashAttention-2 does: lse = m + log(l) is what the backward pass
                // recomputes P from, so it must carry no rounding of P; only the PV matmul sees P rounded to floatX
                float p = expf(Sw[r * FA_BC + c0 + j] - base);
                Pw[r * FA_BC + c0 + j] = from_f32<floatX>(p);
                tileSum += p;
            }
            tileSum += __shfl_xor_sync(0xffffffffu, tileSum, 1);
            float alpha = expf(mOld - base);    // 0 on the first tile (mOld = -inf)
            __syncwarp();
            if (lane % 2 == 0) {
                rowMax[r] = mNew;
                rowSum[r] = rowSum[r] * alpha + tileSum;
                rowAlpha[r] = alpha;
            }
        }
        __syncwarp();

        // PV (16 x HS) = P_w V, into the score scratch (S is no longer needed), then O = alpha O + PV
        for (int n = 0; n < HS / WM; n++) {
            FragAcc acc;
            wmma::fill_fragment(acc, 0.0f);
            for (int k = 0; k < FA_BC / WM; k++) {
                FragA<floatX> fa;
                FragBRow<floatX> fb;
                wmma::load_matrix_sync(fa, Pw + k * WM, FA_BC);
                wmma::load_matrix_sync(fb, Vs + k * WM * HS + n * WM, HS);
                wmma::mma_sync(acc, fa, fb, acc);
            }
            wmma::store_matrix_sync(Sw + n * WM, acc, HS, wmma::mem_row_major);
        }
        __syncwarp();
        for (int i = lane; i < WM * HS; i += 32) Ow[i] = Ow[i] * rowAlpha[i / HS] + Sw[i];
        __syncwarp();
    }

    for (int i = lane; i < WM * HS; i += 32) {
        int r = i / HS, d = i % HS, t = q0 + warp * WM + r;
        if (t < T) out[((size_t) b * T + t) * C + h * HS + d] = from_f32<floatX>(Ow[i] / rowSum[r]);
    }
    if (lane < WM) {
        int t = q0 + warp * WM + lane;
        if (t < T) lse[((size_t) b * NH + h) * T + t] = rowMax[lane] + logf(rowSum[lane]);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Backward preprocessing: D[b,h,t] = sum_d dout[b,t,h,d] * out[b,t,h,d]. One warp per (b,h,t).

template <typename floatX>
__device__ void flash_attention_backward_preprocess(float* D, const floatX* dout, const floatX* out,
                                                    int B, int T, int C, int NH) {
    int warpId = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warpId >= B * NH * T) return;
    int t = warpId % T, h = (warpId / T) % NH, b = warpId / (T * NH);
    int hs = C / NH;
    size_t off = ((size_t) b * T + t) * C + h * hs;
    float sum = 0.0f;
    for (int d = lane; d < hs; d += 32) sum += to_f32(dout[off + d]) * to_f32(out[off + d]);
    sum = warp_sum(sum);
    if (lane == 0) D[((size_t) b * NH + h) * T + t] = sum;
}

// ------------------------------------------------------------------------------------------------------------
// Backward, dK and dV. grid (ceil(T/64), NH, B): a block owns 64 keys (16 per warp) and walks the query tiles
// from the diagonal down to T. Writes (overwrites) the k and v parts of dqkv.

template <typename floatX, int HS>
__device__ void flash_attention_backward_dkdv(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                              const float* D, int B, int T, int C, int NH) {
    extern __shared__ __align__(128) char smem[];
    constexpr int SCRATCH = HS > FA_BC ? HS : FA_BC;
    SmemCarver carve{smem};
    floatX* Ks = carve.take<floatX>(FA_BC * HS);
    floatX* Vs = carve.take<floatX>(FA_BC * HS);
    floatX* Qs = carve.take<floatX>(FA_BR * HS);
    floatX* dOs = carve.take<floatX>(FA_BR * HS);
    float* lseS = carve.take<float>(FA_BR);
    float* Ds = carve.take<float>(FA_BR);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *Sw = nullptr, *dPw = nullptr;
    floatX *Pw = nullptr, *dSw = nullptr;
    for (int w = 0; w < FA_WARPS; w++) {
        float* s = carve.take<float>(WM * SCRATCH);
        float* dp = carve.take<float>(WM * FA_BR);
        floatX* p = carve.take<floatX>(WM * FA_BR);
        floatX* ds = carve.take<floatX>(WM * FA_BR);
        if (w == warp) { Sw = s; dPw = dp; Pw = p; dSw = ds; }
    }
    if ((size_t) (carve.next - smem) > dynamic_smem_bytes()) __trap();

    const int kTile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int k0 = kTile * FA_BC;
    const int numQTiles = (T + FA_BR - 1) / FA_BR;
    const float scale = rsqrtf((float) HS);

    load_head_tile<floatX, HS>(Ks, qkv, b, h, 1, k0, T, C);
    load_head_tile<floatX, HS>(Vs, qkv, b, h, 2, k0, T, C);
    FragAcc dK[HS / WM], dV[HS / WM];
    for (int n = 0; n < HS / WM; n++) { wmma::fill_fragment(dK[n], 0.0f); wmma::fill_fragment(dV[n], 0.0f); }

    for (int qTile = kTile; qTile < numQTiles; qTile++) {
        const int q0 = qTile * FA_BR;
        __syncthreads();
        load_head_tile<floatX, HS>(Qs, qkv, b, h, 0, q0, T, C);
        load_btc_tile<floatX, HS>(dOs, dout, b, h, q0, T, C);
        for (int i = threadIdx.x; i < FA_BR; i += FA_THREADS) {
            int t = q0 + i;
            lseS[i] = t < T ? lse[((size_t) b * NH + h) * T + t] : 0.0f;
            Ds[i] = t < T ? D[((size_t) b * NH + h) * T + t] : 0.0f;
        }
        __syncthreads();

        // S^T (16 keys x 64 queries) = K_w Q^T ;  dP^T = V_w dO^T
        matmul_16x64_abT<floatX, HS>(Sw, Ks + warp * WM * HS, Qs);
        matmul_16x64_abT<floatX, HS>(dPw, Vs + warp * WM * HS, dOs);
        __syncwarp();
        for (int i = lane; i < WM * FA_BR; i += 32) {
            int r = i / FA_BR, c = i % FA_BR;
            int kIdx = k0 + warp * WM + r, qIdx = q0 + c;
            bool valid = kIdx <= qIdx && qIdx < T;
            float p = valid ? expf(Sw[i] * scale - lseS[c]) : 0.0f;
            Pw[i] = from_f32<floatX>(p);
            dSw[i] = from_f32<floatX>(p * (dPw[i] - Ds[c]));
        }
        __syncwarp();
        matmul_acc_16xHS<floatX, HS>(dV, Pw, dOs);   // dV_w += P^T dO
        matmul_acc_16xHS<floatX, HS>(dK, dSw, Qs);   // dK_w += dS^T Q   (scale applied at the end)
    }

    // write through the fp32 scratch: fragments have no documented element order
    for (int part = 1; part <= 2; part++) {
        FragAcc* acc = part == 1 ? dK : dV;
        float factor = part == 1 ? scale : 1.0f;
        for (int n = 0; n < HS / WM; n++) wmma::store_matrix_sync(Sw + n * WM, acc[n], HS, wmma::mem_row_major);
        __syncwarp();
        for (int i = lane; i < WM * HS; i += 32) {
            int r = i / HS, d = i % HS, t = k0 + warp * WM + r;
            if (t < T) dqkv[((size_t) b * T + t) * 3 * C + part * C + h * HS + d] = from_f32<floatX>(Sw[i] * factor);
        }
        __syncwarp();
    }
}

// ------------------------------------------------------------------------------------------------------------
// Backward, dQ. grid (ceil(T/64), NH, B): a block owns 64 queries (16 per warp) and walks the key tiles up to
// the diagonal. Writes (overwrites) the q part of dqkv.

template <typename floatX, int HS>
__device__ void flash_attention_backward_dq(floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse,
                                            const float* D, int B, int T, int C, int NH) {
    extern __shared__ __align__(128) char smem[];
    constexpr int SCRATCH = HS > FA_BC ? HS : FA_BC;
    SmemCarver carve{smem};
    floatX* Qs = carve.take<floatX>(FA_BR * HS);
    floatX* dOs = carve.take<floatX>(FA_BR * HS);
    floatX* Ks = carve.take<floatX>(FA_BC * HS);
    floatX* Vs = carve.take<floatX>(FA_BC * HS);
    float* lseS = carve.take<float>(FA_BR);
    float* Ds = carve.take<float>(FA_BR);
    const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
    float *Sw = nullptr, *dPw = nullptr;
    floatX* dSw = nullptr;
    for (int w = 0; w < FA_WARPS; w++) {
        float* s = carve.take<float>(WM * SCRATCH);
        float* dp = carve.take<float>(WM * FA_BC);
        floatX* ds = carve.take<floatX>(WM * FA_BC);
        if (w == warp) { Sw = s; dPw = dp; dSw = ds; }
    }
    if ((size_t) (carve.next - smem) > dynamic_smem_bytes()) __trap();

    const int qTile = blockIdx.x, h = blockIdx.y, b = blockIdx.z;
    const int q0 = qTile * FA_BR;
    const float scale = rsqrtf((float) HS);

    load_head_tile<floatX, HS>(Qs, qkv, b, h, 0, q0, T, C);
    load_btc_tile<floatX, HS>(dOs, dout, b, h, q0, T, C);
    for (int i = threadIdx.x; i < FA_BR; i += FA_THREADS) {
        int t = q0 + i;
        lseS[i] = t < T ? lse[((size_t) b * NH + h) * T + t] : 0.0f;
        Ds[i] = t < T ? D[((size_t) b * NH + h) * T + t] : 0.0f;
    }
    FragAcc dQ[HS / WM];
    for (int n = 0; n < HS / WM; n++) wmma::fill_fragment(dQ[n], 0.0f);

    for (int kTile = 0; kTile <= qTile; kTile++) {
        const int k0 = kTile * FA_BC;
        __syncthreads();
        load_head_tile<floatX, HS>(Ks, qkv, b, h, 1, k0, T, C);
        load_head_tile<floatX, HS>(Vs, qkv, b, h, 2, k0, T, C);
        __syncthreads();

        // S (16 queries x 64 keys) = Q_w K^T ;  dP = dO_w V^T
        matmul_16x64_abT<floatX, HS>(Sw, Qs + warp * WM * HS, Ks);
        matmul_16x64_abT<floatX, HS>(dPw, dOs + warp * WM * HS, Vs);
        __syncwarp();
        for (int i = lane; i < WM * FA_BC; i += 32) {
            int r = i / FA_BC, c = i % FA_BC;
            int qIdx = q0 + warp * WM + r, kIdx = k0 + c;
            bool valid = kIdx <= qIdx && qIdx < T;
            float p = valid ? expf(Sw[i] * scale - lseS[warp * WM + r]) : 0.0f;
            dSw[i] = from_f32<floatX>(p * (dPw[i] - Ds[warp * WM + r]));
        }
        __syncwarp();
        matmul_acc_16xHS<floatX, HS>(dQ, dSw, Ks);   // dQ_w += dS K
    }

    for (int n = 0; n < HS / WM; n++) wmma::store_matrix_sync(Sw + n * WM, dQ[n], HS, wmma::mem_row_major);
    __syncwarp();
    for (int i = lane; i < WM * HS; i += 32) {
        int r = i / HS, d = i % HS, t = q0 + warp * WM + r;
        if (t < T) dqkv[((size_t) b * T + t) * 3 * C + h * HS + d] = from_f32<floatX>(Sw[i] * scale);
    }
}

// ------------------------------------------------------------------------------------------------------------
// Exports: flash_attention_{forward,backward_dkdv,backward_dq}_<type>_hs<HS> for HS = 64 (every GPT-2 size),
// 96 and 128; flash_attention_backward_preprocess_<type>.

#define EXPORT_FLASH_HS(suffix, floatX, HS)                                                                        \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_forward_##suffix##_hs##HS(           \
        floatX* out, float* lse, const floatX* qkv, int B, int T, int C, int NH) {                                 \
        flash_attention_forward<floatX, HS>(out, lse, qkv, B, T, C, NH);                                           \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_backward_dkdv_##suffix##_hs##HS(     \
        floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse, const float* D, int B, int T,       \
        int C, int NH) {                                                                                           \
        flash_attention_backward_dkdv<floatX, HS>(dqkv, dout, qkv, lse, D, B, T, C, NH);                           \
    }                                                                                                              \
    extern "C" __global__ void __launch_bounds__(FA_THREADS) flash_attention_backward_dq_##suffix##_hs##HS(       \
        floatX* dqkv, const floatX* dout, const floatX* qkv, const float* lse, const float* D, int B, int T,       \
        int C, int NH) {                                                                                           \
        flash_attention_backward_dq<floatX, HS>(dqkv, dout, qkv, lse, D, B, T, C, NH);                             \
    }

#define EXPORT_FLASH(suffix, floatX)                                                                               \
    EXPORT_FLASH_HS(suffix, floatX, 64)                                                                            \
    EXPORT_FLASH_HS(suffix, floatX, 96)                                                                            \
    EXPORT_FLASH_HS(suffix, floatX, 128)                                                                           \
    extern "C" __global__ void flash_attention_backward_preprocess_##suffix(float* D, const floatX* dout,          \
                                                                           const floatX* out, int B, int T, int C, \
                                                                           int NH) {                               \
        flash_attention_backward_preprocess(D, dout, out, B, T, C, NH);                                            \
    }
DEFINE_FOR_16BIT_FLOATX(EXPORT_FLASH)
