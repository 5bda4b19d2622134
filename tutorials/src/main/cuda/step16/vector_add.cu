// Step 16's kernel: c[i] = a[i] + b[i] for i < n. Not part of any build; the lesson's test compiles it with nvcc
// when nvcc is installed (and runs it when a GPU is present).
// tag::kernel[]
// extern "C": keep the name as written ("vector_add"), so that cuModuleGetFunction finds it by that name.
// Without it C++ would mangle the name to something like _Z10vector_addPfPKfS1_i.
extern "C" __global__ void vector_add(float* c, const float* a, const float* b, int n) {
    // one thread per element: block blockIdx.x, thread threadIdx.x within it
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) c[i] = a[i] + b[i];   // the last block may stick out past n
}
// end::kernel[]
