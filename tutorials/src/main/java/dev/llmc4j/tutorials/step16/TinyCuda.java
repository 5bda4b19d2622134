package dev.llmc4j.tutorials.step16;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

/**
 * Step 16, part 2: the smallest binding of the CUDA driver API that launches one kernel (vector_add.cu), written
 * for the lesson. The real one, with streams, events and ~30 calls, is gpt2-cuda's {@code CudaDriver}.
 *
 * <p>Driver types as Java sees them: {@code CUresult} and {@code CUdevice} are ints; {@code CUdeviceptr} is a
 * 64-bit device address, a {@code long}; {@code CUcontext}, {@code CUmodule} and {@code CUfunction} are opaque
 * pointers, kept as {@link MemorySegment}s. Every call returns a CUresult, 0 for success.
 */
@SuppressWarnings("restricted") // FFM: calling native code is the lesson
public final class TinyCuda {
    private static final Linker LINKER = Linker.nativeLinker();

    private final MethodHandle cuInit,
            cuGetErrorName,
            cuDeviceGet,
            cuDevicePrimaryCtxRetain,
            cuDevicePrimaryCtxRelease,
            cuCtxSetCurrent,
            cuCtxSynchronize,
            cuModuleLoadData,
            cuModuleUnload,
            cuModuleGetFunction,
            cuMemAlloc,
            cuMemFree,
            cuMemcpyHtoD,
            cuMemcpyDtoH,
            cuLaunchKernel;

    // tag::load[]
    /**
     * Opens the driver library: a bare name goes through the dynamic loader (LD_LIBRARY_PATH, the ld cache), a
     * path is opened as is. Nothing is linked at build time, so a machine without a GPU compiles and tests this
     * class, and fails here, with a message that says what is missing, only when it really tries to use CUDA.
     */
    public static TinyCuda load(String library) {
        SymbolLookup lib;
        try {
            lib = SymbolLookup.libraryLookup(library, Arena.global()); // dlopen; global: never unloaded
        } catch (IllegalArgumentException e) { // what libraryLookup throws on failure
            throw new LlmcException("no CUDA driver: cannot load " + library + " (" + e.getMessage()
                    + "); it comes with the NVIDIA driver, so this machine has no GPU or no driver installed");
        }
        var cuda = new TinyCuda(lib);
        cuda.check(cuda.call(cuda.cuInit, 0), "cuInit"); // must come first, once per process
        return cuda;
    }
    // end::load[]

    // tag::bind[]
    private TinyCuda(SymbolLookup lib) {
        cuInit = bind(lib, "cuInit", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        // CUresult cuGetErrorName(CUresult error, const char** name)
        cuGetErrorName = bind(lib, "cuGetErrorName", FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS));
        // CUresult cuDeviceGet(CUdevice* device, int ordinal)
        cuDeviceGet = bind(lib, "cuDeviceGet", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRetain =
                bind(lib, "cuDevicePrimaryCtxRetain", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT));
        cuDevicePrimaryCtxRelease =
                bind(lib, "cuDevicePrimaryCtxRelease_v2", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
        cuCtxSetCurrent = bind(lib, "cuCtxSetCurrent", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        cuCtxSynchronize = bind(lib, "cuCtxSynchronize", FunctionDescriptor.of(JAVA_INT));
        // CUresult cuModuleLoadData(CUmodule* module, const void* image)
        cuModuleLoadData = bind(lib, "cuModuleLoadData", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        cuModuleUnload = bind(lib, "cuModuleUnload", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        // CUresult cuModuleGetFunction(CUfunction* function, CUmodule module, const char* name)
        cuModuleGetFunction =
                bind(lib, "cuModuleGetFunction", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS));
        // cuda.h #defines cuMemAlloc as cuMemAlloc_v2 (64-bit sizes): the library exports the _v2 names
        cuMemAlloc = bind(lib, "cuMemAlloc_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        cuMemFree = bind(lib, "cuMemFree_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG));
        cuMemcpyHtoD = bind(lib, "cuMemcpyHtoD_v2", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG));
        cuMemcpyDtoH = bind(lib, "cuMemcpyDtoH_v2", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG));
        // CUresult cuLaunchKernel(CUfunction f, unsigned gridX, gridY, gridZ, unsigned blockX, blockY, blockZ,
        //                         unsigned sharedMemBytes, CUstream stream, void** kernelParams, void** extra)
        cuLaunchKernel = bind(
                lib,
                "cuLaunchKernel",
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                        ADDRESS, ADDRESS, ADDRESS));
    }

    private static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor descriptor) {
        MemorySegment symbol = lib.find(name)
                .orElseThrow(() -> new LlmcException("the CUDA driver has no " + name + ": it is too old, update it"));
        return LINKER.downcallHandle(symbol, descriptor);
    }
    // end::bind[]

    // tag::check[]
    /** A non-zero CUresult becomes an exception that names the call and the error, e.g. CUDA_ERROR_OUT_OF_MEMORY. */
    void check(int result, String call) {
        if (result != 0) throw new LlmcException(call + " failed: " + errorName(result));
    }

    /** cuGetErrorName writes a pointer to a static C string into *name: read it back through a 0-length segment. */
    String errorName(int result) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(ADDRESS); // const char* name;
            if ((int) cuGetErrorName.invokeExact(result, name) != 0) return "CUresult " + result;
            return name.get(ADDRESS, 0).reinterpret(256).getString(0); // *name, up to its NUL
        } catch (Throwable t) {
            return "CUresult " + result;
        }
    }
    // end::check[]

    private int call(MethodHandle h, int arg) {
        try {
            return (int) h.invokeExact(arg);
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }

    // tag::vectorAdd[]
    /**
     * c = a + b on GPU 0, with the kernel {@code vector_add} from {@code fatbin} (vector_add.cu built by nvcc).
     * Every step is one driver call: out-parameters are one-element segments the driver writes into. On an error
     * it throws and leaves the GPU memory and the module behind (gpt2-cuda's classes free theirs in close()).
     */
    public float[] vectorAdd(byte[] fatbin, float[] a, float[] b) {
        int n = a.length;
        if (n == 0 || b.length != n) throw new IllegalArgumentException("need two vectors of the same length > 0");
        long bytes = 4L * n;
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(JAVA_LONG); // room for any one handle or value

            check((int) cuDeviceGet.invokeExact(out, 0), "cuDeviceGet");
            int device = out.get(JAVA_INT, 0);
            check((int) cuDevicePrimaryCtxRetain.invokeExact(out, device), "cuDevicePrimaryCtxRetain");
            check((int) cuCtxSetCurrent.invokeExact(out.get(ADDRESS, 0)), "cuCtxSetCurrent"); // for this thread

            MemorySegment image = arena.allocate(fatbin.length, 16); // native memory, aligned as the
            MemorySegment.copy(fatbin, 0, image, JAVA_BYTE, 0, fatbin.length); // driver's headers want
            check((int) cuModuleLoadData.invokeExact(out, image), "cuModuleLoadData");
            MemorySegment module = out.get(ADDRESS, 0);
            check(
                    (int) cuModuleGetFunction.invokeExact(out, module, arena.allocateFrom("vector_add")),
                    "cuModuleGetFunction(vector_add)");
            MemorySegment function = out.get(ADDRESS, 0);

            long[] device3 = new long[3]; // c, a, b on the GPU
            for (int i = 0; i < 3; i++) {
                check((int) cuMemAlloc.invokeExact(out, bytes), "cuMemAlloc_v2(" + bytes + " bytes)");
                device3[i] = out.get(JAVA_LONG, 0);
            }
            long c = device3[0], da = device3[1], db = device3[2];
            check((int) cuMemcpyHtoD.invokeExact(da, arena.allocateFrom(JAVA_FLOAT, a), bytes), "cuMemcpyHtoD_v2");
            check((int) cuMemcpyHtoD.invokeExact(db, arena.allocateFrom(JAVA_FLOAT, b), bytes), "cuMemcpyHtoD_v2");

            // vector_add(float* c, const float* a, const float* b, int n): a void** with one pointer per argument
            MemorySegment params = KernelParams.pack(arena, c, da, db, n);
            int block = 256, grid = Geometry.blocksFor(n, block);
            check(
                    (int) cuLaunchKernel.invokeExact(
                            function, grid, 1, 1, block, 1, 1, 0, MemorySegment.NULL, params, MemorySegment.NULL),
                    "cuLaunchKernel(vector_add)");
            check((int) cuCtxSynchronize.invokeExact(), "cuCtxSynchronize"); // launches are asynchronous

            MemorySegment result = arena.allocate(JAVA_FLOAT, n);
            check((int) cuMemcpyDtoH.invokeExact(result, c, bytes), "cuMemcpyDtoH_v2");
            for (long p : device3) check((int) cuMemFree.invokeExact(p), "cuMemFree_v2");
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
            check((int) cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease");
            return result.toArray(JAVA_FLOAT);
        } catch (LlmcException e) {
            throw e;
        } catch (Throwable t) {
            throw new IllegalStateException(t);
        }
    }
    // end::vectorAdd[]
}
