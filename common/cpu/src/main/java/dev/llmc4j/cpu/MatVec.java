package dev.llmc4j.cpu;

import dev.llmc4j.format.BFloat16;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * One token through a Linear layer, as generation with a KV cache runs it: {@code out (OC) = weight (OC, C) · x (C)
 * + bias (OC)}. Each weight is used for one multiply-add and never again in that token, so this product does not
 * wait on arithmetic but on memory: a token of GPT-2 124M reads 498 MB of fp32 weights, and the best a machine
 * can do is its read bandwidth divided by those bytes. The fast version therefore streams each weight row once,
 * start to end, four rows at a time (four streams the prefetcher follows, one load of x for four of them), with
 * the threads of {@link Parallel} each owning a contiguous range of output rows.
 *
 * <p>Weights come in two precisions ({@link Weights}): fp32, the model's own floats, or bf16, a rounded copy at
 * half the bytes and so up to twice the tokens per second. bf16 is read two values at a time as one int: on a
 * little-endian int the odd element is the upper half, which already is that value as a float once the lower
 * half is masked off, and the even element becomes a float by shifting it up. Multiplying those by x's odd and
 * even elements (split once per call) needs no conversion instructions at all.
 *
 * <p>{@link #forwardBaseline} is the plain loop the fast version, {@link #forward}, is tested against.
 */
public final class MatVec {
    private MatVec() {}

    private static final VectorSpecies<Float> S = VectorMath.SPECIES;
    private static final VectorSpecies<Integer> I = S.withLanes(int.class);
    private static final int W = S.length();
    private static final int ROWS = 4; // rows per pass: four independent sums, one x load for four weight loads
    private static final ByteOrder ORDER = ByteOrder.LITTLE_ENDIAN; // bf16 copies are written little-endian too
    private static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT;
    private static final ValueLayout.OfShort BF16 = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ORDER);

    /** How generation keeps a weight matrix: the model's fp32 floats, or bf16 at half the bytes. */
    public enum Precision {
        FP32(Float.BYTES),
        BF16(Short.BYTES);

        private final int bytes;

        Precision(int bytes) {
            this.bytes = bytes;
        }

        /** Bytes per weight. */
        public int bytes() {
            return bytes;
        }
    }

    /**
     * A weight matrix (rows, cols), row-major: native-order floats (FP32) or little-endian bf16 bit patterns (BF16).
     */
    public record Weights(MemorySegment data, Precision precision, int rows, int cols) {
        public Weights {
            if (data.byteSize() < (long) rows * cols * precision.bytes())
                throw new IllegalArgumentException("weights (%d, %d) in %s need %d bytes, found %d"
                        .formatted(rows, cols, precision, (long) rows * cols * precision.bytes(), data.byteSize()));
        }

        /** The model's own floats (no copy): {@code floats} holds at least rows x cols of them. */
        public static Weights fp32(MemorySegment floats, int rows, int cols) {
            return new Weights(floats, Precision.FP32, rows, cols);
        }

        /** A bf16 copy of rows x cols floats, each rounded to nearest (ties to even), allocated in {@code arena}. */
        public static Weights bf16(Arena arena, MemorySegment floats, int rows, int cols) {
            long count = (long) rows * cols;
            MemorySegment copy = arena.allocate(count * Short.BYTES, 64);
            Parallel.forRange(count, (start, end) -> {
                for (long i = start; i < end; i++)
                    copy.setAtIndex(BF16, i, BFloat16.fromFloat(floats.getAtIndex(FLOAT, i)));
            });
            return new Weights(copy, Precision.BF16, rows, cols);
        }

        /** {@link #fp32} or {@link #bf16}, as {@code precision} says. */
        public static Weights of(Precision precision, Arena arena, MemorySegment floats, int rows, int cols) {
            return precision == Precision.FP32 ? fp32(floats, rows, cols) : bf16(arena, floats, rows, cols);
        }

        /** The bytes one product reads: every weight once. */
        public long bytes() {
            return (long) rows * cols * precision.bytes();
        }

        /** Weight [row, col] as a float (exact for both precisions). */
        public float get(long row, long col) {
            long i = row * cols + col;
            return precision == Precision.FP32 ? data.getAtIndex(FLOAT, i) : BFloat16.toFloat(data.getAtIndex(BF16, i));
        }
    }

    /** out (OC) = weight (OC, C) · x (C) + bias (OC, or null): the fast version. */
    public static void forward(MemorySegment out, MemorySegment x, Weights weight, MemorySegment bias) {
        int C = weight.cols();
        if (weight.precision() == Precision.FP32) {
            Parallel.forRange(weight.rows(), ROWS, (start, end) -> rowsFp32(out, x, weight, bias, start, end));
        } else {
            // x split into its even and odd elements (C/2 each), matching the two halves of a bf16 pair
            var even = new float[C / 2];
            var odd = new float[C / 2];
            for (int j = 0; j < C / 2; j++) {
                even[j] = x.getAtIndex(FLOAT, 2L * j);
                odd[j] = x.getAtIndex(FLOAT, 2L * j + 1);
            }
            Parallel.forRange(
                    weight.rows(), ROWS, (start, end) -> rowsBf16(out, x, even, odd, weight, bias, start, end));
        }
    }

    /** The plain loop: one dot product per output row, in order. */
    public static void forwardBaseline(MemorySegment out, MemorySegment x, Weights weight, MemorySegment bias) {
        int C = weight.cols();
        for (long o = 0; o < weight.rows(); o++) {
            float sum = bias == null ? 0 : bias.getAtIndex(FLOAT, o);
            for (int i = 0; i < C; i++) sum += weight.get(o, i) * x.getAtIndex(FLOAT, i);
            out.setAtIndex(FLOAT, o, sum);
        }
    }

    // rows [start, end) of an fp32 matrix: four rows per call of fourRowsFp32, then one at a time. A small method per
    // four rows is called thousands of times per token, so the JIT compiles it within the first token; one call per
    // thread per matrix would run interpreted until the JIT replaced it mid-loop
    private static void rowsFp32(
            MemorySegment out, MemorySegment x, Weights weight, MemorySegment bias, long start, long end) {
        MemorySegment w = weight.data();
        int C = weight.cols(), full = C - C % W;
        long rowBytes = (long) C * Float.BYTES;
        long o = start;
        for (; o + ROWS <= end; o += ROWS) fourRowsFp32(out, x, w, bias, o, C, full);
        for (; o < end; o++) {
            long r = o * rowBytes;
            var s = FloatVector.zero(S);
            for (int i = 0; i < full; i += W) {
                long at = (long) i * Float.BYTES;
                s = FloatVector.fromMemorySegment(S, w, r + at, ByteOrder.nativeOrder())
                        .fma(FloatVector.fromMemorySegment(S, x, at, ByteOrder.nativeOrder()), s);
            }
            store(out, bias, o, s.reduceLanes(VectorOperators.ADD) + tailFp32(w, o, x, full, C));
        }
    }

    // out[o..o+3] = rows o..o+3 · x (+ bias); columns past the last whole vector are added one by one
    private static void fourRowsFp32(
            MemorySegment out, MemorySegment x, MemorySegment w, MemorySegment bias, long o, int C, int full) {
        long rowBytes = (long) C * Float.BYTES;
        // one slice per row, made before the loop: their sizes are loop-invariant, so the JIT can drop the
        // bounds check of every load inside it
        MemorySegment w0 = w.asSlice(o * rowBytes, rowBytes), w1 = w.asSlice((o + 1) * rowBytes, rowBytes);
        MemorySegment w2 = w.asSlice((o + 2) * rowBytes, rowBytes), w3 = w.asSlice((o + 3) * rowBytes, rowBytes);
        MemorySegment xs = x.asSlice(0, rowBytes);
        var s0 = FloatVector.zero(S);
        var s1 = s0;
        var s2 = s0;
        var s3 = s0;
        for (int i = 0; i < full; i += W) {
            long at = (long) i * Float.BYTES;
            var xv = FloatVector.fromMemorySegment(S, xs, at, ByteOrder.nativeOrder());
            s0 = FloatVector.fromMemorySegment(S, w0, at, ByteOrder.nativeOrder())
                    .fma(xv, s0);
            s1 = FloatVector.fromMemorySegment(S, w1, at, ByteOrder.nativeOrder())
                    .fma(xv, s1);
            s2 = FloatVector.fromMemorySegment(S, w2, at, ByteOrder.nativeOrder())
                    .fma(xv, s2);
            s3 = FloatVector.fromMemorySegment(S, w3, at, ByteOrder.nativeOrder())
                    .fma(xv, s3);
        }
        store(out, bias, o, s0.reduceLanes(VectorOperators.ADD) + tailFp32(w, o, x, full, C));
        store(out, bias, o + 1, s1.reduceLanes(VectorOperators.ADD) + tailFp32(w, o + 1, x, full, C));
        store(out, bias, o + 2, s2.reduceLanes(VectorOperators.ADD) + tailFp32(w, o + 2, x, full, C));
        store(out, bias, o + 3, s3.reduceLanes(VectorOperators.ADD) + tailFp32(w, o + 3, x, full, C));
    }

    private static float tailFp32(MemorySegment w, long row, MemorySegment x, int from, int C) {
        float sum = 0;
        for (int i = from; i < C; i++) sum += w.getAtIndex(FLOAT, row * C + i) * x.getAtIndex(FLOAT, i);
        return sum;
    }

    // rows [start, end) of a bf16 matrix, W pairs (2W weights) per vector (see the class comment), four rows per call
    // of fourRowsBf16 as for fp32
    private static void rowsBf16(
            MemorySegment out,
            MemorySegment x,
            float[] even,
            float[] odd,
            Weights weight,
            MemorySegment bias,
            long start,
            long end) {
        MemorySegment w = weight.data();
        int C = weight.cols(), pairs = C / 2, full = pairs - pairs % W;
        long rowBytes = (long) C * Short.BYTES;
        long o = start;
        for (; o + ROWS <= end; o += ROWS) fourRowsBf16(out, x, even, odd, w, bias, o, C, full);
        for (; o < end; o++) {
            long r = o * rowBytes;
            var s = FloatVector.zero(S);
            for (int j = 0; j < full; j += W) {
                var p = IntVector.fromMemorySegment(I, w, r + (long) j * Integer.BYTES, ORDER);
                s = lower(p).fma(FloatVector.fromArray(S, even, j), upper(p).fma(FloatVector.fromArray(S, odd, j), s));
            }
            store(out, bias, o, s.reduceLanes(VectorOperators.ADD) + tailBf16(w, o, x, 2 * full, C));
        }
    }

    private static void fourRowsBf16(
            MemorySegment out,
            MemorySegment x,
            float[] even,
            float[] odd,
            MemorySegment w,
            MemorySegment bias,
            long o,
            int C,
            int full) {
        long rowBytes = (long) C * Short.BYTES;
        long r0 = o * rowBytes, r1 = r0 + rowBytes, r2 = r1 + rowBytes, r3 = r2 + rowBytes;
        // two sums per row, even and odd elements: 8 independent FMA chains (one chain per row would wait on the
        // FMA before it twice per step)
        var e0 = FloatVector.zero(S);
        var e1 = e0;
        var e2 = e0;
        var e3 = e0;
        var o0 = e0;
        var o1 = e0;
        var o2 = e0;
        var o3 = e0;
        for (int j = 0; j < full; j += W) {
            long at = (long) j * Integer.BYTES;
            var xe = FloatVector.fromArray(S, even, j);
            var xo = FloatVector.fromArray(S, odd, j);
            var p0 = IntVector.fromMemorySegment(I, w, r0 + at, ORDER);
            var p1 = IntVector.fromMemorySegment(I, w, r1 + at, ORDER);
            var p2 = IntVector.fromMemorySegment(I, w, r2 + at, ORDER);
            var p3 = IntVector.fromMemorySegment(I, w, r3 + at, ORDER);
            e0 = lower(p0).fma(xe, e0);
            o0 = upper(p0).fma(xo, o0);
            e1 = lower(p1).fma(xe, e1);
            o1 = upper(p1).fma(xo, o1);
            e2 = lower(p2).fma(xe, e2);
            o2 = upper(p2).fma(xo, o2);
            e3 = lower(p3).fma(xe, e3);
            o3 = upper(p3).fma(xo, o3);
        }
        int done = 2 * full;
        store(out, bias, o, e0.add(o0).reduceLanes(VectorOperators.ADD) + tailBf16(w, o, x, done, C));
        store(out, bias, o + 1, e1.add(o1).reduceLanes(VectorOperators.ADD) + tailBf16(w, o + 1, x, done, C));
        store(out, bias, o + 2, e2.add(o2).reduceLanes(VectorOperators.ADD) + tailBf16(w, o + 2, x, done, C));
        store(out, bias, o + 3, e3.add(o3).reduceLanes(VectorOperators.ADD) + tailBf16(w, o + 3, x, done, C));
    }

    /** The even elements of W bf16 pairs as floats: the lower halves shifted into the upper. */
    private static FloatVector lower(IntVector pairs) {
        return pairs.lanewise(VectorOperators.LSHL, 16).reinterpretAsFloats();
    }

    /** The odd elements of W bf16 pairs as floats: the upper halves, lower bits cleared. */
    private static FloatVector upper(IntVector pairs) {
        return pairs.lanewise(VectorOperators.AND, 0xFFFF0000).reinterpretAsFloats();
    }

    private static float tailBf16(MemorySegment w, long row, MemorySegment x, int from, int C) {
        float sum = 0;
        for (int i = from; i < C; i++)
            sum += BFloat16.toFloat(w.getAtIndex(BF16, row * C + i)) * x.getAtIndex(FLOAT, i);
        return sum;
    }

    private static void store(MemorySegment out, MemorySegment bias, long o, float sum) {
        out.setAtIndex(FLOAT, o, bias == null ? sum : sum + bias.getAtIndex(FLOAT, o));
    }
}
