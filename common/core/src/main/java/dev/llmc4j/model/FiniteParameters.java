package dev.llmc4j.model;

import dev.llmc4j.util.LlmcException;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;

/**
 * The check that keeps NaN and infinity out of checkpoints and away from sampling: a parameter block is scanned
 * vector-wide ({@code x - x} is 0 for every finite x and NaN otherwise, so one running sum tells), and only a block
 * that fails is scanned again for the first bad value, reported with its tensor's name.
 */
public final class FiniteParameters {
    private FiniteParameters() {}

    /** Index of the first NaN or infinite value among the first {@code count} native-order floats, or -1. */
    public static long firstNonFinite(MemorySegment floats, long count) {
        var species = FloatVector.SPECIES_PREFERRED;
        long bytes = count * Float.BYTES, step = species.vectorByteSize(), at = 0;
        var sum = FloatVector.zero(species);
        for (; at + step <= bytes; at += step) {
            var x = FloatVector.fromMemorySegment(species, floats, at, ByteOrder.nativeOrder());
            sum = sum.add(x.sub(x));
        }
        boolean allFinite = sum.reduceLanes(VectorOperators.ADD) == 0f;
        long tail = at / Float.BYTES;
        for (long i = allFinite ? tail : 0; i < count; i++) {
            if (!Float.isFinite(floats.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, i))) return i;
        }
        return -1;
    }

    /**
     * Refuses parameters with a NaN or an infinity: one line naming {@code what} (the file or the model), the
     * tensor, the element inside it and the value.
     *
     * @param names the tensors in storage order
     * @param sizes their element counts, in the same order
     */
    public static void require(MemorySegment floats, String[] names, long[] sizes, String what) {
        long total = 0;
        for (long size : sizes) total += size;
        long bad = firstNonFinite(floats, total);
        if (bad < 0) return;
        float value = floats.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, bad);
        long start = 0;
        int tensor = 0;
        while (bad >= start + sizes[tensor]) start += sizes[tensor++];
        throw new LlmcException(
                ("%s: tensor %s holds %s at element %d: expected finite parameters (a run that diverged, "
                                + "or a damaged file)")
                        .formatted(what, names[tensor], value, bad - start));
    }
}
