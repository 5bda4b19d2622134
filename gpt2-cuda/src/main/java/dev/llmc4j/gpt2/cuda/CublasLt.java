package dev.llmc4j.gpt2.cuda;

import static java.lang.foreign.ValueLayout.ADDRESS;
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
 * cuBLASLt (libcublasLt.so) through FFM: every matmul of GPT-2, with the bias fused as an epilogue, 16-bit or fp32
 * inputs/outputs and fp32 accumulation, a 32 MiB workspace.
 *
 * <p><b>Row-major on a column-major library.</b> Our tensors are row-major; cuBLAS is column-major. A row-major
 * (r x c) matrix read as column-major is its transpose (c x r). So for row-major D = op(A) op(B) we ask cuBLAS for
 * D^T = op(B)^T op(A)^T: the operands swap places, each keeps its own transpose flag, and every leading dimension
 * is the row-major column count. {@link #rowMajor} does that bookkeeping (tested on the CPU).
 *
 * <p>The library is searched in: {@code -Dllmc.cublaslt=PATH}, {@code $LLMC_CUBLASLT}, the dynamic loader
 * (LD_LIBRARY_PATH, ld cache) for libcublasLt.so.13/.12/.11/.so, then $CUDA_HOME/lib64, /usr/local/cuda/lib64,
 * /usr/lib/x86_64-linux-gnu.
 */
@SuppressWarnings("restricted") // FFM: binding native code is the point of this class
public final class CublasLt implements AutoCloseable {
    // cublasComputeType_t, cudaDataType_t, cublasOperation_t (cublas_api.h, library_types.h)
    static final int COMPUTE_32F = 68;
    static final int COMPUTE_32F_FAST_TF32 = 77;
    static final int CUDA_R_32F = 0;
    static final int OP_N = 0, OP_T = 1;
    // cublasLtMatmulDescAttributes_t
    static final int DESC_TRANSA = 3, DESC_TRANSB = 4, DESC_EPILOGUE = 7, DESC_BIAS_POINTER = 8;
    // cublasLtEpilogue_t
    static final int EPILOGUE_DEFAULT = 1, EPILOGUE_BIAS = 4;
    // cublasLtMatmulPreferenceAttributes_t (uint64_t workspace, uint32_t alignments: default 256 bytes each)
    static final int PREF_MAX_WORKSPACE_BYTES = 1;
    static final int PREF_MIN_ALIGNMENT_A_BYTES = 5,
            PREF_MIN_ALIGNMENT_B_BYTES = 6,
            PREF_MIN_ALIGNMENT_C_BYTES = 7,
            PREF_MIN_ALIGNMENT_D_BYTES = 8;
    /** sizeof(cublasLtMatmulHeuristicResult_t): algo (8 x uint64) + size_t workspaceSize + status + float waves + int[4]. */
    static final int HEURISTIC_RESULT_BYTES = 96;
    /** Offset of the heuristic result's {@code cublasStatus_t state}: after the 64-byte algo and the size_t. */
    static final int HEURISTIC_STATE_OFFSET = 72;
    /** The largest alignment cuBLASLt asks about (its default): an address aligned to more counts as this. */
    static final int MAX_ALIGNMENT = 256;

    public static final long WORKSPACE_BYTES = 32L << 20;

    /**
     * One cuBLASLt call in column-major terms: D (m x n, ld ldd) = op(first) (m x k) * op(second) (k x n).
     * {@code *Rows/*Cols} are the column-major shapes of the stored operands (what the layouts describe).
     */
    public record Gemm(
            int opFirst,
            int opSecond,
            long m,
            long n,
            long k,
            long firstRows,
            long firstCols,
            long ldFirst,
            long secondRows,
            long secondCols,
            long ldSecond,
            long ldD) {}

    /**
     * Row-major D (M x N) = op(A) (M x K) * op(B) (K x N), where A is stored (M x K), or (K x M) if transposeA,
     * and B is stored (K x N), or (N x K) if transposeB. Returns the column-major call: first operand B,
     * second operand A, m = N, n = M.
     */
    public static Gemm rowMajor(boolean transposeA, boolean transposeB, long M, long N, long K) {
        int opB = transposeB ? OP_T : OP_N, opA = transposeA ? OP_T : OP_N;
        long ldB = transposeB ? K : N; // row-major column count of stored B
        long ldA = transposeA ? M : K; // row-major column count of stored A
        // column-major view of stored B: (ldB x rows of stored B)
        long bRows = ldB, bCols = transposeB ? N : K;
        long aRows = ldA, aCols = transposeA ? K : M;
        return new Gemm(opB, opA, N, M, K, bRows, bCols, ldB, aRows, aCols, ldA, N);
    }

    /** out (rows, outCols) = inp (rows, inCols) W^T, W stored (outCols, inCols) like PyTorch's nn.Linear. */
    public static Gemm linearForward(long rows, long inCols, long outCols) {
        return rowMajor(false, true, rows, outCols, inCols);
    }

    /** dinp (rows, inCols) = dout (rows, outCols) W. */
    public static Gemm linearBackwardInput(long rows, long inCols, long outCols) {
        return rowMajor(false, false, rows, inCols, outCols);
    }

    /** dW (outCols, inCols) += dout^T (outCols, rows) inp (rows, inCols). */
    public static Gemm linearBackwardWeight(long rows, long inCols, long outCols) {
        return rowMajor(true, false, outCols, inCols, rows);
    }

    static List<String> libraryCandidates() {
        String override = System.getProperty("llmc.cublaslt");
        if (override == null || override.isBlank()) override = System.getenv("LLMC_CUBLASLT");
        return NativeLibraries.candidates(
                override,
                List.of("libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so.11", "libcublasLt.so"),
                NativeLibraries.cudaLibraryDirectories());
    }

    private static final Linker LINKER = Linker.nativeLinker();

    private final MethodHandle create,
            destroy,
            descCreate,
            descSetAttribute,
            descDestroy,
            layoutCreate,
            layoutDestroy,
            prefCreate,
            prefSetAttribute,
            prefDestroy,
            algoGetHeuristic,
            matmul,
            statusName;
    private final MemorySegment handle;
    private final long workspace;
    private final CudaDriver cuda;
    private final Arena arena = Arena.ofShared(); // descriptors' host memory (alpha/beta, algos)
    private final Map<Key, Prepared> prepared = new HashMap<>();

    /**
     * What an algorithm choice depends on: the shapes, types, epilogue and the operands' alignments. The same gemm
     * on less aligned pointers (d48's per-layer bias slices are 128-byte aligned) needs its own choice.
     */
    private record Key(
            Gemm gemm, int dataType, int computeType, boolean bias, boolean accumulate, Alignments alignments) {}

    /** Alignment in bytes (a power of two, at most 256) of each operand's address; bias 0 when there is none. */
    record Alignments(int first, int second, int d, int bias) {
        static Alignments of(long first, long second, long d, long bias) {
            return new Alignments(alignment(first), alignment(second), alignment(d), bias == 0 ? 0 : alignment(bias));
        }
    }

    /** The largest power of two, at most {@link #MAX_ALIGNMENT}, that divides {@code address} (0 counts as aligned). */
    static int alignment(long address) {
        if (address == 0) return MAX_ALIGNMENT;
        return (int) Math.min(MAX_ALIGNMENT, Long.lowestOneBit(address));
    }

    private record Prepared(
            MemorySegment desc,
            MemorySegment firstLayout,
            MemorySegment secondLayout,
            MemorySegment dLayout,
            MemorySegment algo) {}

    /**
     * Opens libcublasLt, creates a handle and allocates the workspace on the current context.
     *
     * @throws LlmcException "no cuBLASLt (libcublasLt.so) found: ..." when the library is missing
     */
    public CublasLt(CudaDriver cuda) {
        this.cuda = cuda;
        SymbolLookup lib = NativeLibraries.open("cuBLASLt (libcublasLt.so)", libraryCandidates());
        create = bind(lib, "cublasLtCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        destroy = bind(lib, "cublasLtDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        descCreate =
                bind(lib, "cublasLtMatmulDescCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_INT));
        descSetAttribute = bind(
                lib,
                "cublasLtMatmulDescSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        descDestroy = bind(lib, "cublasLtMatmulDescDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        layoutCreate = bind(
                lib,
                "cublasLtMatrixLayoutCreate",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG));
        layoutDestroy = bind(lib, "cublasLtMatrixLayoutDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefCreate = bind(lib, "cublasLtMatmulPreferenceCreate", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        prefSetAttribute = bind(
                lib,
                "cublasLtMatmulPreferenceSetAttribute",
                FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, ADDRESS, JAVA_LONG));
        prefDestroy = bind(lib, "cublasLtMatmulPreferenceDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        algoGetHeuristic = bind(
                lib,
                "cublasLtMatmulAlgoGetHeuristic",
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_INT, ADDRESS,
                        ADDRESS));
        matmul = bind(
                lib,
                "cublasLtMatmul",
                FunctionDescriptor.of(
                        JAVA_INT, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS,
                        ADDRESS, ADDRESS, ADDRESS, ADDRESS, ADDRESS, JAVA_LONG, ADDRESS));
        statusName = bind(lib, "cublasLtGetStatusName", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        MemorySegment h = arena.allocate(ADDRESS);
        try {
            check((int) create.invokeExact(h), "cublasLtCreate");
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
        handle = h.get(ADDRESS, 0);
        workspace = cuda.memAlloc(WORKSPACE_BYTES);
    }

    private static MethodHandle bind(SymbolLookup lib, String name, FunctionDescriptor descriptor) {
        return LINKER.downcallHandle(
                lib.find(name)
                        .orElseThrow(() -> new LlmcException(
                                "cuBLASLt has no " + name + ": the library is too old (need CUDA 11.4+)")),
                descriptor);
    }

    private void check(int status, String call) {
        if (status == 0) return;
        String name = "CUBLAS_STATUS " + status;
        try {
            MemorySegment s = (MemorySegment) statusName.invokeExact(status);
            if (!s.equals(MemorySegment.NULL)) name = s.reinterpret(256).getString(0);
        } catch (Throwable ignored) {
            // keep the numeric name
        }
        throw new CudaException(call, status, name, null);
    }

    /**
     * D = op(first) op(second) [+ bias] (column-major call from {@link #rowMajor}); all pointers are device
     * addresses, bias 0 for none. {@code accumulate} adds into D (beta = 1), as gradients do.
     */
    public void matmul(
            Gemm g,
            Precision precision,
            boolean allowTf32,
            long d,
            long first,
            long second,
            long bias,
            boolean accumulate) {
        int computeType = precision == Precision.FP32 && allowTf32 ? COMPUTE_32F_FAST_TF32 : COMPUTE_32F;
        var key = new Key(
                g, precision.cudaDataType(), computeType, bias != 0, accumulate, Alignments.of(first, second, d, bias));
        Prepared p = prepared.computeIfAbsent(key, k -> prepare(k, bias));
        try (Arena call = Arena.ofConfined()) {
            if (bias != 0) setBiasPointer(p.desc(), bias, call); // this layer's bias, same alignment as prepared
            MemorySegment alpha = call.allocateFrom(JAVA_FLOAT, 1.0f);
            MemorySegment beta = call.allocateFrom(JAVA_FLOAT, accumulate ? 1.0f : 0.0f);
            MemorySegment dPtr = MemorySegment.ofAddress(d);
            int status = (int) matmul.invokeExact(
                    handle,
                    p.desc(),
                    alpha,
                    MemorySegment.ofAddress(first),
                    p.firstLayout(),
                    MemorySegment.ofAddress(second),
                    p.secondLayout(),
                    beta,
                    dPtr,
                    p.dLayout(),
                    dPtr,
                    p.dLayout(),
                    p.algo(),
                    MemorySegment.ofAddress(workspace),
                    WORKSPACE_BYTES,
                    MemorySegment.NULL);
            check(status, "cublasLtMatmul(" + g + ")");
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    /**
     * Creates the descriptors and asks the heuristic for an algorithm, with everything the choice depends on set
     * first: the epilogue's bias pointer (a real one: cuBLASLt may check its alignment) and the operands' actual
     * alignments, so the algorithm chosen can run on the pointers it will get.
     */
    private Prepared prepare(Key key, long bias) {
        Gemm g = key.gemm();
        try (Arena tmp = Arena.ofConfined()) {
            MemorySegment out = tmp.allocate(ADDRESS);
            check((int) descCreate.invokeExact(out, key.computeType(), CUDA_R_32F), "cublasLtMatmulDescCreate");
            MemorySegment desc = out.get(ADDRESS, 0);
            setInt(desc, DESC_TRANSA, g.opFirst(), tmp);
            setInt(desc, DESC_TRANSB, g.opSecond(), tmp);
            setInt(desc, DESC_EPILOGUE, key.bias() ? EPILOGUE_BIAS : EPILOGUE_DEFAULT, tmp);
            if (key.bias()) setBiasPointer(desc, bias, tmp);
            MemorySegment first = layout(key.dataType(), g.firstRows(), g.firstCols(), g.ldFirst(), tmp);
            MemorySegment second = layout(key.dataType(), g.secondRows(), g.secondCols(), g.ldSecond(), tmp);
            MemorySegment dLayout = layout(key.dataType(), g.m(), g.n(), g.ldD(), tmp);

            check((int) prefCreate.invokeExact(out), "cublasLtMatmulPreferenceCreate");
            MemorySegment pref = out.get(ADDRESS, 0);
            MemorySegment ws = tmp.allocateFrom(JAVA_LONG, WORKSPACE_BYTES);
            check(
                    (int) prefSetAttribute.invokeExact(pref, PREF_MAX_WORKSPACE_BYTES, ws, 8L),
                    "cublasLtMatmulPreferenceSetAttribute");
            // cuBLASLt's A is our first operand, B the second; C and D are the same matrix (beta reads D)
            Alignments a = key.alignments();
            setPreference(pref, PREF_MIN_ALIGNMENT_A_BYTES, a.first(), tmp);
            setPreference(pref, PREF_MIN_ALIGNMENT_B_BYTES, a.second(), tmp);
            setPreference(pref, PREF_MIN_ALIGNMENT_C_BYTES, a.d(), tmp);
            setPreference(pref, PREF_MIN_ALIGNMENT_D_BYTES, a.d(), tmp);
            MemorySegment results = arena.allocate(HEURISTIC_RESULT_BYTES, 8);
            MemorySegment count = tmp.allocate(JAVA_INT);
            check(
                    (int) algoGetHeuristic.invokeExact(
                            handle, desc, first, second, dLayout, dLayout, pref, 1, results, count),
                    "cublasLtMatmulAlgoGetHeuristic(" + g + ")");
            check((int) prefDestroy.invokeExact(pref), "cublasLtMatmulPreferenceDestroy");
            if (count.get(JAVA_INT, 0) == 0)
                throw new LlmcException("cuBLASLt has no algorithm for " + g + " with data type " + key.dataType()
                        + " and alignments " + key.alignments());
            check(results.get(JAVA_INT, HEURISTIC_STATE_OFFSET), "cublasLtMatmulAlgoGetHeuristic(" + g + ").state");
            // the algo is the first 64 bytes of the heuristic result; it must outlive this method
            return new Prepared(desc, first, second, dLayout, results.asSlice(0, 64));
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        }
    }

    private void setBiasPointer(MemorySegment desc, long bias, Arena arena) throws Throwable {
        MemorySegment biasPtr = arena.allocate(ADDRESS);
        biasPtr.set(ADDRESS, 0, MemorySegment.ofAddress(bias));
        check(
                (int) descSetAttribute.invokeExact(desc, DESC_BIAS_POINTER, biasPtr, ADDRESS.byteSize()),
                "cublasLtMatmulDescSetAttribute(BIAS_POINTER)");
    }

    private void setPreference(MemorySegment pref, int attribute, int value, Arena tmp) throws Throwable {
        MemorySegment v = tmp.allocateFrom(JAVA_INT, value); // uint32_t
        check(
                (int) prefSetAttribute.invokeExact(pref, attribute, v, 4L),
                "cublasLtMatmulPreferenceSetAttribute(" + attribute + ")");
    }

    private void setInt(MemorySegment desc, int attribute, int value, Arena tmp) throws Throwable {
        MemorySegment v = tmp.allocateFrom(JAVA_INT, value);
        check(
                (int) descSetAttribute.invokeExact(desc, attribute, v, 4L),
                "cublasLtMatmulDescSetAttribute(" + attribute + ")");
    }

    private MemorySegment layout(int dataType, long rows, long cols, long ld, Arena tmp) throws Throwable {
        MemorySegment out = tmp.allocate(ADDRESS);
        check(
                (int) layoutCreate.invokeExact(out, dataType, rows, cols, ld),
                "cublasLtMatrixLayoutCreate(" + rows + "x" + cols + ", ld " + ld + ")");
        return out.get(ADDRESS, 0);
    }

    @Override
    public void close() {
        try {
            for (Prepared p : prepared.values()) {
                check((int) descDestroy.invokeExact(p.desc()), "cublasLtMatmulDescDestroy");
                check((int) layoutDestroy.invokeExact(p.firstLayout()), "cublasLtMatrixLayoutDestroy");
                check((int) layoutDestroy.invokeExact(p.secondLayout()), "cublasLtMatrixLayoutDestroy");
                check((int) layoutDestroy.invokeExact(p.dLayout()), "cublasLtMatrixLayoutDestroy");
            }
            prepared.clear();
            check((int) destroy.invokeExact(handle), "cublasLtDestroy");
        } catch (Throwable t) {
            throw CudaDriver.rethrow(t);
        } finally {
            cuda.memFree(workspace);
            arena.close();
        }
    }
}
