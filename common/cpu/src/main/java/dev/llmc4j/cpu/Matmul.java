package dev.llmc4j.cpu;

import static dev.llmc4j.cpu.Floats.add;
import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import java.lang.foreign.MemorySegment;

/**
 * The matmul of a Linear layer, forward and backward, in two versions behind one interface: {@link #BASELINE},
 * plain loops to read and to test against, and {@link #VECTOR}, the same arithmetic as register tiles of
 * Vector API lanes. Tests assert that both agree to fp32 rounding on ragged shapes.
 *
 * <p>Shapes: inp (BT, C), weight (OC, C) as PyTorch stores a Linear, bias (OC) or null, out (BT, OC).
 */
public interface Matmul {

    /** out = inp · weightᵀ + bias */
    void forward(MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC);

    /**
     * A pass over a block of out, out[bt, o] for btStart <= bt < btEnd and oStart <= o < oEnd, run as soon as the
     * matmul has written it, while it is still in cache: how an activation joins the matmul (llm.c's CUDA side
     * fuses bias and GELU into the matmul's epilogue the same way). Blocks never overlap; threads run their own.
     */
    @FunctionalInterface
    interface Epilogue {
        void apply(long btStart, long btEnd, long oStart, long oEnd);
    }

    /** out = inp · weightᵀ + bias, then epilogue over all of out; a fast version runs it block by block. */
    default void forward(
            MemorySegment out,
            MemorySegment inp,
            MemorySegment weight,
            MemorySegment bias,
            int BT,
            int C,
            int OC,
            Epilogue epilogue) {
        forward(out, inp, weight, bias, BT, C, OC);
        epilogue.apply(0, BT, 0, OC);
    }

    /** dinp += dout · weight; dweight += doutᵀ · inp; dbias += column sums of dout (dbias may be null). */
    default void backward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dbias,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            int BT,
            int C,
            int OC) {
        backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, true);
    }

    /**
     * dinp += dout · weight; dweight (+)= doutᵀ · inp; dbias (+)= column sums of dout (dbias may be null). Without
     * accumulate, dweight and dbias are overwritten, their old values never read: the first backward after a
     * zeroGrad needs no zeroed weight gradients (PyTorch's zero_grad(set_to_none=True), BLAS's beta = 0).
     */
    void backward(
            MemorySegment dinp,
            MemorySegment dweight,
            MemorySegment dbias,
            MemorySegment dout,
            MemorySegment inp,
            MemorySegment weight,
            int BT,
            int C,
            int OC,
            boolean accumulate);

    // ------------------------------------------------------------------------------------------------------------
    /** One dot product per output, parallel over rows; the backward parallel over rows (dinp) and outputs (dweight). */
    Matmul BASELINE = new Matmul() {
        @Override
        public void forward(
                MemorySegment out, MemorySegment inp, MemorySegment weight, MemorySegment bias, int BT, int C, int OC) {
            Parallel.forRange(BT, (start, end) -> {
                for (long bt = start; bt < end; bt++) {
                    for (long o = 0; o < OC; o++) {
                        float sum = bias == null ? 0 : get(bias, o);
                        for (long i = 0; i < C; i++) sum += get(inp, bt * C + i) * get(weight, o * C + i);
                        set(out, bt * OC + o, sum);
                    }
                }
            });
        }

        @Override
        public void backward(
                MemorySegment dinp,
                MemorySegment dweight,
                MemorySegment dbias,
                MemorySegment dout,
                MemorySegment inp,
                MemorySegment weight,
                int BT,
                int C,
                int OC,
                boolean accumulate) {
            if (!accumulate) {
                dweight.asSlice(0, (long) OC * C * Float.BYTES).fill((byte) 0);
                if (dbias != null) dbias.asSlice(0, (long) OC * Float.BYTES).fill((byte) 0);
            }
            Parallel.forRange(BT, (start, end) -> {
                for (long bt = start; bt < end; bt++) {
                    for (long o = 0; o < OC; o++) {
                        float d = get(dout, bt * OC + o);
                        for (long i = 0; i < C; i++) add(dinp, bt * C + i, get(weight, o * C + i) * d);
                    }
                }
            });
            Parallel.forRange(OC, (start, end) -> {
                for (long o = start; o < end; o++) {
                    for (long bt = 0; bt < BT; bt++) {
                        float d = get(dout, bt * OC + o);
                        if (dbias != null) add(dbias, o, d);
                        for (long i = 0; i < C; i++) add(dweight, o * C + i, get(inp, bt * C + i) * d);
                    }
                }
            });
        }
    };

    // ------------------------------------------------------------------------------------------------------------
    /** The fast version: one register-tiled, cache-blocked GEMM micro-kernel for all three products; see {@link VectorMatmul}. */
    Matmul VECTOR = new VectorMatmul();
}
