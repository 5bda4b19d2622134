package dev.llmc4j.cli.monitor;

import static dev.llmc4j.cpu.Floats.get;

import dev.llmc4j.train.Inspectable;
import dev.llmc4j.train.Inspectable.ActivationSlice;
import dev.llmc4j.train.Inspectable.TensorSlice;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
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
            gradientRatio[i] = ratio(squares(gradients, null, t), squares(parameters, null, t));
        }
    }

    /** After the update: per tensor and layer {name, layer, grad: |g|/|w|, update: |dw|/|w|, rms: rms(w)}. */
    List<Map<String, Object>> afterUpdate(MemorySegment parameters) {
        var rows = new ArrayList<Map<String, Object>>();
        for (int i = 0; i < tensors.size(); i++) {
            var t = tensors.get(i);
            double weights = squares(parameters, null, t);
            var row = new LinkedHashMap<String, Object>();
            row.put("name", t.name());
            row.put("layer", t.layer());
            row.put("grad", gradientRatio[i]);
            row.put("update", ratio(squares(parameters, before, t), weights));
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
            for (long i = 0; i < n; i++) {
                float x = get(a.values(), i);
                sum += x;
                squares += (double) x * x;
                maxAbs = Math.max(maxAbs, Math.abs(x));
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
     * The sum over a tensor's floats of x^2, or with {@code minus} of (x - minus)^2. One thread, no hand-off: a few
     * milliseconds for millions of floats, where waking the worker threads for each small tensor cost more on a busy
     * machine (measured).
     */
    private static double squares(MemorySegment x, MemorySegment minus, TensorSlice t) {
        double sum = 0;
        for (long i = t.offset(), end = t.offset() + t.count(); i < end; i++) {
            double v = minus == null ? get(x, i) : get(x, i) - get(minus, i);
            sum += v * v;
        }
        return sum;
    }

    private static double ratio(double numeratorSquares, double denominatorSquares) {
        return denominatorSquares == 0 ? Double.NaN : Math.sqrt(numeratorSquares / denominatorSquares);
    }
}
