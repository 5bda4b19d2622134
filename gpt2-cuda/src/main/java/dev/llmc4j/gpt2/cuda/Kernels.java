package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.util.LlmcException;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

/**
 * Our kernels on the GPU: loads {@code kernels.fatbin} (built by build-kernels.sh from src/main/cuda) from the
 * classpath with cuModuleLoadData, looks functions up by name once and launches them.
 *
 * <pre>
 *   kernels.launch("gelu_forward_bf16", Launch.gridStride(n, 512), Dim3.of(512), 0, out, inp, n);
 * </pre>
 */
public final class Kernels implements AutoCloseable {
    static final String FATBIN = "kernels.fatbin";
    static final String NAMES = "kernels.txt";

    private final CudaDriver cuda;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    private final Map<String, Integer> dynamicSmemLimit = new HashMap<>();

    public Kernels(CudaDriver cuda) {
        this.cuda = cuda;
        byte[] image = readResource(FATBIN);
        if (image == null)
            throw new LlmcException("no CUDA kernels: dev/llmc4j/gpt2/cuda/" + FATBIN + " is not on the classpath "
                    + "(the module was built without nvcc; rebuild gpt2-cuda on a machine with the CUDA toolkit)");
        // the image must stay readable while the module loads; a global arena keeps it simple (a few MB, once)
        MemorySegment imageCopy = Arena.global().allocate(image.length + 1L, 16);
        MemorySegment.copy(image, 0, imageCopy, JAVA_BYTE, 0, image.length);
        this.module = cuda.moduleLoadData(imageCopy.asSlice(0, image.length));
    }

    /** The names listed in kernels.txt next to the fatbin; empty if it was not built. */
    public static Set<String> exportedNames() {
        byte[] names = readResource(NAMES);
        if (names == null) return Set.of();
        var set = new TreeSet<String>();
        for (String line : new String(names, StandardCharsets.UTF_8).split("\n")) if (!line.isBlank()) set.add(line.trim());
        return set;
    }

    /** True when the build compiled the kernels into the jar. */
    public static boolean fatbinPresent() {
        return Kernels.class.getResource(FATBIN) != null;
    }

    static byte[] readResource(String name) {
        try (InputStream in = Kernels.class.getResourceAsStream(name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new LlmcException("cannot read resource " + name + ": " + e.getMessage(), e);
        }
    }

    public MemorySegment function(String name) {
        return functions.computeIfAbsent(name, n -> cuda.moduleGetFunction(module, n));
    }

    /**
     * Launches {@code name}; {@code args} are long (pointer / size_t), int or float, in the kernel's order.
     * Dynamic shared memory above the default 48 KiB is opted into (cuFuncSetAttribute) on first use.
     */
    public void launch(String name, Launch.Dim3 grid, Launch.Dim3 block, int sharedMemBytes, Object... args) {
        MemorySegment fn = function(name);
        if (sharedMemBytes > 48 * 1024 && dynamicSmemLimit.getOrDefault(name, 0) < sharedMemBytes) {
            cuda.funcSetAttribute(fn, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedMemBytes, name);
            dynamicSmemLimit.put(name, sharedMemBytes);
        }
        try (Arena arena = Arena.ofConfined()) {
            KernelArgs packed = KernelArgs.pack(arena, args);
            cuda.launchKernel(fn, name, grid, block, sharedMemBytes, MemorySegment.NULL, packed.pointerArray());
        }
    }

    @Override
    public void close() {
        cuda.moduleUnload(module);
        functions.clear();
    }

    @Override
    public String toString() {
        return "Kernels" + Arrays.toString(functions.keySet().toArray());
    }
}
