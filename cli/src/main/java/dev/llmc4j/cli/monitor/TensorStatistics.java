package dev.llmc4j.cli.monitor;

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
 * Each costs one pass over the parameters (and one copy of them): only on the steps the monitor inspects.
 */
final class TensorStatistics {

    private final Inspectable model;
    private final List<TensorSlice> tensors;
    private final Arena arena = Arena.ofAuto();
    private MemorySegment before; // the parameters before the update, numParameters floats
    private double[] gradientRatio;
    private static final int CHUNK = 1 << 16;
    private final float[] chunk = new float[CHUNK], otherChunk = new float[CHUNK];

    TensorStatistics(Inspectable model) {
        this.model = model;
        this.tensors = model.parameterTensors();
    }

    /** Before the update: the gradient ratios, and a copy of the parameters to measure the update against. */
    void beforeUpdate(MemorySegment parameters, MemorySegment gradients) {
        if (before == null) before = arena.allocate(parameters.byteSize(), 64);
        MemorySegment.copy(parameters, 0, before, 0, parameters.byteSize());
        gradientRatio = new double[tensors.size()];
        for (int i = 0; i < tensors.size(); i++) {
            var t = tensors.get(i);
            double gradient = squares(gradients, null, t.offset(), t.count());
            gradientRatio[i] = ratio(gradient, squares(parameters, null, t.offset(), t.count()));
        }
    }

    /** After the update: per tensor and layer {name, layer, grad: |g|/|w|, update: |dw|/|w|, rms: rms(w)}. */
    List<Map<String, Object>> afterUpdate(MemorySegment parameters) {
        var rows = new ArrayList<Map<String, Object>>();
        for (int i = 0; i < tensors.size(); i++) {
            var t = tensors.get(i);
            double weights = squares(parameters, null, t.offset(), t.count());
            var row = new LinkedHashMap<String, Object>();
            row.put("name", t.name());
            row.put("layer", t.layer());
            row.put("grad", gradientRatio[i]);
            row.put("update", ratio(squares(parameters, before, t.offset(), t.count()), weights));
            row.put("rms", Math.sqrt(weights / t.count()));
            rows.add(row);
        }
        return rows;
    }

    /** Per layer and activation of the last forward: {name, layer, mean, std, maxAbs}. */
    List<Map<String, Object>> activations() {
        var rows = new ArrayList<Map<String, Object>>();
        for (ActivationSlice a : model.activations()) {
            long n = a.values().byteSize() / Float.BYTES;
            double sum = 0, squares = 0, maxAbs = 0;
            for (long start = 0; start < n; start += CHUNK) { // arrays, as in squares()
                int count = (int) Math.min(CHUNK, n - start);
                MemorySegment.copy(a.values(), ValueLayout.JAVA_FLOAT, start * Float.BYTES, chunk, 0, count);
                for (int i = 0; i < count; i++) {
                    float x = chunk[i];
                    sum += x;
                    squares += (double) x * x;
                    maxAbs = Math.max(maxAbs, Math.abs(x));
                }
            }
            double mean = sum / n;
            var row = new LinkedHashMap<String, Object>();
            row.put("name", a.name());
            row.put("layer", a.layer());
            row.put("mean", mean);
            row.put("std", Math.sqrt(Math.max(0, squares / n - mean * mean)));
            row.put("maxAbs", maxAbs);
            rows.add(row);
        }
        return rows;
    }

    /**
     * The sum over a tensor's floats of x^2, or with {@code minus} of (x - minus)^2, through arrays of 64K floats.
     * This code runs a few times per run, so it is cold: read float by float from off-heap memory it stays slow for
     * millions of floats until compiled (measured: seconds on a busy machine), while bulk copies and plain array
     * loops are fast from the start.
     */
    private double squares(MemorySegment x, MemorySegment minus, long offset, long count) {
        double sum = 0;
        for (long start = offset, end = offset + count; start < end; start += CHUNK) {
            int n = (int) Math.min(CHUNK, end - start);
            MemorySegment.copy(x, ValueLayout.JAVA_FLOAT, start * Float.BYTES, chunk, 0, n);
            if (minus != null) {
                MemorySegment.copy(minus, ValueLayout.JAVA_FLOAT, start * Float.BYTES, otherChunk, 0, n);
                for (int i = 0; i < n; i++) chunk[i] -= otherChunk[i];
            }
            for (int i = 0; i < n; i++) sum += (double) chunk[i] * chunk[i];
        }
        return sum;
    }

    private static double ratio(double numeratorSquares, double denominatorSquares) {
        return denominatorSquares == 0 ? Double.NaN : Math.sqrt(numeratorSquares / denominatorSquares);
    }
}
