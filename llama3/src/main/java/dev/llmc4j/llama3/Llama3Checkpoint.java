package dev.llmc4j.llama3;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.model.FiniteParameters;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * A Llama 3 checkpoint, memory-mapped.
 *
 * <p>The format we read and write is llm.c's llama3 branch (spec 1.5 b): an int32[256] header
 * {@code [20240803, version, maxT, V, L, NH, NKV, C, multiple_of, use_scaled_rope, major, minor]}, a float32[256]
 * header {@code [ffn_dim_multiplier, norm_eps, rope_theta]}, then the 16 GPT-2 slots (see
 * {@link Llama3Config#PARAMETER_NAMES}), fp32 for version 3 and bf16 for version 5.
 *
 * <p>We also read (never write) the master branch's file (spec 1.5 a): one int32[256] header whose float fields were
 * truncated to integers, and the ten real tensors without bias slots, c_fc and c_fc2 stored as two separate blocks.
 * Since its ffn_dim_multiplier is truncated, such a file is only accepted for the released shapes (its L, NH, C
 * must name 3.1-8B, 3.2-1B or 3.2-3B). Both are told apart by their size.
 */
public final class Llama3Checkpoint implements AutoCloseable {
    public static final int MAGIC = 20240803;
    public static final int VERSION_FP32 = 3;
    public static final int VERSION_BF16 = 5;
    /** int32[256] + float32[256]. */
    public static final int HEADER_BYTES = 2048;

    private static final int MASTER_HEADER_BYTES = 1024;

    /** Which of the two llm.c layouts the file uses. */
    public enum Layout {
        LLAMA3_BRANCH,
        MASTER
    }

    private final Path file;
    private final Llama3Config config;
    private final int version;
    private final Layout layout;
    private final Arena arena;
    private final MemorySegment tensors; // everything after the header

    private Llama3Checkpoint(
            Path file, Llama3Config config, int version, Layout layout, Arena arena, MemorySegment tensors) {
        this.file = file;
        this.config = config;
        this.version = version;
        this.layout = layout;
        this.arena = arena;
        this.tensors = tensors;
    }

    public Path file() {
        return file;
    }

    public Llama3Config config() {
        return config;
    }
    /** 3 (fp32) or 5 (bf16). */
    public int version() {
        return version;
    }

    public Layout layout() {
        return layout;
    }

    /** Bytes of one stored value. */
    private int width() {
        return version == VERSION_FP32 ? 4 : 2;
    }

    /** Maps and validates the file. */
    public static Llama3Checkpoint read(Path file) {
        return read(file, RELEASED);
    }

    private static final List<Llama3Config> RELEASED =
            List.of(Llama3Config.LLAMA_3_1_8B, Llama3Config.LLAMA_3_2_1B, Llama3Config.LLAMA_3_2_3B);

    /** As {@link #read(Path)}, with the shapes a master-layout file may have (tests use small ones). */
    static Llama3Checkpoint read(Path file, List<Llama3Config> masterShapes) {
        long size;
        try {
            size = Files.size(file);
        } catch (NoSuchFileException e) {
            throw new LlmcException("checkpoint not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (size < MASTER_HEADER_BYTES)
            throw new FileFormatException(file, "file size", ">= 1024 bytes (a header)", size + " bytes");
        Arena arena = Arena.ofShared();
        try (var channel = FileChannel.open(file, StandardOpenOption.READ)) {
            MemorySegment all = channel.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            var checkpoint = parse(file, all, size, arena, masterShapes);
            arena = null; // now owned by the checkpoint
            return checkpoint;
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        } finally {
            if (arena != null) arena.close();
        }
    }

    private static int headerInt(MemorySegment all, int index) {
        return all.getAtIndex(ValueLayout.JAVA_INT_UNALIGNED, index);
    }

    private static Llama3Checkpoint parse(
            Path file, MemorySegment all, long size, Arena arena, List<Llama3Config> masterShapes) {
        int magic = headerInt(all, 0);
        if (magic != MAGIC) throw new FileFormatException(file, "header[0] (magic)", MAGIC, magic);
        int version = headerInt(all, 1);
        if (version != VERSION_FP32 && version != VERSION_BF16)
            throw new FileFormatException(file, "header[1] (version)", "3 (fp32) or 5 (bf16)", version);
        int width = version == VERSION_FP32 ? 4 : 2;

        // llama3-branch layout: its header alone says how big the file must be
        Llama3Config config = null;
        String configProblem = null;
        if (size >= HEADER_BYTES) {
            try {
                config = new Llama3Config(
                        headerInt(all, 2),
                        headerInt(all, 3),
                        headerInt(all, 4),
                        headerInt(all, 5),
                        headerInt(all, 6),
                        headerInt(all, 7),
                        all.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 256),
                        headerInt(all, 8),
                        all.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 257),
                        all.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, 258),
                        headerInt(all, 9) != 0,
                        headerInt(all, 10),
                        headerInt(all, 11));
            } catch (LlmcException e) {
                configProblem = e.getMessage();
            }
        }
        long expected = config == null ? -1 : HEADER_BYTES + width * config.numParameters();
        if (config != null && size == expected) {
            return new Llama3Checkpoint(file, config, version, Layout.LLAMA3_BRANCH, arena, all.asSlice(HEADER_BYTES));
        }
        Llama3Config master = masterConfig(all, masterShapes);
        if (master != null && size == MASTER_HEADER_BYTES + width * masterParameterCount(master)) {
            return new Llama3Checkpoint(file, master, version, Layout.MASTER, arena, all.asSlice(MASTER_HEADER_BYTES));
        }
        if (config == null) {
            throw new FileFormatException(
                    file,
                    "header",
                    "a valid llama3-branch header",
                    configProblem == null ? "a truncated file" : configProblem);
        }
        throw new FileFormatException(
                file,
                "file size",
                expected + " bytes (2048-byte header + " + width + " x " + config.numParameters() + " parameters of "
                        + config.describe() + ")",
                size + " bytes");
    }

    /** The master-branch header, if its (L, NH, C, NKV, V) name one of the known shapes. */
    private static Llama3Config masterConfig(MemorySegment all, List<Llama3Config> shapes) {
        int layers = headerInt(all, 4),
                heads = headerInt(all, 5),
                kvHeads = headerInt(all, 6),
                channels = headerInt(all, 7);
        int vocab = headerInt(all, 3), maxT = headerInt(all, 2);
        for (var known : shapes) {
            if (known.numLayers() == layers
                    && known.numHeads() == heads
                    && known.channels() == channels
                    && known.numKvHeads() == kvHeads
                    && known.vocabSize() == vocab) {
                int theta = headerInt(all, 11);
                return new Llama3Config(
                        maxT > 0 ? maxT : known.maxSeqLen(),
                        vocab,
                        layers,
                        heads,
                        kvHeads,
                        channels,
                        known.ffnDimMultiplier(),
                        headerInt(all, 9) > 0 ? headerInt(all, 9) : known.multipleOf(),
                        known.normEps(),
                        theta > 0 ? theta : known.ropeTheta(),
                        headerInt(all, 12) != 0,
                        headerInt(all, 14),
                        headerInt(all, 15));
            }
        }
        return null;
    }

    /** wte, ln_1, c_attn, attn.c_proj, ln_2, c_fc, c_fc2, mlp.c_proj, ln_f, lm_head (no bias slots). */
    private static long[] masterSizes(Llama3Config c) {
        long L = c.numLayers(), C = c.channels(), V = c.vocabSize(), H = c.ffnHidden();
        return new long[] {
            V * C, L * C, L * c.qkvRows() * C, L * C * C, L * C, L * H * C, L * H * C, L * C * H, C, V * C
        };
    }

    private static long masterParameterCount(Llama3Config c) {
        long total = 0;
        for (long s : masterSizes(c)) total += s;
        return total;
    }

    /**
     * Copies every parameter, converted to fp32, into {@code destination} in the 16-slot layout
     * ({@link Llama3Config#parameterOffsets()}; bias slots become zeros). destination holds
     * {@link Llama3Config#numParameters()} floats from {@code destinationOffset} (in floats).
     */
    public void loadParameters(MemorySegment destination, long destinationOffset) {
        long[] offsets = config.parameterOffsets();
        if (layout == Layout.LLAMA3_BRANCH) {
            copyFloats(0, destination, destinationOffset, config.numParameters());
            return;
        }
        // master layout: remap its ten tensors onto our slots
        long[] master = masterSizes(config);
        long[] masterOffsets = new long[master.length];
        for (int i = 1; i < master.length; i++) masterOffsets[i] = masterOffsets[i - 1] + master[i - 1];
        destination.asSlice(destinationOffset * 4, config.numParameters() * 4).fill((byte) 0);
        int[] masterToSlot = {0, 2, 4, 6, 8, -1, -1, 12, 14, 1};
        for (int i = 0; i < master.length; i++) {
            if (masterToSlot[i] >= 0)
                copyFloats(masterOffsets[i], destination, destinationOffset + offsets[masterToSlot[i]], master[i]);
        }
        long H = config.ffnHidden(), C = config.channels();
        for (int l = 0; l < config.numLayers(); l++) { // fcw per layer = c_fc[l] then c_fc2[l]
            long fcw = destinationOffset + offsets[10] + l * 2 * H * C;
            copyFloats(masterOffsets[5] + l * H * C, destination, fcw, H * C);
            copyFloats(masterOffsets[6] + l * H * C, destination, fcw + H * C, H * C);
        }
    }

    /** Copies count stored values starting at element index from, converted to fp32. */
    private void copyFloats(long from, MemorySegment destination, long destinationOffset, long count) {
        if (version == VERSION_FP32) {
            MemorySegment.copy(tensors, from * 4, destination, destinationOffset * 4, count * 4);
        } else {
            for (long i = 0; i < count; i++) {
                short bits = tensors.getAtIndex(ValueLayout.JAVA_SHORT_UNALIGNED, from + i);
                destination.setAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, destinationOffset + i, BFloat16.toFloat(bits));
            }
        }
    }

    /** All parameters as one fp32 array (small models and tests only). */
    public float[] parametersToArray() {
        long n = config.numParameters();
        if (n > Integer.MAX_VALUE - 8) throw new LlmcException(file + ": too many parameters for a Java array: " + n);
        float[] out = new float[(int) n];
        loadParameters(MemorySegment.ofArray(out), 0);
        return out;
    }

    /** The 2048-byte llama3-branch header. */
    static ByteBuffer header(Llama3Config c, int version) {
        var header = ByteBuffer.allocate(HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
        int[] ints = {
            MAGIC,
            version,
            c.maxSeqLen(),
            c.vocabSize(),
            c.numLayers(),
            c.numHeads(),
            c.numKvHeads(),
            c.channels(),
            c.multipleOf(),
            c.useScaledRope() ? 1 : 0,
            c.major(),
            c.minor()
        };
        for (int i = 0; i < ints.length; i++) header.putInt(i * 4, ints[i]);
        header.putFloat(1024, c.ffnDimMultiplier());
        header.putFloat(1028, c.normEps());
        header.putFloat(1032, c.ropeTheta());
        return header;
    }

    /**
     * Writes a llama3-branch checkpoint (atomically). {@code parameters} holds {@link Llama3Config#numParameters()}
     * fp32 values in the 16-slot layout from {@code offset} (in floats); version 5 rounds them to bf16.
     */
    public static void write(Path file, Llama3Config config, int version, MemorySegment parameters, long offset) {
        if (version != VERSION_FP32 && version != VERSION_BF16)
            throw new IllegalArgumentException("version must be 3 or 5, got " + version);
        long count = config.numParameters();
        // a checkpoint never holds NaN or infinity: it would be trained on, or sampled from, in silence
        FiniteParameters.require(
                parameters.asSlice(offset * Float.BYTES, count * Float.BYTES),
                Llama3Config.PARAMETER_NAMES,
                config.parameterSizes(),
                "not writing " + file);
        AtomicFiles.write(file, channel -> {
            writeFully(channel, header(config, version));
            final int chunk = 1 << 20; // floats per write
            var buffer = ByteBuffer.allocateDirect(chunk * 4).order(ByteOrder.LITTLE_ENDIAN);
            for (long start = 0; start < count; start += chunk) {
                int n = (int) Math.min(chunk, count - start);
                buffer.clear();
                for (int i = 0; i < n; i++) {
                    float value = parameters.getAtIndex(ValueLayout.JAVA_FLOAT_UNALIGNED, offset + start + i);
                    if (version == VERSION_FP32) buffer.putFloat(value);
                    else buffer.putShort(BFloat16.fromFloat(value));
                }
                buffer.flip();
                writeFully(channel, buffer);
            }
        });
    }

    /** Writes a checkpoint from a float array in the 16-slot layout. */
    public static void write(Path file, Llama3Config config, int version, float[] parameters) {
        write(file, config, version, MemorySegment.ofArray(parameters), 0);
    }

    private static void writeFully(FileChannel channel, ByteBuffer buffer) throws IOException {
        while (buffer.hasRemaining()) channel.write(buffer);
    }

    @Override
    public void close() {
        arena.close();
    }
}
