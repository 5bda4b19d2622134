package dev.llmc4j.gpt2.cuda;

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
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The CUDA driver API (libcuda.so.1), bound at run time through FFM: no JNI, no C shim, nothing linked at build
 * time. Only the ~30 entry points GPT-2 training needs.
 *
 * <p>Types: a {@code CUdeviceptr} is a {@code long} (a 64-bit device address); {@code CUcontext}, {@code CUmodule},
 * {@code CUfunction}, {@code CUstream}, {@code CUevent} are opaque pointers, kept as {@link MemorySegment}s
 * ({@link MemorySegment#NULL} is the default stream). Every call is checked: a non-zero {@code CUresult} becomes a
 * {@link CudaException} naming the call and the error (from {@code cuGetErrorName}).
 *
 * <p>The library is opened lazily by {@link #get()}; without it, {@code get()} throws
 * {@code LlmcException("no CUDA driver (libcuda.so.1) found: ...")} and {@link #isAvailable()} says false.
 * Several entry points exist in versioned forms (cuMemAlloc_v2, ...): the header's #defines pick those, so we
 * look them up by their versioned names, falling back to older names where drivers differ.
 */
@SuppressWarnings("restricted") // FFM: binding native code is the point of this class
public final class CudaDriver {

    // CUdevice_attribute values used here (cuda.h)
    public static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    public static final int ATTR_COMPUTE_CAPABILITY_MAJOR = 75;
    public static final int ATTR_COMPUTE_CAPABILITY_MINOR = 76;
    public static final int ATTR_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN = 97;
    // CUfunction_attribute
    public static final int FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES = 8;
    // CUstream_flags: a stream that does not wait for (or hold up) the legacy default stream
    public static final int STREAM_NON_BLOCKING = 0x1;
    // CUevent_flags: an event only for ordering, without a timestamp (cheaper to record)
    public static final int EVENT_DISABLE_TIMING = 0x2;

    private static final Linker LINKER = Linker.nativeLinker();
    private static volatile CudaDriver instance;
    private static volatile LlmcException loadFailure;
    private static volatile Boolean available;
    /** Device ordinal handle -> its primary context, retained once for the life of the process. */
    private final Map<Integer, MemorySegment> primaryContexts = new HashMap<>();

    private final MethodHandle cuInit,
            cuDriverGetVersion,
            cuDeviceGetCount,
            cuDeviceGet,
            cuDeviceGetName,
            cuDeviceGetAttribute,
            cuDevicePrimaryCtxRetain,
            cuCtxSetCurrent,
            cuCtxSynchronize,
            cuMemGetInfo,
            cuMemAlloc,
            cuMemFree,
            cuMemcpyHtoD,
            cuMemcpyDtoH,
            cuMemcpyDtoD,
            cuMemcpyHtoDAsync,
            cuMemcpyDtoHAsync,
            cuMemsetD8,
            cuStreamCreate,
            cuStreamSynchronize,
            cuStreamDestroy,
            cuEventCreate,
            cuEventRecord,
            cuEventSynchronize,
            cuStreamWaitEvent,
            cuEventElapsedTime,
            cuEventDestroy,
            cuModuleLoadData,
            cuModuleUnload,
            cuModuleGetFunction,
            cuFuncSetAttribute,
            cuLaunchKernel,
            cuGetErrorName,
            cuGetErrorString;

    private CudaDriver(SymbolLookup lib) {
        var status = FunctionDescriptor.of(JAVA_INT, JAVA_INT); // CUresult f(int)
        cuInit = bind(lib, status, "cuInit");
        cuDriverGetVersion = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuDriverGetVersion");
        cuDeviceGetCount = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuDeviceGetCount");
        cuDeviceGet = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDeviceGet");
        cuDeviceGetName = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetName");
        cuDeviceGetAttribute =
                bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuDeviceGetAttribute");
        cuDevicePrimaryCtxRetain =
                bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuDevicePrimaryCtxRetain");
        cuCtxSetCurrent = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuCtxSetCurrent");
        cuCtxSynchronize = bind(lib, FunctionDescriptor.of(JAVA_INT), "cuCtxSynchronize");
        cuMemGetInfo = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuMemGetInfo_v2");
        cuMemAlloc = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG), "cuMemAlloc_v2");
        cuMemFree = bind(lib, FunctionDescriptor.of(JAVA_INT, JAVA_LONG), "cuMemFree_v2");
        cuMemcpyHtoD = bind(lib, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG), "cuMemcpyHtoD_v2");
        cuMemcpyDtoH = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoH_v2");
        cuMemcpyDtoD = bind(lib, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG), "cuMemcpyDtoD_v2");
        cuMemcpyHtoDAsync = bind(
                lib, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, ADDRESS, JAVA_LONG, ADDRESS), "cuMemcpyHtoDAsync_v2");
        cuMemcpyDtoHAsync = bind(
                lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_LONG, ADDRESS), "cuMemcpyDtoHAsync_v2");
        cuMemsetD8 = bind(lib, FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_BYTE, JAVA_LONG), "cuMemsetD8_v2");
        cuStreamCreate = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuStreamCreate");
        cuStreamSynchronize = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamSynchronize");
        cuStreamDestroy = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuStreamDestroy_v2");
        cuEventCreate = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT), "cuEventCreate");
        cuEventRecord = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuEventRecord");
        cuEventSynchronize = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuEventSynchronize");
        cuStreamWaitEvent = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, JAVA_INT), "cuStreamWaitEvent");
        cuEventElapsedTime = bind(
                lib,
                FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS),
                "cuEventElapsedTime_v2",
                "cuEventElapsedTime");
        cuEventDestroy = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuEventDestroy_v2");
        cuModuleLoadData = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS), "cuModuleLoadData");
        cuModuleUnload = bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS), "cuModuleUnload");
        cuModuleGetFunction =
                bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS, ADDRESS), "cuModuleGetFunction");
        cuFuncSetAttribute =
                bind(lib, FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT), "cuFuncSetAttribute");
        // CUresult cuLaunchKernel(CUfunction f, uint gx, gy, gz, uint bx, by, bz, uint sharedMemBytes,
        //                         CUstream hStream, void** kernelParams, void** extra)
        cuLaunchKernel = bind(
                lib,
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                        ADDRESS, ADDRESS, ADDRESS),
                "cuLaunchKernel");
        cuGetErrorName = bind(lib, FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorName");
        cuGetErrorString = bind(lib, FunctionDescriptor.of(JAVA_INT, JAVA_INT, ADDRESS), "cuGetErrorString");
    }

    private static MethodHandle bind(SymbolLookup lib, FunctionDescriptor descriptor, String... names) {
        for (String name : names) {
            var symbol = lib.find(name);
            if (symbol.isPresent()) return LINKER.downcallHandle(symbol.get(), descriptor);
        }
        throw new LlmcException("the CUDA driver (libcuda.so.1) has no " + String.join(" or ", names)
                + ": the driver is too old, update it");
    }

    /**
     * The driver, opened and initialised (cuInit) on first use.
     *
     * @throws LlmcException when libcuda.so.1 cannot be loaded or cuInit fails
     */
    public static CudaDriver get() {
        CudaDriver d = instance;
        if (d != null) return d;
        synchronized (CudaDriver.class) {
            if (instance != null) return instance;
            if (loadFailure != null) throw loadFailure;
            try {
                SymbolLookup lib =
                        NativeLibraries.open("CUDA driver (libcuda.so.1)", List.of("libcuda.so.1", "libcuda.so"));
                var driver = new CudaDriver(lib);
                driver.check(driver.invokeInt(driver.cuInit, 0), "cuInit(0)");
                instance = driver;
                return driver;
            } catch (LlmcException e) {
                loadFailure = e;
                throw e;
            }
        }
    }

    /** True when the driver loads and sees at least one GPU. Never throws; the answer is cached. */
    public static boolean isAvailable() {
        Boolean a = available;
        if (a != null) return a;
        boolean result;
        try {
            result = get().deviceCount() > 0;
        } catch (RuntimeException e) {
            result = false;
        }
        available = result;
        return result;
    }

    // ---------------------------------------------------------------------------------------------------------
    // error handling

    /** Throws a {@link CudaException} if {@code result} is not CUDA_SUCCESS (0). */
    public void check(int result, String call) {
        if (result == 0) return;
        throw new CudaException(call, result, errorName(result), errorString(result));
    }

    /** cuGetErrorName, e.g. "CUDA_ERROR_OUT_OF_MEMORY"; "CUresult " + code if the driver does not know it. */
    public String errorName(int code) {
        return describe(cuGetErrorName, code, "CUresult " + code);
    }

    private String errorString(int code) {
        return describe(cuGetErrorString, code, "");
    }

    private String describe(MethodHandle h, int code, String fallback) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ADDRESS);
            int r = (int) h.invokeExact(code, out);
            if (r != 0) return fallback;
            MemorySegment str = out.get(ADDRESS, 0);
            return str.equals(MemorySegment.NULL)
                    ? fallback
                    : str.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }

    private int invokeInt(MethodHandle h, int arg) {
        try {
            return (int) h.invokeExact(arg);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    static RuntimeException rethrow(Throwable t) {
        if (t instanceof RuntimeException r) return r;
        if (t instanceof Error e) throw e;
        return new IllegalStateException(t);
    }

    // ---------------------------------------------------------------------------------------------------------
    // devices and contexts

    public int driverVersion() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(JAVA_INT);
            check((int) cuDriverGetVersion.invokeExact(v), "cuDriverGetVersion");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int deviceCount() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment n = arena.allocate(JAVA_INT);
            check((int) cuDeviceGetCount.invokeExact(n), "cuDeviceGetCount");
            return n.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** The CUdevice handle (an int) of ordinal {@code ordinal}. */
    public int device(int ordinal) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment d = arena.allocate(JAVA_INT);
            check((int) cuDeviceGet.invokeExact(d, ordinal), "cuDeviceGet(" + ordinal + ")");
            return d.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public String deviceName(int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment name = arena.allocate(256);
            check((int) cuDeviceGetName.invokeExact(name, 256, device), "cuDeviceGetName");
            return name.getString(0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public int deviceAttribute(int attribute, int device) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment v = arena.allocate(JAVA_INT);
            check(
                    (int) cuDeviceGetAttribute.invokeExact(v, attribute, device),
                    "cuDeviceGetAttribute(" + attribute + ")");
            return v.get(JAVA_INT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * The device's primary context (the one the runtime API, cuBLASLt and NCCL use), made current on this thread.
     * It is retained once per process, on first use, and never released: released at a model's close, it could be
     * destroyed between two models in one JVM while cuBLASLt still holds state in it.
     */
    public MemorySegment primaryContext(int device) {
        MemorySegment context;
        synchronized (primaryContexts) {
            context = primaryContexts.get(device);
            if (context == null) {
                try (Arena arena = Arena.ofConfined()) {
                    MemorySegment ctx = arena.allocate(ADDRESS);
                    check((int) cuDevicePrimaryCtxRetain.invokeExact(ctx, device), "cuDevicePrimaryCtxRetain");
                    context = ctx.get(ADDRESS, 0);
                } catch (Throwable t) {
                    throw rethrow(t);
                }
                primaryContexts.put(device, context);
            }
        }
        setCurrentContext(context);
        return context;
    }

    /** CUDA contexts are per thread: call this on any thread that is not the one that created the model. */
    public void setCurrentContext(MemorySegment context) {
        try {
            check((int) cuCtxSetCurrent.invokeExact(context), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Waits for all work on the current context; asynchronous kernel errors surface here. */
    public void synchronize() {
        try {
            check((int) cuCtxSynchronize.invokeExact(), "cuCtxSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** {free, total} device memory in bytes. */
    public long[] memoryInfo() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(JAVA_LONG), total = arena.allocate(JAVA_LONG);
            check((int) cuMemGetInfo.invokeExact(free, total), "cuMemGetInfo");
            return new long[] {free.get(JAVA_LONG, 0), total.get(JAVA_LONG, 0)};
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // memory

    public long memAlloc(long bytes) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ptr = arena.allocate(JAVA_LONG);
            check((int) cuMemAlloc.invokeExact(ptr, bytes), "cuMemAlloc_v2(" + bytes + " bytes)");
            return ptr.get(JAVA_LONG, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memFree(long devicePtr) {
        try {
            check((int) cuMemFree.invokeExact(devicePtr), "cuMemFree_v2");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Host to device, synchronous. {@code src} must be native (off-heap) memory. */
    public void memcpyHtoD(long dst, MemorySegment src, long bytes) {
        try {
            check((int) cuMemcpyHtoD.invokeExact(dst, src, bytes), "cuMemcpyHtoD_v2(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Device to host, synchronous (waits for preceding work on the default stream). */
    public void memcpyDtoH(MemorySegment dst, long src, long bytes) {
        try {
            check((int) cuMemcpyDtoH.invokeExact(dst, src, bytes), "cuMemcpyDtoH_v2(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memcpyDtoD(long dst, long src, long bytes) {
        try {
            check((int) cuMemcpyDtoD.invokeExact(dst, src, bytes), "cuMemcpyDtoD_v2(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memcpyHtoDAsync(long dst, MemorySegment src, long bytes, MemorySegment stream) {
        try {
            check(
                    (int) cuMemcpyHtoDAsync.invokeExact(dst, src, bytes, stream),
                    "cuMemcpyHtoDAsync_v2(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memcpyDtoHAsync(MemorySegment dst, long src, long bytes, MemorySegment stream) {
        try {
            check(
                    (int) cuMemcpyDtoHAsync.invokeExact(dst, src, bytes, stream),
                    "cuMemcpyDtoHAsync_v2(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void memsetD8(long dst, byte value, long bytes) {
        try {
            check((int) cuMemsetD8.invokeExact(dst, value, bytes), "cuMemsetD8_v2(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // streams and events

    public MemorySegment streamCreate() {
        return streamCreate(0);
    }

    /** cuStreamCreate with CUstream_flags, e.g. {@link #STREAM_NON_BLOCKING}. */
    public MemorySegment streamCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment s = arena.allocate(ADDRESS);
            check((int) cuStreamCreate.invokeExact(s, flags), "cuStreamCreate");
            return s.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void streamSynchronize(MemorySegment stream) {
        try {
            check((int) cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void streamDestroy(MemorySegment stream) {
        try {
            check((int) cuStreamDestroy.invokeExact(stream), "cuStreamDestroy_v2");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public MemorySegment eventCreate() {
        return eventCreate(0);
    }

    /** cuEventCreate with CUevent_flags, e.g. {@link #EVENT_DISABLE_TIMING}. */
    public MemorySegment eventCreate(int flags) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment e = arena.allocate(ADDRESS);
            check((int) cuEventCreate.invokeExact(e, flags), "cuEventCreate");
            return e.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void eventRecord(MemorySegment event, MemorySegment stream) {
        try {
            check((int) cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Work enqueued on {@code stream} after this call waits until {@code event}'s last recorded point is reached. */
    public void streamWaitEvent(MemorySegment stream, MemorySegment event) {
        try {
            check((int) cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void eventSynchronize(MemorySegment event) {
        try {
            check((int) cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /** Milliseconds between two recorded (and completed) events. */
    public float eventElapsedMillis(MemorySegment start, MemorySegment end) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment ms = arena.allocate(JAVA_FLOAT);
            check((int) cuEventElapsedTime.invokeExact(ms, start, end), "cuEventElapsedTime");
            return ms.get(JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void eventDestroy(MemorySegment event) {
        try {
            check((int) cuEventDestroy.invokeExact(event), "cuEventDestroy_v2");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    // ---------------------------------------------------------------------------------------------------------
    // modules and kernels

    /** Loads a fatbin/cubin/PTX image (native memory) into the current context. */
    public MemorySegment moduleLoadData(MemorySegment image) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment module = arena.allocate(ADDRESS);
            check(
                    (int) cuModuleLoadData.invokeExact(module, image),
                    "cuModuleLoadData(" + image.byteSize() + " bytes)");
            return module.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void moduleUnload(MemorySegment module) {
        try {
            check((int) cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public MemorySegment moduleGetFunction(MemorySegment module, String name) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment fn = arena.allocate(ADDRESS);
            check(
                    (int) cuModuleGetFunction.invokeExact(fn, module, arena.allocateFrom(name)),
                    "cuModuleGetFunction(" + name + ")");
            return fn.get(ADDRESS, 0);
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    public void funcSetAttribute(MemorySegment function, int attribute, int value, String name) {
        try {
            check(
                    (int) cuFuncSetAttribute.invokeExact(function, attribute, value),
                    "cuFuncSetAttribute(" + name + ", " + attribute + ", " + value + ")");
        } catch (Throwable t) {
            throw rethrow(t);
        }
    }

    /**
     * cuLaunchKernel. {@code params} is the {@code void**} array built by {@link KernelArgs}: one pointer per
     * kernel parameter, each pointing at that parameter's value.
     */
    public void launchKernel(
            MemorySegment function,
            String name,
            Launch.Dim3 grid,
            Launch.Dim3 block,
            int sharedMemBytes,
            MemorySegment stream,
            MemorySegment params) {
        int r;
        try {
            r = (int) cuLaunchKernel.invokeExact(
                    function,
                    grid.x(),
                    grid.y(),
                    grid.z(),
                    block.x(),
                    block.y(),
                    block.z(),
                    sharedMemBytes,
                    stream,
                    params,
                    MemorySegment.NULL);
        } catch (Throwable t) {
            throw rethrow(t);
        }
        if (r != 0)
            check(
                    r,
                    "cuLaunchKernel(" + name + ", grid " + grid + ", block " + block + ", smem " + sharedMemBytes
                            + ")");
    }
}
