package dev.llmc4j.cli.monitor;

import static dev.llmc4j.cpu.Floats.get;
import static dev.llmc4j.cpu.Floats.set;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.cpu.Parallel;
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
            gradientRatio[i] = ratio(squares(gradients, t), squares(parameters, t));
        }
    }

    /** After the update: per tensor and layer {name, layer, grad: |g|/|w|, update: |dw|/|w|, rms: rms(w)}. */
    List<Map<String, Object>> afterUpdate(MemorySegment parameters) {
        long n = before.byteSize() / Float.BYTES;
        Parallel.forRange(n, (start, end) -> { // the copy becomes the update: after - before
            for (long i = start; i < end; i++) set(before, i, get(parameters, i) - get(before, i));
        });
        var rows = new ArrayList<Map<String, Object>>();
        for (int i = 0; i < tensors.size(); i++) {
            var t = tensors.get(i);
            double weights = squares(parameters, t);
            var row = new LinkedHashMap<String, Object>();
            row.put("name", t.name());
            row.put("layer", t.layer());
            row.put("grad", gradientRatio[i]);
            row.put("update", ratio(squares(before, t), weights));
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

    /** The sum of the squares of a tensor's floats (the trainer's parallel, thread-count-independent sum). */
    private static double squares(MemorySegment x, TensorSlice t) {
        return AdamW.gradientSquareSum(x, t.offset(), t.count());
    }

    private static double ratio(double numeratorSquares, double denominatorSquares) {
        return denominatorSquares == 0 ? Double.NaN : Math.sqrt(numeratorSquares / denominatorSquares);
    }
}
