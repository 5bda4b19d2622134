package dev.llmc4j.gpt2.cuda;

import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.EnumMap;
import java.util.List;
import java.util.Map;

/** Test helper: one GPU context, the kernels in each precision, and buffers in/out as float[] of any precision. */
final class Device implements AutoCloseable {
    /** The default stream, which every test launch uses. */
    static final MemorySegment STREAM = MemorySegment.NULL;

    final CudaDriver cuda;
    private final KernelModule module;
    private final Map<Precision, CudaKernels> kernels = new EnumMap<>(Precision.class);
    private final List<Long> allocations = new ArrayList<>();

    Device() {
        cuda = CudaDriver.get();
        cuda.primaryContext(cuda.device(0));
        module = new KernelModule(cuda, CudaKernels.kernelNames());
        for (Precision p : Precision.values()) kernels.put(p, new CudaKernels(module, p));
    }

    /** The typed launchers for storage precision p. */
    CudaKernels kernels(Precision p) {
        return kernels.get(p);
    }

    /** Waits for the launches so far: tests want an error at the kernel that caused it. */
    void sync() {
        cuda.synchronize();
    }

    long alloc(long bytes) {
        long p = cuda.memAlloc(Math.max(bytes, 4));
        cuda.memsetD8(p, (byte) 0, Math.max(bytes, 4));
        allocations.add(p);
        return p;
    }

    long upload(float[] a) {
        long p = alloc(a.length * 4L);
        try (Arena arena = Arena.ofConfined()) {
            cuda.memcpyHtoD(p, arena.allocateFrom(JAVA_FLOAT, a), a.length * 4L);
        }
        return p;
    }

    long uploadInts(int[] a) {
        long p = alloc(a.length * 4L);
        try (Arena arena = Arena.ofConfined()) {
            if (a.length > 0) cuda.memcpyHtoD(p, arena.allocateFrom(JAVA_INT, a), a.length * 4L);
        }
        return p;
    }

    /** Uploads {@code a} stored as precision p (rounded to nearest on the GPU by the convert kernel). */
    long uploadAs(float[] a, Precision p) {
        long f32 = upload(a);
        if (p == Precision.FP32) return f32;
        long out = alloc(a.length * (long) p.bytes());
        kernels(p).convertFromFloat(out, f32, a.length, STREAM);
        sync();
        return out;
    }

    float[] download(long ptr, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(1, n) * 4L);
            cuda.memcpyDtoH(host, ptr, n * 4L);
            return host.asSlice(0, n * 4L).toArray(JAVA_FLOAT);
        }
    }

    int[] downloadInts(long ptr, int n) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment host = arena.allocate(Math.max(1, n) * 4L);
            cuda.memcpyDtoH(host, ptr, n * 4L);
            return host.asSlice(0, n * 4L).toArray(JAVA_INT);
        }
    }

    float[] downloadAs(long ptr, int n, Precision p) {
        if (p == Precision.FP32) return download(ptr, n);
        long f32 = alloc(n * 4L);
        kernels(p).convertToFloat(f32, ptr, n, STREAM);
        sync();
        return download(f32, n);
    }

    /** What storing v as precision p does (round to nearest even). */
    static float round(float v, Precision p) {
        return switch (p) {
            case FP32 -> v;
            case FP16 -> Float.float16ToFloat(Float.floatToFloat16(v));
            case BF16 -> {
                int bits = Float.floatToRawIntBits(v);
                bits = (bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000;
                yield Float.intBitsToFloat(bits);
            }
        };
    }

    static float[] round(float[] a, Precision p) {
        float[] o = new float[a.length];
        for (int i = 0; i < a.length; i++) o[i] = round(a[i], p);
        return o;
    }

    /** Relative tolerance of one rounding in precision p. */
    static float eps(Precision p) {
        return switch (p) {
            case FP32 -> 1e-5f;
            case FP16 -> 1e-3f;
            case BF16 -> 8e-3f;
        };
    }

    @Override
    public void close() {
        for (long p : allocations) cuda.memFree(p);
        module.close(); // the primary context stays: it is retained once per process
    }
}
