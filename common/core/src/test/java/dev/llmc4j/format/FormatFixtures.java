package dev.llmc4j.format;

import dev.llmc4j.model.GPT2Config;
import java.io.IOException;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;

/** A tiny model shape, deterministic values, and ways to damage a file (public: model.GPT2CheckpointTest uses it). */
public final class FormatFixtures {
    private FormatFixtures() {}

    /** maxT=16, V=10, Vp=128, L=1, NH=2, C=8: 2040 parameters. */
    public static final GPT2Config TINY = new GPT2Config(16, 10, 128, 1, 2, 8);

    /** Values of both signs and magnitudes, most of them not exact in bf16. */
    public static float[] values(long count, int seed) {
        float[] values = new float[Math.toIntExact(count)];
        for (int i = 0; i < values.length; i++) values[i] = (float) Math.sin(seed + i * 0.37) * (1 + i % 7) / 3f;
        return values;
    }

    public static MemorySegment segment(float[] values) {
        return MemorySegment.ofArray(values);
    }

    public static float[] toArray(MemorySegment nativeFloats) {
        return nativeFloats.toArray(java.lang.foreign.ValueLayout.JAVA_FLOAT);
    }

    /** Overwrites header slot {@code slot} of a file. */
    public static void patchSlot(Path file, int slot, int value) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(slot * 4, value);
        Files.write(file, bytes);
    }

    /** Overwrites the int32 at byte {@code offset}. */
    public static void patchInt(Path file, long offset, int value) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).putInt(Math.toIntExact(offset), value);
        Files.write(file, bytes);
    }

    /** Keeps the first {@code length} bytes; a length beyond the end appends zeros. */
    public static void resize(Path file, long length) throws IOException {
        byte[] bytes = Files.readAllBytes(file);
        Files.write(file, Arrays.copyOf(bytes, Math.toIntExact(length)));
    }

    /** The folder holds exactly these names: no temp file left behind. */
    public static String[] listing(Path folder) throws IOException {
        try (var files = Files.list(folder)) {
            return files.map(p -> p.getFileName().toString()).sorted().toArray(String[]::new);
        }
    }
}
