package dev.llmc4j.model;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.format.BinaryWriter;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.format.Headers;
import dev.llmc4j.format.LittleEndian;
import dev.llmc4j.util.AtomicFiles;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.nio.channels.FileChannel;
import java.nio.file.Path;

/**
 * An llm.c GPT-2 checkpoint ({@code gpt2_124M.bin}, {@code gpt2_124M_bf16.bin}, {@code model_00005000.bin}).
 *
 * <pre>
 * header  int32[256]   [0] 20240326  [1] version  [2] maxT  [3] V  [4] L  [5] NH  [6] C  [7] Vp  [8..255] 0
 * params  N values     the 16 tensors of {@link GPT2Config#parameterSizes()} back to back, wte padded to Vp rows
 *                      version 3: fp32 (4 bytes each), version 5: bf16 (2 bytes each)
 * </pre>
 *
 * Opening maps the parameter bytes read-only instead of reading them: nothing is copied until someone asks, and
 * the operating system shares the pages between processes.
 *
 * @param file          where it was read from
 * @param version       {@link #VERSION_FP32} or {@link #VERSION_BF16}
 * @param config        the model shape from header slots 2..7
 * @param rawParameters the parameter bytes exactly as in the file (little-endian fp32 or bf16), mapped read-only
 */
public record GPT2Checkpoint(Path file, int version, GPT2Config config, MemorySegment rawParameters) {

    public static final int MAGIC = 20240326;
    public static final int VERSION_FP32 = 3;
    public static final int VERSION_BF16 = 5;

    public GPT2Checkpoint {
        int bytes = bytesPerParameter(version);
        if (rawParameters.byteSize() != bytes * config.numParameters())
            throw new IllegalArgumentException("raw parameters hold " + rawParameters.byteSize()
                    + " bytes, the config needs " + bytes * config.numParameters());
    }

    /** 4 for version 3 (fp32), 2 for version 5 (bf16). */
    public static int bytesPerParameter(int version) {
        return switch (version) {
            case VERSION_FP32 -> Float.BYTES;
            case VERSION_BF16 -> Short.BYTES;
            default -> throw new LlmcException("checkpoint version must be 3 (fp32) or 5 (bf16), got " + version);
        };
    }

    /**
     * Checks the header and the exact file size, then maps the parameters read-only; the mapping lives as long as
     * {@code arena}. Every problem is a {@link FileFormatException} naming the file, the field, expected and found.
     */
    public static GPT2Checkpoint open(Path file, Arena arena) {
        try (FileChannel channel = Headers.openForReading(file)) {
            int[] header = Headers.readInts(file, channel);
            Headers.expectMagic(file, header, MAGIC);
            int version = checkVersion(file, header[1]);
            GPT2Config config = configFrom(file, header);
            long numParameters = config.numParameters();
            int bytes = bytesPerParameter(version);
            Headers.expectFileSize(
                    file,
                    channel,
                    Headers.BYTES + bytes * numParameters,
                    "1024 + %d * %d parameters for %s".formatted(bytes, numParameters, config));
            MemorySegment parameters =
                    channel.map(FileChannel.MapMode.READ_ONLY, Headers.BYTES, bytes * numParameters, arena);
            return new GPT2Checkpoint(file, version, config, parameters);
        } catch (IOException e) {
            throw new FileFormatException(file, "cannot read it: " + e.getMessage());
        }
    }

    private static int checkVersion(Path file, int version) {
        String old = switch (version) {
            case VERSION_FP32, VERSION_BF16 -> null;
            case 1 -> "an old llm.c checkpoint: fp32 with unpadded vocab";
            case 2 -> "an old llm.c checkpoint: bf16 with unpadded vocab";
            case 4 -> "an old llm.c checkpoint: bf16 with fp32 layernorms";
            default -> "unknown";
        };
        if (old != null)
            throw new FileFormatException(
                    file,
                    Headers.field("version", 1),
                    "3 (fp32) or 5 (bf16), the versions supported",
                    version + " (" + old + "; re-export it with current llm.c)");
        return version;
    }

    /** Header slots 2..7, checked here so the error names the file rather than coming from the config record. */
    private static GPT2Config configFrom(Path file, int[] header) {
        int maxT = Headers.requirePositive(file, header, 2, "maxT");
        int vocab = Headers.requirePositive(file, header, 3, "V");
        int layers = Headers.requirePositive(file, header, 4, "L");
        int heads = Headers.requirePositive(file, header, 5, "NH");
        int channels = Headers.requirePositive(file, header, 6, "C");
        int paddedVocab = Headers.requirePositive(file, header, 7, "Vp");
        if (paddedVocab < vocab)
            throw new FileFormatException(file, Headers.field("Vp", 7), "at least V = " + vocab, paddedVocab);
        if (channels % heads != 0)
            throw new FileFormatException(file, Headers.field("C", 6), "a multiple of NH = " + heads, channels);
        // absurd sizes would overflow the long arithmetic of the size check; a double estimate catches them first
        double estimatedParameters = ((double) paddedVocab + maxT) * channels
                + (double) layers * (12.0 * channels * channels + 13.0 * channels)
                + 2.0 * channels;
        if (estimatedParameters > GPT2Config.MAX_PARAMETERS)
            throw new FileFormatException(
                    file,
                    "header sizes (slots 2..7)",
                    "a model under 10^15 parameters",
                    "maxT=%d V=%d L=%d NH=%d C=%d Vp=%d".formatted(maxT, vocab, layers, heads, channels, paddedVocab));
        return new GPT2Config(maxT, vocab, paddedVocab, layers, heads, channels);
    }

    /** Number of parameters, N. */
    public long numParameters() {
        return config.numParameters();
    }

    /**
     * Copies all N parameters into {@code fp32Destination} as native-order floats: version 3 in one bulk copy,
     * version 5 widened from bf16 one value at a time (exact, see {@link BFloat16#toFloat}).
     */
    public void readParametersInto(MemorySegment fp32Destination) {
        long n = numParameters();
        if (fp32Destination.byteSize() < n * Float.BYTES)
            throw new IllegalArgumentException(
                    "destination holds " + fp32Destination.byteSize() / Float.BYTES + " floats, need " + n);
        if (version == VERSION_FP32) {
            MemorySegment.copy(
                    rawParameters, LittleEndian.FLOAT32, 0, fp32Destination, LittleEndian.NATIVE_FLOAT, 0, n);
        } else {
            for (long i = 0; i < n; i++)
                fp32Destination.setAtIndex(
                        LittleEndian.NATIVE_FLOAT,
                        i,
                        BFloat16.toFloat(rawParameters.getAtIndex(LittleEndian.INT16, i)));
        }
    }

    /**
     * Writes a checkpoint atomically (temp file, then rename): the first N native-order floats of
     * {@code fp32Parameters} as fp32 (version 3) or rounded to bf16 (version 5).
     */
    public static void write(Path file, GPT2Config config, MemorySegment fp32Parameters, int version) {
        bytesPerParameter(version); // rejects anything but 3 and 5 before a file is created
        long n = config.numParameters();
        if (fp32Parameters.byteSize() < n * Float.BYTES)
            throw new IllegalArgumentException(
                    "parameters hold " + fp32Parameters.byteSize() / Float.BYTES + " floats, need " + n);
        // a checkpoint never holds NaN or infinity: it would be trained on, or sampled from, in silence
        FiniteParameters.require(
                fp32Parameters, GPT2Config.PARAMETER_NAMES, config.parameterSizes(), "not writing " + file);
        AtomicFiles.write(file, channel -> {
            try (var out = new BinaryWriter(channel)) {
                out.header(
                        MAGIC,
                        version,
                        config.maxSeqLen(),
                        config.vocabSize(),
                        config.numLayers(),
                        config.numHeads(),
                        config.channels(),
                        config.paddedVocabSize());
                if (version == VERSION_FP32) out.floats(fp32Parameters, n);
                else out.bfloat16(fp32Parameters, n);
            }
        });
    }
}
