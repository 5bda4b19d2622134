package dev.llmc4j.gpt2.cuda;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The fatbin loaded into the current context: {@code kernels.fatbin} (built by build-kernels.sh from
 * src/main/cuda) from the class path with cuModuleLoadData; functions looked up by name once. The names the host
 * code launches are checked against {@code kernels.txt} (the fatbin's list) when the module loads, so a kernel
 * renamed in the .cu files fails at once, naming it, not at its first launch. {@link CudaKernels} holds the one
 * typed launcher per kernel; this class only knows names and packed arguments.
 */
public final class KernelModule implements AutoCloseable {
    static final String FATBIN = "kernels.fatbin";
    static final String NAMES = "kernels.txt";

    private final CudaDriver cuda;
    private final MemorySegment module;
    private final Map<String, MemorySegment> functions = new HashMap<>();
    private final Map<String, Integer> dynamicSmemLimit = new HashMap<>();

    /**
     * Loads the fatbin after checking that it exports every name in {@code required}.
     *
     * @throws LlmcException when the fatbin is missing or lacks a required kernel (naming it)
     */
    public KernelModule(CudaDriver cuda, Collection<String> required) {
        this.cuda = cuda;
        requireExported(exportedNames(), required);
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
        for (String line : new String(names, StandardCharsets.UTF_8).split("\n"))
            if (!line.isBlank()) set.add(line.trim());
        return set;
    }

    /** Throws, naming every kernel in {@code required} that {@code exported} (kernels.txt) lacks. */
    static void requireExported(Set<String> exported, Collection<String> required) {
        if (exported.isEmpty())
            throw new LlmcException("no CUDA kernels: dev/llmc4j/gpt2/cuda/" + NAMES + " is not on the class path "
                    + "(the module was built without nvcc; rebuild gpt2-cuda on a machine with the CUDA toolkit)");
        var missing = new TreeSet<String>(required);
        missing.removeAll(exported);
        if (!missing.isEmpty())
            throw new LlmcException("kernels.fatbin has no kernel " + String.join(", ", missing) + " (the host code "
                    + "launches it; kernels.txt lists " + exported.size() + " kernels): rebuild gpt2-cuda, or fix the "
                    + "name in CudaKernels or in src/main/cuda");
    }

    /** True when the build compiled the kernels into the jar. */
    public static boolean fatbinPresent() {
        return KernelModule.class.getResource(FATBIN) != null;
    }

    static byte[] readResource(String name) {
        try (InputStream in = KernelModule.class.getResourceAsStream(name)) {
            return in == null ? null : in.readAllBytes();
        } catch (IOException e) {
            throw new LlmcException("cannot read resource " + name + ": " + e.getMessage(), e);
        }
    }

    public MemorySegment function(String name) {
        return functions.computeIfAbsent(name, n -> cuda.moduleGetFunction(module, n));
    }

    /**
     * Launches {@code name} on {@code stream}; {@code args} are long (pointer / size_t), int or float, in the
     * kernel's order. Dynamic shared memory above the default 48 KiB is opted into (cuFuncSetAttribute) on first use.
     */
    void launch(
            String name,
            Launch.Dim3 grid,
            Launch.Dim3 block,
            int sharedMemBytes,
            MemorySegment stream,
            Object... args) {
        MemorySegment fn = function(name);
        if (sharedMemBytes > 48 * 1024 && dynamicSmemLimit.getOrDefault(name, 0) < sharedMemBytes) {
            cuda.funcSetAttribute(fn, CudaDriver.FUNC_ATTR_MAX_DYNAMIC_SHARED_SIZE_BYTES, sharedMemBytes, name);
            dynamicSmemLimit.put(name, sharedMemBytes);
        }
        try (Arena arena = Arena.ofConfined()) {
            KernelArgs packed = KernelArgs.pack(arena, args);
            cuda.launchKernel(fn, name, grid, block, sharedMemBytes, stream, packed.pointerArray());
        }
    }

    @Override
    public void close() {
        cuda.moduleUnload(module);
        functions.clear();
    }

    @Override
    public String toString() {
        return "KernelModule" + Arrays.toString(functions.keySet().toArray());
    }
}
