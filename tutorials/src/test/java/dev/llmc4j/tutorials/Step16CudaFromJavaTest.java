package dev.llmc4j.tutorials;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
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
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import java.util.concurrent.TimeUnit;
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

        TinyCuda cuda = TinyCuda.load(library.toString());
        byte[] image = {0x50, (byte) 0xED, 0x55, (byte) 0xBA, 1, 0, 0x10, 0}; // the stand-in checks the magic only
        var random = new Random(16);
        for (int n : new int[] {1, 255, 256, 257, 1000}) { // ragged: the last block sticks out
            float[] a = floats(random, n), b = floats(random, n);
            float[] c = cuda.vectorAdd(image, a, b);
            for (int i = 0; i < n; i++) assertEquals(a[i] + b[i], c[i], "n=" + n + " c[" + i + "]");
        }
        // a CUresult comes back as an exception naming the call and the error
        var e = assertThrows(
                LlmcException.class, () -> cuda.vectorAdd(new byte[] {1, 2, 3, 4}, new float[] {1}, new float[] {2}));
        assertEquals("cuModuleLoadData failed: CUDA_ERROR_INVALID_IMAGE", e.getMessage());
        System.out.println("stand-in libcuda: vector_add for n = 1, 255, 256, 257, 1000 equal to a + b; a bad image: "
                + e.getMessage());
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
