package dev.llmc4j.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorMask;
import jdk.incubator.vector.VectorSpecies;

/**
 * Which kernels run: the fast ones (Vector API, tiled, fused; default) or the plain baselines they are tested
 * against ({@code -Dllmc.kernels=baseline}). Every layer keeps its plain loops as the reference version; the fast
 * version lives beside it and the plain one dispatches to it when {@link #fast()} is true. Plus what the fast
 * kernels share: the vector species.
 */
public final class Kernels {
    private Kernels() {}

    private static volatile boolean fast = !"baseline".equals(System.getProperty("llmc.kernels"));

    public static boolean fast() {
        return fast;
    }

    /** Tests switch between the two versions to compare them in one JVM. */
    public static void useFast(boolean value) {
        fast = value;
    }

    /** The vector width: -Dllmc.vectorBits=128|256|512, default the machine's preferred species. */
    public static final VectorSpecies<Float> S = switch (System.getProperty("llmc.vectorBits", "")) {
        case "128" -> FloatVector.SPECIES_128;
        case "256" -> FloatVector.SPECIES_256;
        case "512" -> FloatVector.SPECIES_512;
        default -> FloatVector.SPECIES_PREFERRED;
    };
    /** Floats per vector. */
    public static final int W = S.length();

    /** The lanes of a vector starting at index i of a row of n floats that are inside the row. */
    public static VectorMask<Float> inRow(int i, int n) {
        return S.indexInRange(i, n);
    }
}
