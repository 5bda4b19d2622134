// A stand-in for libcuda.so.1, for Step16CudaFromJavaTest on machines without a GPU: the same C signatures as the
// driver API calls TinyCuda binds, with the "GPU" being this process's own memory. Device pointers are malloc'd
// host addresses, copies are memcpy, and the one kernel it knows, vector_add, runs as a loop over the grid that
// reads its arguments through kernelParams exactly as the driver does: params[i] points at argument i's value.
// Like the driver it refuses work without a current context and on a device pointer it did not hand out, a kernel
// that touches such a pointer faults (CUDA_ERROR_ILLEGAL_ADDRESS at the next synchronize), and it counts what is
// still allocated, loaded and retained, so the test can check that TinyCuda gives everything back.
// Two functions that are not the driver's let the test make a call of a given name fail with a given CUresult
// (fake_fail_next) and read the counts (fake_live).
// Build: cc -shared -fPIC -o libcuda_fake.so fake_libcuda.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int CUresult;                       // 0 = CUDA_SUCCESS
typedef unsigned long long CUdeviceptr;
#define INVALID_VALUE 1
#define OUT_OF_MEMORY 2
#define NOT_INITIALIZED 3
#define INVALID_IMAGE 200
#define INVALID_CONTEXT 201
#define NOT_FOUND 500
#define ILLEGAL_ADDRESS 700

static int initialized = 0;
static int module_token, function_token, context_token;   // their addresses serve as opaque handles
static void* current_context = 0;
static CUresult pending_error = 0;   // a kernel's own error: launches are asynchronous, so it shows at the next sync
static long live_allocations = 0, live_modules = 0, retained_contexts = 0;

#define MAX_ALLOCATIONS 64
static struct { uintptr_t start; size_t bytes; } allocations[MAX_ALLOCATIONS];   // bytes == 0: a free entry

// whether [ptr, ptr + bytes) lies inside one live allocation
static int device_memory(CUdeviceptr ptr, size_t bytes) {
    for (int i = 0; i < MAX_ALLOCATIONS; i++)
        if (allocations[i].bytes && ptr >= allocations[i].start && ptr + bytes <= allocations[i].start + allocations[i].bytes)
            return 1;
    return 0;
}

static char fail_name[64];
static CUresult fail_result;
static int fail_skip;

// The call named `name`, after `skip` more calls of that name succeed, returns `result` without doing anything
// (as a failing driver call does).
void fake_fail_next(const char* name, int result, int skip) {
    strncpy(fail_name, name, sizeof fail_name - 1);
    fail_result = result;
    fail_skip = skip;
}

// What is still held: 0 = device allocations, 1 = loaded modules, 2 = retained primary contexts.
long fake_live(int what) { return what == 0 ? live_allocations : what == 1 ? live_modules : retained_contexts; }

static int failing(const char* name) {
    if (strcmp(fail_name, name) != 0) return 0;
    if (fail_skip-- > 0) return 0;
    fail_name[0] = 0;
    return 1;
}
#define FAIL_IF_ASKED(name) if (failing(name)) return fail_result

CUresult cuInit(unsigned flags) {
    FAIL_IF_ASKED("cuInit");
    initialized = flags == 0;
    return initialized ? 0 : INVALID_VALUE;
}

CUresult cuGetErrorName(CUresult error, const char** name) {
    switch (error) {
        case 0: *name = "CUDA_SUCCESS"; return 0;
        case INVALID_VALUE: *name = "CUDA_ERROR_INVALID_VALUE"; return 0;
        case OUT_OF_MEMORY: *name = "CUDA_ERROR_OUT_OF_MEMORY"; return 0;
        case NOT_INITIALIZED: *name = "CUDA_ERROR_NOT_INITIALIZED"; return 0;
        case INVALID_IMAGE: *name = "CUDA_ERROR_INVALID_IMAGE"; return 0;
        case INVALID_CONTEXT: *name = "CUDA_ERROR_INVALID_CONTEXT"; return 0;
        case NOT_FOUND: *name = "CUDA_ERROR_NOT_FOUND"; return 0;
        case ILLEGAL_ADDRESS: *name = "CUDA_ERROR_ILLEGAL_ADDRESS"; return 0;
        default: *name = 0; return INVALID_VALUE;    // not a CUresult this driver knows
    }
}

CUresult cuDeviceGet(int* device, int ordinal) {
    FAIL_IF_ASKED("cuDeviceGet");
    if (!initialized) return NOT_INITIALIZED;
    *device = ordinal;
    return ordinal == 0 ? 0 : 101;       // CUDA_ERROR_INVALID_DEVICE
}
CUresult cuDevicePrimaryCtxRetain(void** context, int device) {
    FAIL_IF_ASKED("cuDevicePrimaryCtxRetain");
    *context = &context_token;
    retained_contexts++;
    return 0;
}
CUresult cuDevicePrimaryCtxRelease_v2(int device) {
    FAIL_IF_ASKED("cuDevicePrimaryCtxRelease_v2");
    if (retained_contexts == 0) return INVALID_CONTEXT;
    retained_contexts--;
    return 0;
}
CUresult cuCtxSetCurrent(void* context) {
    FAIL_IF_ASKED("cuCtxSetCurrent");
    if (context != &context_token) return INVALID_CONTEXT;
    current_context = context;
    return 0;
}
CUresult cuCtxSynchronize(void) {
    FAIL_IF_ASKED("cuCtxSynchronize");
    if (!current_context) return INVALID_CONTEXT;
    CUresult error = pending_error;
    pending_error = 0;
    return error;
}

// a fatbin starts with 0xBA55ED50 (little-endian)
CUresult cuModuleLoadData(void** module, const void* image) {
    FAIL_IF_ASKED("cuModuleLoadData");
    if (!current_context) return INVALID_CONTEXT;
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic != 0xBA55ED50u) return INVALID_IMAGE;
    *module = &module_token;
    live_modules++;
    return 0;
}
CUresult cuModuleUnload(void* module) {
    FAIL_IF_ASKED("cuModuleUnload");
    if (module != &module_token || live_modules == 0) return 400;   // CUDA_ERROR_INVALID_HANDLE
    live_modules--;
    return 0;
}
CUresult cuModuleGetFunction(void** function, void* module, const char* name) {
    FAIL_IF_ASKED("cuModuleGetFunction");
    if (strcmp(name, "vector_add") != 0) return NOT_FOUND;
    *function = &function_token;
    return 0;
}

CUresult cuMemAlloc_v2(CUdeviceptr* ptr, size_t bytes) {
    FAIL_IF_ASKED("cuMemAlloc_v2");
    if (!current_context) return INVALID_CONTEXT;
    if (bytes == 0) return INVALID_VALUE;
    for (int i = 0; i < MAX_ALLOCATIONS; i++)
        if (allocations[i].bytes == 0) {
            void* p = malloc(bytes);
            if (p == 0) return OUT_OF_MEMORY;
            allocations[i].start = (uintptr_t) p;
            allocations[i].bytes = bytes;
            *ptr = (CUdeviceptr) (uintptr_t) p;
            live_allocations++;
            return 0;
        }
    return OUT_OF_MEMORY;
}
CUresult cuMemFree_v2(CUdeviceptr ptr) {
    FAIL_IF_ASKED("cuMemFree_v2");
    for (int i = 0; i < MAX_ALLOCATIONS; i++)
        if (allocations[i].bytes && allocations[i].start == ptr) {
            free((void*) (uintptr_t) ptr);
            allocations[i].bytes = 0;
            live_allocations--;
            return 0;
        }
    return INVALID_VALUE;   // not a pointer cuMemAlloc returned, or freed already
}
CUresult cuMemcpyHtoD_v2(CUdeviceptr dst, const void* src, size_t bytes) {
    FAIL_IF_ASKED("cuMemcpyHtoD_v2");
    if (!device_memory(dst, bytes)) return INVALID_VALUE;
    memcpy((void*) (uintptr_t) dst, src, bytes);
    return 0;
}
CUresult cuMemcpyDtoH_v2(void* dst, CUdeviceptr src, size_t bytes) {
    FAIL_IF_ASKED("cuMemcpyDtoH_v2");
    if (!device_memory(src, bytes)) return INVALID_VALUE;
    memcpy(dst, (const void*) (uintptr_t) src, bytes);
    return 0;
}

// vector_add(float* c, const float* a, const float* b, int n), every thread of the grid in turn
CUresult cuLaunchKernel(void* f, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned shared, void* stream, void** params, void** extra) {
    FAIL_IF_ASKED("cuLaunchKernel");
    if (f != &function_token || gy != 1 || gz != 1 || by != 1 || bz != 1 || bx > 1024 || params == 0)
        return INVALID_VALUE;
    for (int i = 0; i < 4; i++) if (params[i] == 0) return INVALID_VALUE;
    float* c = *(float**) params[0];
    const float* a = *(const float**) params[1];
    const float* b = *(const float**) params[2];
    int n = *(const int*) params[3];
    size_t bytes = n > 0 ? (size_t) n * sizeof(float) : 1;
    if (!device_memory((CUdeviceptr) (uintptr_t) c, bytes) || !device_memory((CUdeviceptr) (uintptr_t) a, bytes)
            || !device_memory((CUdeviceptr) (uintptr_t) b, bytes)) {   // the kernel faults, after the launch returned
        pending_error = ILLEGAL_ADDRESS;
        return 0;
    }
    for (unsigned block = 0; block < gx; block++)
        for (unsigned thread = 0; thread < bx; thread++) {
            int i = (int) (block * bx + thread);
            if (i < n) c[i] = a[i] + b[i];
        }
    return 0;
}
