// The "writing a CUDA kernel" page: the softmax of each row of a (rows, cols) fp32 matrix, three ways. Not part
// of any build: CudaKernelTest compiles it with nvcc when nvcc is installed. WarpSoftmax.java replays the warp
// version's arithmetic lane by lane on the CPU, so the algorithm is tested without a GPU.

// tag::naive[]
// 1. One thread per row. Correct, and slow: the 32 threads of a warp read 32 different rows at the same moment,
// addresses cols * 4 bytes apart, so one load instruction touches 32 separate 128-byte segments of memory
// (uncoalesced), and a GPU with 100k threads in flight gets only `rows` of them busy.
extern "C" __global__ void softmax_thread_per_row(float* out, const float* inp, int rows, int cols) {
    int row = blockIdx.x * blockDim.x + threadIdx.x;
    if (row >= rows) return;
    const float* x = inp + (size_t) row * cols;
    float max = -INFINITY;
    for (int i = 0; i < cols; i++) max = fmaxf(max, x[i]);
    float sum = 0.0f;
    for (int i = 0; i < cols; i++) sum += expf(x[i] - max);
    for (int i = 0; i < cols; i++) out[(size_t) row * cols + i] = expf(x[i] - max) / sum;
}
// end::naive[]

// tag::warp[]
// The sum (or max) of one value per lane, in every lane: five butterfly steps, each lane adding the value of the
// lane whose index differs in one bit. Registers only: no shared memory, no __syncthreads.
__device__ float warp_sum(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffff, v, offset);
    return v;
}

__device__ float warp_max(float v) {
    for (int offset = 16; offset > 0; offset /= 2) v = fmaxf(v, __shfl_xor_sync(0xffffffff, v, offset));
    return v;
}

// 2. One warp (32 threads) per row. Lane l reads elements l, l + 32, l + 64, ...: at each step the 32 lanes read
// 32 consecutive floats, one 128-byte segment (coalesced). Each lane keeps a partial max and sum; the butterflies
// combine them. Launch with blockDim.x a multiple of 32 and enough blocks for rows * 32 threads.
extern "C" __global__ void softmax_warp_per_row(float* out, const float* inp, int rows, int cols) {
    int warp = (blockIdx.x * blockDim.x + threadIdx.x) / 32, lane = threadIdx.x % 32;
    if (warp >= rows) return;                         // a whole warp leaves together: the shuffles stay full
    const float* x = inp + (size_t) warp * cols;
    float max = -INFINITY;
    for (int i = lane; i < cols; i += 32) max = fmaxf(max, x[i]);
    max = warp_max(max);
    float sum = 0.0f;
    for (int i = lane; i < cols; i += 32) sum += expf(x[i] - max);
    sum = warp_sum(sum);
    for (int i = lane; i < cols; i += 32) out[(size_t) warp * cols + i] = expf(x[i] - max) / sum;
}
// end::warp[]

// tag::block[]
// 3. One block per row, for long rows (a 50,257-token vocabulary): blockDim.x threads (a multiple of 32, at most
// 1024) stride over the row, each warp reduces its lanes with shuffles, and the warps meet in shared memory, one
// slot per warp, visible to the whole block. __syncthreads() makes every warp wait until all slots are written.
__device__ float block_reduce(float v, bool isMax, float* shared) {
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    v = isMax ? warp_max(v) : warp_sum(v);
    if (lane == 0) shared[warp] = v;                  // one value per warp
    __syncthreads();
    v = lane < warps ? shared[lane] : (isMax ? -INFINITY : 0.0f);
    v = isMax ? warp_max(v) : warp_sum(v);            // every warp reduces the slots: all threads get the result
    __syncthreads();                                  // the slots are reused by the next reduction
    return v;
}

extern "C" __global__ void softmax_block_per_row(float* out, const float* inp, int rows, int cols) {
    __shared__ float shared[32];                      // 32 warps at most in a block of 1024 threads
    int row = blockIdx.x;
    const float* x = inp + (size_t) row * cols;
    float max = -INFINITY;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) max = fmaxf(max, x[i]);
    max = block_reduce(max, true, shared);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) sum += expf(x[i] - max);
    sum = block_reduce(sum, false, shared);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) out[(size_t) row * cols + i] = expf(x[i] - max) / sum;
}
// end::block[]
