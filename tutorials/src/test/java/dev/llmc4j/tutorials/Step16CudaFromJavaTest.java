package dev.llmc4j.tutorials;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import dev.llmc4j.gpt2.cuda.CublasLt;
import dev.llmc4j.gpt2.cuda.CudaDriver;
import dev.llmc4j.gpt2.cuda.KernelArgs;
import dev.llmc4j.gpt2.cuda.KernelModule;
import dev.llmc4j.gpt2.cuda.Launch;
import dev.llmc4j.tutorials.step16.ColumnMajorLinear;
import dev.llmc4j.tutorials.step16.Fatbins;
import dev.llmc4j.tutorials.step16.Geometry;
import dev.llmc4j.tutorials.step16.KernelParams;
import dev.llmc4j.tutorials.step16.LibC;
import dev.llmc4j.tutorials.step16.TinyCuda;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Step 16: FFM on libc for real (strlen, getenv, cos, qsort with an upcall); the lesson's CUDA pieces checked
 * against gpt2-cuda without a GPU (argument packing byte for byte against KernelArgs, geometry against Launch, the
 * column-major linear call against CublasLt, the error without a driver, the kernel names in the fatbin).
 * Timings are printed, never asserted.
 */
class Step16CudaFromJavaTest {
    static final Path VECTOR_ADD = Path.of("src/main/cuda/step16/vector_add.cu");
    static final Path FAKE_LIBCUDA = Path.of("src/test/c/step16/fake_libcuda.c");

    @Test
    void downcallsIntoLibc() {
        assertEquals(5, LibC.strlen("hello"));
        assertEquals(0, LibC.strlen(""));
        assertEquals(6, LibC.strlen("héllo")); // UTF-8: é is two bytes
        assertEquals(5, LibC.strlenCritical("hello\0".getBytes())); // a heap array, no copy
        assertEquals(Math.cos(0.5), LibC.cos(0.5), 1e-15); // libm, opened by name
        assertEquals(System.getenv("PATH"), LibC.getenv("PATH")); // a C string coming back
        assertNull(LibC.getenv("LLMC4J_STEP16_SURELY_UNSET")); // NULL comes back as MemorySegment.NULL

        // what one call costs: the string is in native memory already, so this is the downcall alone
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment hello = arena.allocateFrom("hello, world");
            byte[] heapHello = "hello, world\0".getBytes();
            int calls = 2_000_000;
            long sum = 0;
            for (int round = 0; round < 5; round++) { // the first rounds warm up the JIT
                long start = System.nanoTime();
                for (int i = 0; i < calls; i++) sum += LibC.strlen(hello);
                long normal = System.nanoTime() - start;
                start = System.nanoTime();
                for (int i = 0; i < calls; i++) sum += LibC.strlenCritical(heapHello);
                long critical = System.nanoTime() - start;
                if (round == 4)
                    System.out.printf(
                            "strlen through FFM: %.1f ns per downcall (critical, on a heap array: %.1f ns)%n",
                            (double) normal / calls, (double) critical / calls);
            }
            assertEquals(5L * 2 * calls * 12, sum);
        }
    }

    @Test
    void qsortCallsBackIntoJava() {
        var random = new Random(16);
        int[] values = random.ints(100_000).toArray();
        int[] expected = values.clone();
        Arrays.sort(expected);
        assertArrayEquals(expected, LibC.qsort(values));

        int[] few = {3, -1, 2, Integer.MIN_VALUE, Integer.MAX_VALUE, 2};
        assertArrayEquals(new int[] {Integer.MIN_VALUE, -1, 2, 2, 3, Integer.MAX_VALUE}, LibC.qsort(few));

        long before = LibC.comparisons(), start = System.nanoTime();
        LibC.qsort(values);
        long elapsed = System.nanoTime() - start, upcalls = LibC.comparisons() - before;
        assertTrue(upcalls > values.length, "qsort compared " + upcalls + " times");
        System.out.printf(
                "qsort of %,d ints: %,d upcalls into the Java comparator, %.0f ns each (sort included)%n",
                values.length, upcalls, (double) elapsed / upcalls);
    }

    /** Every argument list: lesson and KernelArgs agree on the pointer array and on every byte each pointer sees. */
    @Test
    void kernelParamsEqualKernelArgsByteForByte() {
        List<Object[]> argumentLists = List.of(
                new Object[] {0x7f00_1234_5678L, 0x7f00_1234_9000L, 0x7f00_1234_a000L, 1000}, // vector_add
                new Object[] {0x7f00_0000_0100L, 42, 1.5f, -7L, -1}, // -1: an unsigned 0xFFFFFFFF
                new Object[] {0x0102_0304_0506_0708L, 0x01020304, 1.0f, Float.NaN, Long.MIN_VALUE},
                new Object[] {3.0f});
        try (Arena arena = Arena.ofConfined()) {
            for (Object[] args : argumentLists) {
                MemorySegment lesson = KernelParams.pack(arena, args);
                MemorySegment real = KernelArgs.pack(arena, args).pointerArray();
                assertEquals(real.byteSize(), lesson.byteSize(), "void*[" + args.length + "]");
                long lessonBase = lesson.getAtIndex(ADDRESS, 0).address(),
                        realBase = real.getAtIndex(ADDRESS, 0).address();
                for (int i = 0; i < args.length; i++) {
                    MemorySegment lessonSlot = lesson.getAtIndex(ADDRESS, i), realSlot = real.getAtIndex(ADDRESS, i);
                    // a NULL in params[i] would crash the driver (and this JVM, reading it below)
                    assertTrue(lessonSlot.address() != 0, "params[" + i + "] points somewhere");
                    // same place relative to the first value: the same 8-byte slots
                    assertEquals(realSlot.address() - realBase, lessonSlot.address() - lessonBase, "slot " + i);
                    assertEquals(0, lessonSlot.address() % 8, "slot " + i + " aligned");
                    // the 8 bytes the driver may read through params[i]
                    byte[] lessonBytes = lessonSlot.reinterpret(8).toArray(JAVA_BYTE);
                    byte[] realBytes = realSlot.reinterpret(8).toArray(JAVA_BYTE);
                    assertArrayEquals(realBytes, lessonBytes, "argument " + i + " = " + args[i]);
                }
            }
            assertThrows(IllegalArgumentException.class, () -> KernelParams.pack(arena, 1.0)); // a double: no
            assertThrows(IllegalArgumentException.class, () -> KernelParams.pack(arena, 1, null));
            MemorySegment vectorAdd =
                    KernelParams.pack(arena, 0x7f00_1234_5678L, 0x7f00_1234_9000L, 0x7f00_1234_a000L, 1000);
            System.out.printf(
                    "vector_add(c, a, b, n=1000): void*[4] of %d bytes -> slots of 8 bytes; n's slot = %s%n",
                    vectorAdd.byteSize(),
                    hex(vectorAdd.getAtIndex(ADDRESS, 3).reinterpret(8).toArray(JAVA_BYTE)));
        }
    }

    static String hex(byte[] bytes) {
        var s = new StringBuilder();
        for (byte b : bytes) s.append(String.format("%02x ", b));
        return s.toString().trim();
    }

    @Test
    void geometryEqualsLaunch() {
        long[] sizes = {
            0, 1, 31, 32, 33, 511, 512, 513, 1000, 12_345, 1 << 20, 4L * 64 * 768, 16L * 1024 * 3072, 50304L * 768
        };
        for (int block : new int[] {128, 256, 512, 1024}) {
            for (long n : sizes) {
                assertEquals(
                        Launch.gridStride(n, block).x(),
                        Geometry.gridStrideBlocks(n, block),
                        "gridStride n=" + n + " block=" + block);
                long threads = (long) Geometry.blocksFor(n, block) * block;
                assertTrue(
                        threads >= n && (threads - n < block || n == 0), "blocksFor n=" + n); // covers n, no idle block
            }
            for (long rows : new long[] {1, 7, 8, 9, 4 * 64, 16 * 1024, 16L * 12 * 1024})
                assertEquals(
                        Launch.warpPerRow(rows, block).x(),
                        Geometry.warpPerRowBlocks(rows, block),
                        "warpPerRow rows=" + rows);
        }
        long gelu = 16L * 1024 * 4 * 768; // d12, B=16, T=1024: the MLP's 4C activations
        System.out.printf(
                "grids: vector_add n=1000 -> %d blocks of 256; GELU over %,d elements -> %d blocks of 512 "
                        + "(capped, %.1f elements per thread); LayerNorm B*T=16384 rows -> %d blocks of 256%n",
                Geometry.blocksFor(1000, 256),
                gelu,
                Geometry.gridStrideBlocks(gelu, 512),
                (double) gelu / (512L * Geometry.gridStrideBlocks(gelu, 512)),
                Geometry.warpPerRowBlocks(16 * 1024, 256));
    }

    @Test
    void linearForwardIsTheCallCublasLtMakes() {
        var random = new Random(16);
        for (int[] shape : new int[][] {{5, 7, 3}, {64, 768, 2304}, {1, 1, 1}, {8, 3072, 768}}) {
            int rows = shape[0], in = shape[1], out = shape[2];
            ColumnMajorLinear.Call lesson = ColumnMajorLinear.linearForward(rows, in, out);
            CublasLt.Gemm real = CublasLt.linearForward(rows, in, out);
            String what = rows + "x" + in + " -> " + out;
            assertEquals(real.opFirst(), lesson.opFirst(), what);
            assertEquals(real.opSecond(), lesson.opSecond(), what);
            assertEquals(List.of(real.m(), real.n(), real.k()), List.of(lesson.m(), lesson.n(), lesson.k()), what);
            assertEquals(
                    List.of(real.ldFirst(), real.ldSecond(), real.ldD()),
                    List.of(lesson.ldFirst(), lesson.ldSecond(), lesson.ldD()),
                    what);
        }
        // and it computes the right thing: column-major D with first = W, second = inp is row-major inp W^T + bias
        int rows = 5, in = 7, out = 3;
        float[] inp = floats(random, rows * in), weight = floats(random, out * in), bias = floats(random, out);
        float[] d = ColumnMajorLinear.run(ColumnMajorLinear.linearForward(rows, in, out), weight, inp, bias);
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double expected = bias[o];
                for (int i = 0; i < in; i++) expected += (double) inp[r * in + i] * weight[o * in + i];
                assertEquals(expected, d[r * out + o], 1e-5, "out[" + r + "," + o + "]");
            }
        var qkv = ColumnMajorLinear.linearForward(16 * 1024, 768, 3 * 768);
        System.out.println("cuBLASLt call for the QKV matmul (B*T=16384, 768 -> 2304): " + qkv);
    }

    /**
     * ColumnMajorLinear.run is cuBLAS's definition, for all four op pairs: D(m x n) = op(A)(m x k) · op(B)(k x n),
     * each matrix column-major (element (r, c) at c * ld + r), op = N as stored, T transposed; leading dimensions
     * larger than the rows are skipped over.
     */
    @Test
    void runIsCublasDefinitionForEveryOpPair() {
        var random = new Random(161);
        int m = 3, n = 4, k = 5;
        double[][] opA = new double[m][k], opB = new double[k][n]; // the matrices the product uses
        for (double[] row : opA) for (int c = 0; c < k; c++) row[c] = random.nextInt(9) - 4;
        for (double[] row : opB) for (int c = 0; c < n; c++) row[c] = random.nextInt(9) - 4;
        for (int opFirst : new int[] {ColumnMajorLinear.OP_N, ColumnMajorLinear.OP_T})
            for (int opSecond : new int[] {ColumnMajorLinear.OP_N, ColumnMajorLinear.OP_T}) {
                // stored: op N keeps A (m x k) as is; op T stores Aᵀ (k x m). Padded leading dimensions (+2).
                int ldA = (opFirst == ColumnMajorLinear.OP_N ? m : k) + 2;
                int ldB = (opSecond == ColumnMajorLinear.OP_N ? k : n) + 2;
                float[] a = columnMajor(opFirst == ColumnMajorLinear.OP_N ? opA : transpose(opA), ldA);
                float[] b = columnMajor(opSecond == ColumnMajorLinear.OP_N ? opB : transpose(opB), ldB);
                var call = new ColumnMajorLinear.Call(opFirst, opSecond, m, n, k, ldA, ldB, m);
                float[] d = ColumnMajorLinear.run(call, a, b, null);
                for (int r = 0; r < m; r++)
                    for (int c = 0; c < n; c++) {
                        double expected = 0;
                        for (int i = 0; i < k; i++) expected += opA[r][i] * opB[i][c];
                        assertEquals(
                                expected,
                                d[c * m + r],
                                0,
                                "op " + opFirst + "," + opSecond + " D(" + r + "," + c + ")");
                    }
            }
    }

    static double[][] transpose(double[][] x) {
        double[][] t = new double[x[0].length][x.length];
        for (int r = 0; r < x.length; r++) for (int c = 0; c < x[0].length; c++) t[c][r] = x[r][c];
        return t;
    }

    /** x (rows x cols) column-major with leading dimension ld >= rows: element (r, c) at c * ld + r. */
    static float[] columnMajor(double[][] x, int ld) {
        float[] out = new float[ld * x[0].length];
        for (int r = 0; r < x.length; r++) for (int c = 0; c < x[0].length; c++) out[c * ld + r] = (float) x[r][c];
        return out;
    }

    static float[] floats(Random random, int n) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float) random.nextGaussian();
        return a;
    }

    @Test
    void aMissingLibraryGivesAClearError() {
        var e = assertThrows(LlmcException.class, () -> TinyCuda.load("/nowhere/libcuda.so.1"));
        assertTrue(e.getMessage().startsWith("no CUDA driver: cannot load /nowhere/libcuda.so.1 ("), e.getMessage());
        assertTrue(e.getMessage().contains("no GPU or no driver"), e.getMessage());
    }

    @Test
    void withoutADriverLibcudaFailsClearly() {
        assumeFalse(libcudaLoads(), "a libcuda.so.1 is installed here: nothing to check");
        var lesson = assertThrows(LlmcException.class, () -> TinyCuda.load("libcuda.so.1"));
        assertTrue(lesson.getMessage().startsWith("no CUDA driver: cannot load libcuda.so.1 ("), lesson.getMessage());
        var real = assertThrows(LlmcException.class, CudaDriver::get);
        assertTrue(
                real.getMessage().startsWith("no CUDA driver (libcuda.so.1) found: tried libcuda.so.1"),
                real.getMessage());
        System.out.println("lesson: " + lesson.getMessage());
        System.out.println("gpt2-cuda: " + real.getMessage());
    }

    static boolean libcudaLoads() {
        try {
            SymbolLookup.libraryLookup("libcuda.so.1", Arena.ofAuto());
            return true;
        } catch (IllegalArgumentException e) {
            return false;
        }
    }

    @Test
    void nvccBuildsAFatbinThatNamesTheKernel(@TempDir Path dir) throws Exception {
        byte[] image = compileVectorAdd(dir, 80);
        assertTrue(Fatbins.isFatbin(image), "magic");
        assertTrue(Fatbins.mentions(image, "vector_add"), "the kernel's name is in the image");
        System.out.printf(
                "nvcc -fatbin vector_add.cu (sm_80 SASS + compute_80 PTX): %,d bytes, starts %s%n",
                image.length, hex(Arrays.copyOf(image, 4)));
    }

    /** The checks the lesson makes on an image without nvcc: the magic's byte order, and a name found anywhere. */
    @Test
    void fatbinMagicAndKernelNames() {
        byte[] magic = {0x50, (byte) 0xED, 0x55, (byte) 0xBA};
        assertTrue(Fatbins.isFatbin(magic), "the 4 bytes alone");
        assertTrue(Fatbins.isFatbin(Arrays.copyOf(magic, 64)));
        assertTrue(!Fatbins.isFatbin(new byte[] {(byte) 0xBA, 0x55, (byte) 0xED, 0x50}), "big-endian: not a fatbin");
        assertTrue(!Fatbins.isFatbin(Arrays.copyOf(magic, 3)), "too short to hold the magic");
        assertTrue(!Fatbins.isFatbin(new byte[] {0x7f, 'E', 'L', 'F'}), "a bare ELF file (a cubin) is not a fatbin");

        byte[] image = "\0\0vector_add\0gelu_forward_bf16".getBytes(StandardCharsets.US_ASCII);
        assertTrue(Fatbins.mentions(image, "vector_add"), "in the middle");
        assertTrue(Fatbins.mentions(image, "gelu_forward_bf16"), "at the very end");
        assertTrue(Fatbins.mentions("vector_add".getBytes(StandardCharsets.US_ASCII), "vector_add"), "the whole image");
        assertTrue(!Fatbins.mentions(image, "gelu_forward_bf16x"), "longer than what is left");
        assertTrue(!Fatbins.mentions(image, "vector_sub"), "a different name of the same length");
        assertTrue(!Fatbins.mentions(new byte[0], "vector_add"), "an empty image");
    }

    /** nvcc is looked for where gpt2-cuda/build-kernels.sh looks, in the same order; the first executable wins. */
    @Test
    void nvccIsFoundWhereTheBuildLooks(@TempDir Path dir) throws IOException {
        assertEquals(
                List.of(
                        Path.of("/a/nvcc"),
                        Path.of("/b/bin/nvcc"),
                        Path.of("/opt/cuda/bin/nvcc"),
                        Path.of("/usr/local/cuda/bin/nvcc")),
                Fatbins.nvccPlaces("/a::/b/bin", "/opt/cuda"),
                "PATH's entries (an empty one skipped), then $CUDA_HOME/bin, then /usr/local/cuda/bin");
        assertEquals(List.of(Path.of("/usr/local/cuda/bin/nvcc")), Fatbins.nvccPlaces(null, " "), "neither set");
        // findNvcc on this machine returns the first of those places that holds an executable nvcc
        var first = Fatbins.nvccPlaces(System.getenv("PATH"), System.getenv("CUDA_HOME")).stream()
                .filter(Files::isExecutable)
                .findFirst();
        assertEquals(first, Fatbins.findNvcc());
    }

    /** vector_add.cu through nvcc: SASS for each compute capability, PTX for the last; skips without nvcc. */
    static byte[] compileVectorAdd(Path dir, int... computeCapabilities) throws IOException, InterruptedException {
        var nvcc = Fatbins.findNvcc();
        assumeTrue(nvcc.isPresent(), "no nvcc (PATH, $CUDA_HOME/bin, /usr/local/cuda/bin): cannot build the fatbin");
        Path fatbin = dir.resolve("vector_add.fatbin");
        var command = Fatbins.nvccCommand(nvcc.get().toString(), VECTOR_ADD, fatbin, computeCapabilities);
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(120, TimeUnit.SECONDS), "nvcc timed out");
        assertEquals(0, process.exitValue(), String.join(" ", command) + "\n" + output);
        return Files.readAllBytes(fatbin);
    }

    @Test
    void theRealFatbinListsItsKernels() throws IOException {
        assumeTrue(
                KernelModule.fatbinPresent(),
                "gpt2-cuda's kernels.fatbin is not on the class path (built without nvcc)");
        var names = KernelModule.exportedNames();
        assertTrue(names.contains("gelu_forward_bf16"), "kernels.txt lists gelu_forward_bf16");
        assertTrue(names.contains("adamw_update_f32"), "kernels.txt lists adamw_update_f32");
        byte[] image;
        try (InputStream in = KernelModule.class.getResourceAsStream("kernels.fatbin")) {
            image = in.readAllBytes();
        }
        assertTrue(Fatbins.isFatbin(image), "magic");
        System.out.printf(
                "gpt2-cuda kernels.fatbin: %,d bytes, %d kernels in kernels.txt, gelu_forward_bf16 %s%n",
                image.length,
                names.size(),
                Fatbins.mentions(image, "gelu_forward_bf16") ? "found in the image" : "not visible (compressed image)");
    }

    /**
     * The whole of TinyCuda.vectorAdd, every binding and the void** included, against a stand-in libcuda written
     * in C (src/test/c/step16/fake_libcuda.c): its cuLaunchKernel reads the arguments through kernelParams as the
     * driver does and runs vector_add on the CPU. Needs a C compiler; skips without one.
     */
    @Test
    void vectorAddThroughAStandInDriver(@TempDir Path dir) throws Exception {
        Path library = compileStandInDriver(dir);
        TinyCuda cuda = TinyCuda.load(library.toString());
        var live = StandIn.bind(library);
        long[] before = live.held();
        byte[] image = {0x50, (byte) 0xED, 0x55, (byte) 0xBA, 1, 0, 0x10, 0}; // the stand-in checks the magic only
        var random = new Random(16);
        for (int n : new int[] {1, 255, 256, 257, 1000}) { // ragged: the last block sticks out
            float[] a = floats(random, n), b = floats(random, n);
            float[] c = cuda.vectorAdd(image, a, b);
            for (int i = 0; i < n; i++) assertEquals(a[i] + b[i], c[i], "n=" + n + " c[" + i + "]");
        }
        // every cuMemAlloc has its cuMemFree, the module is unloaded, the primary context released
        assertArrayEquals(before, live.held(), "device allocations, modules, retained contexts still held");
        // a CUresult comes back as an exception naming the call and the error
        var e = assertThrows(
                LlmcException.class, () -> cuda.vectorAdd(new byte[] {1, 2, 3, 4}, new float[] {1}, new float[] {2}));
        assertEquals("cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE", e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> cuda.vectorAdd(image, new float[0], new float[0]));
        assertThrows(IllegalArgumentException.class, () -> cuda.vectorAdd(image, new float[2], new float[3]));
        System.out.println("stand-in libcuda: vector_add for n = 1, 255, 256, 257, 1000 equal to a + b; a bad image: "
                + e.getMessage());
    }

    /**
     * Every driver call's CUresult is checked: the stand-in makes each call of vectorAdd fail in turn, and each
     * failure must come back as an exception that names that call and the error (a CUresult the driver has no
     * name for, as its number). A call whose result were ignored would run on with a half-made context, module or
     * buffer; the last one, cuCtxSynchronize, is where a kernel's own fault (an illegal address) shows up.
     */
    @Test
    void everyDriverCallIsChecked(@TempDir Path dir) throws Exception {
        Path library = compileStandInDriver(dir);
        var standIn = StandIn.bind(library);
        standIn.failNext("cuInit", 3, 0);
        var init = assertThrows(LlmcException.class, () -> TinyCuda.load(library.toString()));
        assertEquals("cuInit failed: CUDA_ERROR_NOT_INITIALIZED", init.getMessage());

        TinyCuda cuda = TinyCuda.load(library.toString());
        byte[] image = {0x50, (byte) 0xED, 0x55, (byte) 0xBA};
        float[] a = {1, 2, 3}, b = {4, 5, 6};
        // in the order vectorAdd makes them; the error is one the real driver can return there
        Object[][] failures = {
            {"cuDeviceGet", 101, "CUresult 101"}, // CUDA_ERROR_INVALID_DEVICE: a code the stand-in cannot name
            {"cuDevicePrimaryCtxRetain", 2, "CUDA_ERROR_OUT_OF_MEMORY"},
            {"cuCtxSetCurrent", 201, "CUDA_ERROR_INVALID_CONTEXT"},
            {"cuModuleLoadData", 200, "CUDA_ERROR_INVALID_IMAGE"},
            {"cuModuleGetFunction", 500, "CUDA_ERROR_NOT_FOUND"},
            {"cuMemAlloc_v2", 2, "CUDA_ERROR_OUT_OF_MEMORY"},
            {"cuMemcpyHtoD_v2", 1, "CUDA_ERROR_INVALID_VALUE"}, // a's copy
            {"cuMemcpyHtoD_v2", 1, "CUDA_ERROR_INVALID_VALUE", 1}, // b's: one call later
            {"cuLaunchKernel", 1, "CUDA_ERROR_INVALID_VALUE"},
            {"cuCtxSynchronize", 700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
            {"cuMemcpyDtoH_v2", 700, "CUDA_ERROR_ILLEGAL_ADDRESS"},
            {"cuMemFree_v2", 1, "CUDA_ERROR_INVALID_VALUE"},
            {"cuModuleUnload", 1, "CUDA_ERROR_INVALID_VALUE"},
            {"cuDevicePrimaryCtxRelease_v2", 201, "CUDA_ERROR_INVALID_CONTEXT"},
        };
        String allocFailure = "";
        for (Object[] failure : failures) {
            String call = (String) failure[0];
            standIn.failNext(call, (int) failure[1], failure.length > 3 ? (int) failure[3] : 0);
            var e = assertThrows(LlmcException.class, () -> cuda.vectorAdd(image, a, b), call + " failed silently");
            if (call.equals("cuMemAlloc_v2")) allocFailure = e.getMessage();
            String callAsNamed = call.replaceFirst("_v2$", "");
            assertTrue(
                    e.getMessage().matches(Pattern.quote(callAsNamed) + "(_v2)?(\\(.*\\))? failed: " + failure[2]),
                    call + ": " + e.getMessage());
        }
        assertArrayEquals(new float[] {5, 7, 9}, cuda.vectorAdd(image, a, b), "the driver works again");
        System.out.printf(
                "stand-in libcuda: vectorAdd's driver calls failing one at a time (%d cases) -> an exception naming the call, e.g. %s%n",
                failures.length, allocFailure);

        // a library that is not the driver: the first missing symbol is named
        var notADriver = assertThrows(LlmcException.class, () -> TinyCuda.load("libc.so.6"));
        assertEquals("the CUDA driver has no cuInit: it is too old, update it", notADriver.getMessage());
    }

    /** The stand-in's test hooks, which the real driver does not have; the same library TinyCuda loaded. */
    record StandIn(MethodHandle failNext, MethodHandle live) {
        @SuppressWarnings("restricted")
        static StandIn bind(Path library) {
            var lookup = SymbolLookup.libraryLookup(library, Arena.global()); // dlopen again: the same library
            var linker = Linker.nativeLinker();
            return new StandIn(
                    linker.downcallHandle(
                            lookup.find("fake_fail_next").orElseThrow(),
                            FunctionDescriptor.ofVoid(ADDRESS, JAVA_INT, JAVA_INT)),
                    linker.downcallHandle(
                            lookup.find("fake_live").orElseThrow(), FunctionDescriptor.of(JAVA_LONG, JAVA_INT)));
        }

        /** The call named {@code call} after {@code skip} more that succeed returns {@code result}. */
        void failNext(String call, int result, int skip) {
            try (Arena arena = Arena.ofConfined()) {
                failNext.invokeExact(arena.allocateFrom(call), result, skip);
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }

        /** Device allocations, loaded modules and retained primary contexts the stand-in still holds. */
        long[] held() {
            try {
                return new long[] {(long) live.invokeExact(0), (long) live.invokeExact(1), (long) live.invokeExact(2)};
            } catch (Throwable t) {
                throw new IllegalStateException(t);
            }
        }
    }

    /** Builds src/test/c/step16/fake_libcuda.c into dir with the C compiler on PATH; skips the test without one. */
    static Path compileStandInDriver(Path dir) throws IOException, InterruptedException {
        var compiler = Stream.of("cc", "gcc", "clang")
                .flatMap(name -> Stream.of(
                                System.getenv().getOrDefault("PATH", "").split(":"))
                        .map(d -> Path.of(d, name)))
                .filter(Files::isExecutable)
                .findFirst();
        assumeTrue(compiler.isPresent(), "no C compiler (cc, gcc, clang) on PATH: cannot build the stand-in libcuda");
        Path library = dir.resolve("libcuda_fake.so");
        var command = List.of(
                compiler.get().toString(),
                "-shared",
                "-fPIC",
                "-O1",
                "-o",
                library.toString(),
                FAKE_LIBCUDA.toString());
        Process process = new ProcessBuilder(command).redirectErrorStream(true).start();
        String output = new String(process.getInputStream().readAllBytes());
        assertTrue(process.waitFor(60, TimeUnit.SECONDS), "cc timed out");
        assertEquals(0, process.exitValue(), String.join(" ", command) + "\n" + output);
        return library;
    }

    @Tag("gpu")
    @Test
    void onAGpuVectorAddRuns(@TempDir Path dir) throws Exception {
        TinyCuda cuda;
        try {
            cuda = TinyCuda.load("libcuda.so.1");
        } catch (LlmcException e) {
            assumeTrue(false, "no CUDA device: " + e.getMessage());
            return;
        }
        byte[] fatbin = compileVectorAdd(dir, 80, 90); // SASS for A100 and H100, PTX for later GPUs
        var random = new Random(16);
        float[] a = floats(random, 1000), b = floats(random, 1000);
        float[] c = cuda.vectorAdd(fatbin, a, b);
        for (int i = 0; i < a.length; i++) assertEquals(a[i] + b[i], c[i], "c[" + i + "]"); // one fp32 add: exact
        System.out.println("vector_add on the GPU: 1000 sums equal the CPU's bit for bit");
    }
}
