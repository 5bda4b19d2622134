package dev.llmc4j.cli.monitor;

import dev.llmc4j.cpu.Parallel;
import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.Inspectable.ActivationSlice;
import dev.llmc4j.train.Inspectable.TensorSlice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The numbers to look at first when a run diverges, per parameter tensor and layer: the gradient's size relative to
 * the weights (|g| / |w|) and the update's (|w after - w before| / |w|; about 1e-3 is healthy for AdamW, much larger
 * means the learning rate is too high for that tensor), and the mean, spread and largest magnitude of the activations.
 *
 * <p>Cost, on the steps the monitor inspects only: one pass over the parameters and gradients before the update
 * (which also keeps a copy of the parameters) and one over the parameters and that copy after it; the passes run on
 * all cores, in blocks of 64K floats (each block's sums in four independent accumulators, so the additions do not
 * wait for each other), and the blocks' sums are added in order, so the result does not depend on the thread count.
 */
final class TensorStatistics {

    /** Floats per unit of work: a block of a tensor, read through two arrays of this size. */
    private static final int BLOCK = 1 << 16;

    /** Floats [offset, offset + count) of tensor (or activation) {@code owner}; count at most {@link #BLOCK}. */
    private record Block(int owner, long offset, int count) {}

    private final Inspectable model;
    private final List<TensorSlice> tensors;
    private final List<Block> blocks; // every parameter tensor cut into blocks, in order
    private final Arena arena = Arena.ofAuto();
    private final MemorySegment before; // the parameters before the update, numParameters floats
    private double[] gradientRatio;

    /**
     * Allocates the copy of the parameters now, before the run: the memory of a fresh allocation is zeroed and
     * mapped page by page, which took 0.6 s for 65 MB (16.3M parameters) on a busy machine, too long for a step.
     */
    TensorStatistics(Inspectable model) {
        this.model = model;
        this.before = arena.allocate(model.parameters().byteSize(), 64);
        this.tensors = model.parameterTensors();
        this.blocks = new ArrayList<>();
        for (int i = 0; i < tensors.size(); i++)
            addBlocks(blocks, i, tensors.get(i).offset(), tensors.get(i).count());
    }

    private static void addBlocks(List<Block> blocks, int owner, long offset, long count) {
        for (long start = 0; start < count; start += BLOCK)
            blocks.add(new Block(owner, offset + start, (int) Math.min(BLOCK, count - start)));
    }

    /** Before the update: the gradient ratios, and a copy of the parameters to measure the update against. */
    void beforeUpdate(MemorySegment parameters, MemorySegment gradients) {
        var sums = perBlock(2, (block, w, g, out) -> {
            long bytes = block.offset() * Float.BYTES;
            MemorySegment.copy(parameters, ValueLayout.JAVA_FLOAT, bytes, w, 0, block.count());
            MemorySegment.copy(gradients, ValueLayout.JAVA_FLOAT, bytes, g, 0, block.count());
            MemorySegment.copy(w, 0, before, ValueLayout.JAVA_FLOAT, bytes, block.count());
            out[0] = squares(w, block.count());
            out[1] = squares(g, block.count());
        });
        double[][] perTensor = perTensor(sums, 2);
        gradientRatio = new double[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) gradientRatio[i] = ratio(perTensor[i][1], perTensor[i][0]);
    }

    /** After the update: per tensor and layer {name, layer, grad: |g|/|w|, update: |dw|/|w|, rms: rms(w)}. */
    List<Map<String, Object>> afterUpdate(MemorySegment parameters) {
        var sums = perBlock(2, (block, w, old, out) -> {
            long bytes = block.offset() * Float.BYTES;
            MemorySegment.copy(parameters, ValueLayout.JAVA_FLOAT, bytes, w, 0, block.count());
            MemorySegment.copy(before, ValueLayout.JAVA_FLOAT, bytes, old, 0, block.count());
            out[0] = squares(w, block.count());
            out[1] = squaredDistance(w, old, block.count());
        });
        double[][] perTensor = perTensor(sums, 2);
        var rows = new ArrayList<Map<String, Object>>();
        for (int i = 0; i < tensors.size(); i++) {
            var t = tensors.get(i);
            double weights = perTensor[i][0];
            var row = new LinkedHashMap<String, Object>();
            row.put("name", t.name());
            row.put("layer", t.layer());
            row.put("grad", gradientRatio[i]);
            row.put("update", ratio(perTensor[i][1], weights));
            row.put("rms", Math.sqrt(weights / t.count()));
            rows.add(row);
        }
        return rows;
    }

    /** Per layer and activation of the last forward: {name, layer, mean, std, maxAbs}. */
    List<Map<String, Object>> activations() {
        List<ActivationSlice> slices = model.activations();
        var sliceBlocks = new ArrayList<Block>();
        for (int i = 0; i < slices.size(); i++)
            addBlocks(sliceBlocks, i, 0, slices.get(i).values().byteSize() / Float.BYTES);
        double[][] sums = perBlock(sliceBlocks, 3, (block, x, unused, out) -> {
            MemorySegment values = slices.get(block.owner()).values();
            MemorySegment.copy(values, ValueLayout.JAVA_FLOAT, block.offset() * Float.BYTES, x, 0, block.count());
            double sum = 0, maxAbs = 0;
            for (int i = 0; i < block.count(); i++) {
                sum += x[i];
                maxAbs = Math.max(maxAbs, Math.abs(x[i]));
            }
            out[0] = sum;
            out[1] = squares(x, block.count());
            out[2] = maxAbs;
        });
        var rows = new ArrayList<Map<String, Object>>();
        double[] sum = new double[slices.size()],
                squares = new double[slices.size()],
                maxAbs = new double[slices.size()];
        for (int b = 0; b < sliceBlocks.size(); b++) {
            int owner = sliceBlocks.get(b).owner();
            sum[owner] += sums[b][0];
            squares[owner] += sums[b][1];
            maxAbs[owner] = Math.max(maxAbs[owner], sums[b][2]);
        }
        for (int i = 0; i < slices.size(); i++) {
            long n = slices.get(i).values().byteSize() / Float.BYTES;
            double mean = sum[i] / n;
            var row = new LinkedHashMap<String, Object>();
            row.put("name", slices.get(i).name());
            row.put("layer", slices.get(i).layer());
            row.put("mean", mean);
            row.put("std", Math.sqrt(Math.max(0, squares[i] / n - mean * mean)));
            row.put("maxAbs", maxAbs[i]);
            rows.add(row);
        }
        return rows;
    }

    /** The work on one block: read it through the two arrays, write its {@code sums} numbers into out. */
    @FunctionalInterface
    private interface BlockWork {
        void run(Block block, float[] first, float[] second, double[] out);
    }

    private double[][] perBlock(int sums, BlockWork work) {
        return perBlock(blocks, sums, work);
    }

    /**
     * Runs work over the blocks on all cores; returns each block's sums. The data is read through arrays (a bulk
     * copy, then plain loops): this code runs a few times per run, so it is cold, and read float by float from
     * off-heap memory it stays slow for millions of floats until compiled, while bulk copies and array loops are
     * fast from the start.
     */
    private static double[][] perBlock(List<Block> blocks, int sums, BlockWork work) {
        double[][] out = new double[blocks.size()][sums];
        Parallel.forRange(blocks.size(), (start, end) -> {
            float[] first = new float[BLOCK], second = new float[BLOCK];
            for (long b = start; b < end; b++) work.run(blocks.get((int) b), first, second, out[(int) b]);
        });
        return out;
    }

    /** The blocks' sums added per tensor, in block order. */
    private double[][] perTensor(double[][] blockSums, int sums) {
        double[][] total = new double[tensors.size()][sums];
        for (int b = 0; b < blocks.size(); b++)
            for (int k = 0; k < sums; k++) total[blocks.get(b).owner()][k] += blockSums[b][k];
        return total;
    }

    /** The sum of x[i]^2 over [0, n), in double, with four independent running sums. */
    private static double squares(float[] x, int n) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            s0 += (double) x[i] * x[i];
            s1 += (double) x[i + 1] * x[i + 1];
            s2 += (double) x[i + 2] * x[i + 2];
            s3 += (double) x[i + 3] * x[i + 3];
        }
        for (; i < n; i++) s0 += (double) x[i] * x[i];
        return (s0 + s1) + (s2 + s3);
    }

    /** The sum of (x[i] - y[i])^2 over [0, n), likewise. */
    private static double squaredDistance(float[] x, float[] y, int n) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        int i = 0;
        for (; i + 4 <= n; i += 4) {
            double d0 = x[i] - y[i], d1 = x[i + 1] - y[i + 1], d2 = x[i + 2] - y[i + 2], d3 = x[i + 3] - y[i + 3];
            s0 += d0 * d0;
            s1 += d1 * d1;
            s2 += d2 * d2;
            s3 += d3 * d3;
        }
        for (; i < n; i++) {
            double d = x[i] - y[i];
            s0 += d * d;
        }
        return (s0 + s1) + (s2 + s3);
    }

    private static double ratio(double numeratorSquares, double denominatorSquares) {
        return denominatorSquares == 0 ? Double.NaN : Math.sqrt(numeratorSquares / denominatorSquares);
    }
}
