// A stand-in for libcuda.so.1, for Step16CudaFromJavaTest on machines without a GPU: the same C signatures as the
// driver API calls TinyCuda binds, with the "GPU" being this process's own memory. Device pointers are malloc'd
// host addresses, copies are memcpy, and the one kernel it knows, vector_add, runs as a loop over the grid that
// reads its arguments through kernelParams exactly as the driver does: params[i] points at argument i's value.
// Build: cc -shared -fPIC -o libcuda_fake.so fake_libcuda.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;                       // 0 = CUDA_SUCCESS
typedef unsigned long long CUdeviceptr;
#define OUT_OF_MEMORY 2
#define NOT_INITIALIZED 3
#define INVALID_IMAGE 200
#define NOT_FOUND 500

static int initialized = 0;
static int module_token, function_token, context_token;   // their addresses serve as opaque handles

CUresult cuInit(unsigned flags) { initialized = flags == 0; return initialized ? 0 : 1; }

CUresult cuGetErrorName(CUresult error, const char** name) {
    switch (error) {
        case 0: *name = "CUDA_SUCCESS"; return 0;
        case OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; return 0;
        case NOT_INITIALIZED: *name = "CUDA_ERROR_NOT_INITIALIZED"; return 0;
        case INVALID_IMAGE: *name = "CUDA_ERROR_INVALID_IMAGE"; return 0;
        case NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; return 0;
        default: *name = 0; return 1;    // CUDA_ERROR_INVALID_VALUE
    }
}

CUresult cuDeviceGet(int* device, int ordinal) {
    if (!initialized) return NOT_INITIALIZED;
    *device = ordinal;
    return ordinal == 0 ? 0 : 101;       // CUDA_ERROR_INVALID_DEVICE
}
CUresult cuDevicePrimaryCtxRetain(void** context, int device) { *context = &context_token; return 0; }
CUresult cuDevicePrimaryCtxRelease_v2(int device) { return 0; }
CUresult cuCtxSetCurrent(void* context) { return context == &context_token ? 0 : 201; }
CUresult cuCtxSynchronize(void) { return 0; }

// a fatbin starts with 0xBA55ED50 (little-endian)
CUresult cuModuleLoadData(void** module, const void* image) {
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic != 0xBA55ED50u) return INVALID_IMAGE;
    *module = &module_token;
    return 0;
}
CUresult cuModuleUnload(void* module) { return module == &module_token ? 0 : 400; }
CUresult cuModuleGetFunction(void** function, void* module, const char* name) {
    if (strcmp(name, "vector_add") != 0) return NOT_FOUND;
    *function = &function_token;
    return 0;
}

CUresult cuMemAlloc_v2(CUdeviceptr* ptr, size_t bytes) {
    void* p = malloc(bytes);
    if (p == 0) return OUT_OF_MEMORY;
    *ptr = (CUdeviceptr) (uintptr_t) p;
    return 0;
}
CUresult cuMemFree_v2(CUdeviceptr ptr) { free((void*) (uintptr_t) ptr); return 0; }
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) { memcpy((void*) (uintptr_t) dst, src, bytes); return 0; }
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) { memcpy(dst, (const void*) (uintptr_t) src, bytes); return 0; }

// vector_add(float* c, const float* a, const float* b, int n), every thread of the grid in turn
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
    if (f != &function_token || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx > 1024 || params == 0) return 1;
    float* c = *(float**) params[0];
    const float* a = *(const float**) params[1];
    const float* b = *(const float**) params[2];
    int n = *(const int*) params[3];
    for (unsigned block = 0; block < gx; block++)
        for (unsigned thread = 0; thread < bx; thread++) {
            int i = (int) (block * bx + thread);
            if (i < n) c[i] = a[i] + b[i];
        }
    return 0;
}
