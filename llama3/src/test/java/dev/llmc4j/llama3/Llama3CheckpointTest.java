package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.testing.Fixtures;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Llama3CheckpointTest {
    static final String MAKE_FIXTURES = "reference/make_llama3_fixtures.sh target/fixtures";

    static final Llama3Config TINY = new Llama3Config(16, 40, 2, 4, 2, 16, 1.0f, 8, 1e-5f, 10000f, false, 3, 2);

    @TempDir
    Path tmp;

    static float[] randomParameters(Llama3Config config, long seed) {
        var random = new Random(seed);
        float[] params = new float[(int) config.numParameters()];
        long[] offsets = config.parameterOffsets(), sizes = config.parameterSizes();
        for (int slot = 0; slot < 16; slot++) {
            if (Llama3Config.isBiasSlot(slot)) continue;
            for (long i = offsets[slot]; i < offsets[slot] + sizes[slot]; i++)
                params[(int) i] = (float) random.nextGaussian();
        }
        return params;
    }

    @Test
    void fp32RoundTripIsExact() {
        float[] params = randomParameters(TINY, 1);
        Path file = tmp.resolve("tiny.bin");
        Llama3Checkpoint.write(file, TINY, 3, params);
        try (var checkpoint = Llama3Checkpoint.read(file)) {
            assertEquals(TINY, checkpoint.config());
            assertEquals(3, checkpoint.version());
            assertEquals(Llama3Checkpoint.Layout.LLAMA3_BRANCH, checkpoint.layout());
            assertArrayEquals(params, checkpoint.parametersToArray());
        }
    }

    @Test
    void bf16RoundsToNearestEven() throws IOException {
        float[] params = randomParameters(TINY, 2);
        params[0] = Float.intBitsToFloat(0x3F808000); // exactly halfway, even below: rounds down to 0x3F80
        params[1] = Float.intBitsToFloat(0x3F818000); // halfway, odd below: rounds up to 0x3F82
        params[2] = Float.intBitsToFloat(0x3F808001); // above halfway: up to 0x3F81
        Path file = tmp.resolve("tiny_bf16.bin");
        Llama3Checkpoint.write(file, TINY, 5, params);
        assertEquals(2048 + 2 * TINY.numParameters(), Files.size(file));
        try (var checkpoint = Llama3Checkpoint.read(file)) {
            assertEquals(5, checkpoint.version());
            float[] read = checkpoint.parametersToArray();
            assertEquals(Float.intBitsToFloat(0x3F800000), read[0]);
            assertEquals(Float.intBitsToFloat(0x3F820000), read[1]);
            assertEquals(Float.intBitsToFloat(0x3F810000), read[2]);
            for (int i = 3; i < read.length; i++) {
                assertEquals(params[i], read[i], Math.abs(params[i]) / 256f, "parameter " + i);
            }
        }
    }

    @Test
    void headerFieldsAreWhereTheSpecSays() throws IOException {
        Path file = tmp.resolve("h.bin");
        Llama3Checkpoint.write(file, TINY, 3, randomParameters(TINY, 3));
        var header = ByteBuffer.wrap(Files.readAllBytes(file), 0, 2048).order(ByteOrder.LITTLE_ENDIAN);
        int[] expected = {20240803, 3, 16, 40, 2, 4, 2, 16, 8, 0, 3, 2, 0};
        for (int i = 0; i < expected.length; i++) assertEquals(expected[i], header.getInt(4 * i), "int " + i);
        assertEquals(1.0f, header.getFloat(1024));
        assertEquals(1e-5f, header.getFloat(1028));
        assertEquals(10000f, header.getFloat(1032));
    }

    @Test
    void badFilesNameFileFieldExpectedAndFound() throws IOException {
        Path good = tmp.resolve("good.bin");
        Llama3Checkpoint.write(good, TINY, 3, randomParameters(TINY, 4));
        byte[] bytes = Files.readAllBytes(good);

        Path truncated = tmp.resolve("truncated.bin");
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 4));
        var e = assertThrows(FileFormatException.class, () -> Llama3Checkpoint.read(truncated));
        assertTrue(
                e.getMessage().contains("truncated.bin")
                        && e.getMessage().contains("file size")
                        && e.getMessage().contains(String.valueOf(bytes.length)),
                e.getMessage());

        Path badMagic = tmp.resolve("magic.bin");
        byte[] copy = bytes.clone();
        ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN).putInt(0, 20240326);
        Files.write(badMagic, copy);
        e = assertThrows(FileFormatException.class, () -> Llama3Checkpoint.read(badMagic));
        assertTrue(
                e.getMessage().contains("magic")
                        && e.getMessage().contains("20240803")
                        && e.getMessage().contains("20240326"),
                e.getMessage());

        Path badVersion = tmp.resolve("version.bin");
        copy = bytes.clone();
        ByteBuffer.wrap(copy).order(ByteOrder.LITTLE_ENDIAN).putInt(4, 4);
        Files.write(badVersion, copy);
        e = assertThrows(FileFormatException.class, () -> Llama3Checkpoint.read(badVersion));
        assertTrue(e.getMessage().contains("version") && e.getMessage().contains("found 4"), e.getMessage());

        Path tiny = tmp.resolve("tiny.bin");
        Files.write(tiny, new byte[10]);
        assertThrows(FileFormatException.class, () -> Llama3Checkpoint.read(tiny));

        var missing = assertThrows(LlmcException.class, () -> Llama3Checkpoint.read(tmp.resolve("nope.bin")));
        assertTrue(missing.getMessage().contains("nope.bin"));
    }

    /** The master branch's file: one int32 header (floats truncated), ten tensors, c_fc and c_fc2 as two blocks. */
    @Test
    void readsTheMasterBranchLayout() throws IOException {
        var c = TINY;
        float[] params = randomParameters(c, 5);
        long[] off = c.parameterOffsets();
        int L = c.numLayers(), C = c.channels(), V = c.vocabSize(), H = c.ffnHidden(), qkv = c.qkvRows();
        var out = ByteBuffer.allocate((int)
                        (1024 + 4 * (2L * V * C + L * (2L * C + (long) qkv * C + (long) C * C + 3L * H * C) + C)))
                .order(ByteOrder.LITTLE_ENDIAN);
        int[] header = {
            20240803,
            3,
            c.maxSeqLen(),
            V,
            L,
            c.numHeads(),
            c.numKvHeads(),
            C,
            1,
            c.multipleOf(),
            0,
            (int) c.ropeTheta(),
            0,
            4,
            3,
            2
        };
        for (int i = 0; i < header.length; i++) out.putInt(4 * i, header[i]);
        out.position(1024);
        java.util.function.BiConsumer<Long, Long> put = (from, count) -> {
            for (long i = 0; i < count; i++) out.putFloat(params[(int) (from + i)]);
        };
        put.accept(off[0], (long) V * C); // wte
        put.accept(off[2], (long) L * C); // ln_1
        put.accept(off[4], (long) L * qkv * C); // c_attn
        put.accept(off[6], (long) L * C * C); // attn.c_proj
        put.accept(off[8], (long) L * C); // ln_2
        for (int l = 0; l < L; l++) put.accept(off[10] + 2L * l * H * C, (long) H * C); // c_fc
        for (int l = 0; l < L; l++) put.accept(off[10] + 2L * l * H * C + (long) H * C, (long) H * C); // c_fc2
        put.accept(off[12], (long) L * C * H); // mlp.c_proj
        put.accept(off[14], (long) C); // ln_f
        put.accept(off[1], (long) V * C); // lm_head
        Path file = tmp.resolve("master.bin");
        Files.write(file, out.array());
        try (var checkpoint = Llama3Checkpoint.read(file, List.of(c))) {
            assertEquals(Llama3Checkpoint.Layout.MASTER, checkpoint.layout());
            assertEquals(c.ffnHidden(), checkpoint.config().ffnHidden());
            assertArrayEquals(params, checkpoint.parametersToArray());
        }
    }

    /** The reference's fp32 and bf16 files: we read both, and writing them back gives the same bytes. */
    @Test
    void matchesTheReferenceFiles() throws IOException {
        Path fp32 = Fixtures.require("llama3_small.bin", MAKE_FIXTURES);
        Path bf16 = Fixtures.require("llama3_small_bf16.bin", MAKE_FIXTURES);
        try (var a = Llama3Checkpoint.read(fp32);
                var b = Llama3Checkpoint.read(bf16)) {
            assertEquals(Llama3ConfigTest.SMALL, a.config());
            assertEquals(a.config(), b.config());
            float[] params = a.parametersToArray();
            Path again = tmp.resolve("again.bin");
            Llama3Checkpoint.write(again, a.config(), 3, params);
            assertArrayEquals(Files.readAllBytes(fp32), Files.readAllBytes(again));
            Path againBf16 = tmp.resolve("again_bf16.bin");
            Llama3Checkpoint.write(againBf16, a.config(), 5, params); // our rounding == torch's
            assertArrayEquals(Files.readAllBytes(bf16), Files.readAllBytes(againBf16));
            // RMSNorm weights start at 1, bias slots are zero
            long[] off = a.config().parameterOffsets();
            assertEquals(1f, params[(int) off[2]]);
            assertEquals(0f, params[(int) off[3]]);
        }
    }
}
