package dev.llmc4j.tutorials.cudakernel;

/**
 * The "writing a CUDA kernel" page, on the CPU: what the 32 lanes of softmax.cu's {@code softmax_warp_per_row} do,
 * replayed lane by lane in float, so the algorithm can be read and tested without a GPU. Also the arithmetic of
 * coalescing: how many 128-byte memory segments one warp-wide load touches.
 */
public final class WarpSoftmax {
    private WarpSoftmax() {}

    /** Threads in a warp: they execute each instruction together, and can read each other's registers. */
    public static final int WARP = 32;

    // tag::shuffle[]
    /**
     * {@code __shfl_xor_sync} butterflies: in the step with offset o every lane l adds the value of lane l XOR o, for
     * o = 16, 8, 4, 2, 1. After the five steps every lane holds the sum of all 32 (each step doubles the number of
     * lanes a value has summed). {@code lanes} is one register, one value per lane; changed in place.
     */
    public static void warpSum(float[] lanes) {
        for (int offset = WARP / 2; offset > 0; offset /= 2) {
            float[] before = lanes.clone(); // all lanes read, then all lanes write: one instruction
            for (int lane = 0; lane < WARP; lane++) lanes[lane] = before[lane] + before[lane ^ offset];
        }
    }

    /** The same butterflies with max instead of +. */
    public static void warpMax(float[] lanes) {
        for (int offset = WARP / 2; offset > 0; offset /= 2) {
            float[] before = lanes.clone();
            for (int lane = 0; lane < WARP; lane++) lanes[lane] = Math.max(before[lane], before[lane ^ offset]);
        }
    }
    // end::shuffle[]

    // tag::row[]
    /** softmax_warp_per_row for one row: lane l owns elements l, l + 32, ...; returns the row's softmax. */
    public static float[] softmaxRow(float[] x) {
        float[] max = new float[WARP], sum = new float[WARP];
        java.util.Arrays.fill(max, Float.NEGATIVE_INFINITY);
        for (int lane = 0; lane < WARP; lane++)
            for (int i = lane; i < x.length; i += WARP) max[lane] = Math.max(max[lane], x[i]);
        warpMax(max); // now every lane has the row's max
        for (int lane = 0; lane < WARP; lane++)
            for (int i = lane; i < x.length; i += WARP) sum[lane] += (float) Math.exp(x[i] - max[lane]);
        warpSum(sum); // and the row's sum of exponentials
        float[] out = new float[x.length];
        for (int lane = 0; lane < WARP; lane++)
            for (int i = lane; i < x.length; i += WARP) out[i] = (float) Math.exp(x[i] - max[lane]) / sum[lane];
        return out;
    }
    // end::row[]

    // tag::coalescing[]
    /**
     * 128-byte segments touched by one warp-wide load of 4-byte floats, lane l reading float index
     * {@code first + l * stride}: the memory transactions the load costs. Stride 1 (neighbouring lanes, neighbouring
     * addresses): 1 segment when aligned. Stride = a row length (one thread per row): up to 32.
     */
    public static int segmentsTouched(long first, long stride) {
        return (int) java.util.stream.LongStream.range(0, WARP)
                .map(lane -> (first + lane * stride) * 4 / 128)
                .distinct()
                .count();
    }
    // end::coalescing[]
}
