package dev.llmc4j.train;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.data.DataLoader;
import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.random.MersenneTwister;
import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.util.Arrays;
import java.util.HexFormat;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** llm.c's state file: the bytes a run without master weights writes, and the master-weight and rng fields. */
class TrainingStateFileTest {
    static final int N = 10; // floats per block (shard_N)

    @TempDir
    Path dir;

    final float[] m = new float[N], v = new float[N], master = new float[N];

    {
        for (int i = 0; i < N; i++) {
            m[i] = 0.25f * i - 1;
            v[i] = 1.0f / (i + 1);
            master[i] = -3.5f + 0.125f * i;
        }
    }

    static DataLoader.State loaderState() {
        var mt = new MersenneTwister(42);
        for (int i = 0; i < 7; i++) mt.randInt32();
        return new DataLoader.State(1, 3, new int[] {1, 0}, new int[] {2, 0, 3, 1}, mt.saveState());
    }

    static String sha256(Path file) throws Exception {
        return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(file)));
    }

    static int headerInt(Path file, int slot) throws Exception {
        return ByteBuffer.wrap(Files.readAllBytes(file), 0, 1024)
                .order(ByteOrder.LITTLE_ENDIAN)
                .getInt(4 * slot);
    }

    /**
     * Without master weights and with rng states 0 (a CPU run) the writer produces the bytes it produced before
     * those fields were filled in: the digests below were taken from the writer of that time on these inputs.
     */
    @Test
    void aRunWithoutMasterWeightsWritesTheSameBytesAsBefore() throws Exception {
        var shuffled = new TrainingStateFile.Header(1, 0, false, true, 12, 0, 0, 1, 3);
        var plain = new TrainingStateFile.Header(2, 1, false, false, 12, 0, 0, 0, 7);
        TrainingStateFile.write(
                dir.resolve("a.bin"),
                shuffled,
                MemorySegment.ofArray(m),
                MemorySegment.ofArray(v),
                null,
                N,
                loaderState());
        TrainingStateFile.write(
                dir.resolve("b.bin"), plain, MemorySegment.ofArray(m), MemorySegment.ofArray(v), null, N, null);
        assertEquals(3664, Files.size(dir.resolve("a.bin")));
        assertEquals("16667072b0582f3df326ac9208202a885cf25219a97a6e61f196bda82497a19f", sha256(dir.resolve("a.bin")));
        assertEquals(1024 + 2 * N * 4, Files.size(dir.resolve("b.bin")));
        assertEquals("31037dc7e48c6630e2b3e73398be213f542d3c9c7f2dca8c2b6958626d6faf0d", sha256(dir.resolve("b.bin")));
    }

    @Test
    void anFp16LossScaleGoesInSlots40And41() throws Exception {
        var header = new TrainingStateFile.Header(1, 0, true, false, 12, 5, 4, 0, 7, 32768.0f, 17);
        Path file = dir.resolve("fp16.bin");
        TrainingStateFile.write(
                file,
                header,
                MemorySegment.ofArray(m),
                MemorySegment.ofArray(v),
                MemorySegment.ofArray(master),
                N,
                null);
        assertEquals(Float.floatToIntBits(32768.0f), headerInt(file, 40));
        assertEquals(17, headerInt(file, 41));
        var contents = TrainingStateFile.read(
                file,
                N,
                1,
                0,
                MemorySegment.ofArray(new float[N]),
                MemorySegment.ofArray(new float[N]),
                MemorySegment.ofArray(new float[N]));
        assertEquals(header, contents.header());
    }

    @Test
    void masterWeightsAndRngStatesRoundTrip() throws Exception {
        long rng = 0x8000_0000_1234_5678L, before = 13371337L; // an unsigned uint64 above 2^63 too
        var header = new TrainingStateFile.Header(1, 0, true, true, 12, rng, before, 1, 3);
        Path file = dir.resolve("state.bin");
        TrainingStateFile.write(
                file,
                header,
                MemorySegment.ofArray(m),
                MemorySegment.ofArray(v),
                MemorySegment.ofArray(master),
                N,
                loaderState());

        // the layout llm.c reads: [4] = 1, rng states in [20..23], master weights right after v, then the loader tail
        assertEquals(1, headerInt(file, 4));
        assertEquals((int) rng, headerInt(file, 20));
        assertEquals((int) (rng >>> 32), headerInt(file, 21));
        assertEquals((int) before, headerInt(file, 22));
        assertEquals(0, headerInt(file, 23));
        assertEquals(3664 + N * 4, Files.size(file)); // the same inputs without master weights make 3664 bytes
        var bytes = ByteBuffer.wrap(Files.readAllBytes(file)).order(ByteOrder.LITTLE_ENDIAN);
        for (int i = 0; i < N; i++) assertEquals(master[i], bytes.getFloat(1024 + 2 * N * 4 + 4 * i));

        float[] m2 = new float[N], v2 = new float[N], master2 = new float[N];
        var contents = TrainingStateFile.read(
                file, N, 1, 0, MemorySegment.ofArray(m2), MemorySegment.ofArray(v2), MemorySegment.ofArray(master2));
        assertEquals(header, contents.header());
        assertArrayEquals(m, m2);
        assertArrayEquals(v, v2);
        assertArrayEquals(master, master2);
        var loader = contents.loader(); // the tail is found after the master weights
        assertArrayEquals(new int[] {1, 0}, loader.shardOrder());
        assertArrayEquals(new int[] {2, 0, 3, 1}, loader.sampleOrder());
        assertArrayEquals(loaderState().rng().words(), loader.rng().words());

        // a model that keeps no master weights reads the rest and skips them
        Arrays.fill(m2, 0);
        var skipped = TrainingStateFile.read(file, N, 1, 0, MemorySegment.ofArray(m2), MemorySegment.ofArray(v2), null);
        assertTrue(skipped.header().masterWeights());
        assertArrayEquals(m, m2);
    }

    @Test
    void withoutALoaderTailTheMasterWeightsEndTheFile() throws Exception {
        var header = new TrainingStateFile.Header(2, 1, true, false, 4, 5, 6, 0, 7);
        Path file = dir.resolve("state.bin");
        TrainingStateFile.write(
                file,
                header,
                MemorySegment.ofArray(m),
                MemorySegment.ofArray(v),
                MemorySegment.ofArray(master),
                N,
                null);
        assertEquals(1024 + 3 * N * 4, Files.size(file));
        float[] master2 = new float[N];
        var contents = TrainingStateFile.read(
                file,
                N,
                2,
                1,
                MemorySegment.ofArray(new float[N]),
                MemorySegment.ofArray(new float[N]),
                MemorySegment.ofArray(master2));
        assertEquals(header, contents.header());
        assertNull(contents.loader());
        assertArrayEquals(master, master2);
    }

    @Test
    void aTruncatedMasterWeightsBlockIsAClearError() throws Exception {
        var header = new TrainingStateFile.Header(1, 0, true, false, 4, 5, 6, 0, 7);
        Path file = dir.resolve("state.bin");
        TrainingStateFile.write(
                file,
                header,
                MemorySegment.ofArray(m),
                MemorySegment.ofArray(v),
                MemorySegment.ofArray(master),
                N,
                null);
        byte[] bytes = Files.readAllBytes(file);
        Path truncated = dir.resolve("truncated.bin");
        Files.write(truncated, Arrays.copyOf(bytes, bytes.length - 6));
        var e = assertThrows(
                FileFormatException.class,
                () -> TrainingStateFile.read(
                        truncated,
                        N,
                        1,
                        0,
                        MemorySegment.ofArray(new float[N]),
                        MemorySegment.ofArray(new float[N]),
                        MemorySegment.ofArray(new float[N])));
        assertEquals(
                truncated + ": master weights (header[4] = 1): expected " + N + " floats (" + 4 * N
                        + " bytes) at offset " + (1024 + 2 * N * 4) + ", found " + (4 * N - 6) + " bytes",
                e.getMessage());

        // m and v cut short: named as such
        Path shortMoments = dir.resolve("short.bin");
        Files.write(shortMoments, Arrays.copyOf(bytes, 1024 + N * 4));
        var moments = assertThrows(
                FileFormatException.class,
                () -> TrainingStateFile.read(
                        shortMoments,
                        N,
                        1,
                        0,
                        MemorySegment.ofArray(new float[N]),
                        MemorySegment.ofArray(new float[N]),
                        null));
        assertTrue(
                moments.getMessage().startsWith(shortMoments + ": AdamW m and v: expected 2 x " + N + " floats"),
                moments.getMessage());
        assertTrue(moments.getMessage().endsWith("found " + (1024 + N * 4) + " bytes"), moments.getMessage());
    }

    @Test
    void theHeaderFlagAndTheMasterWeightsMustAgree() {
        var says = new TrainingStateFile.Header(1, 0, true, false, 4, 0, 0, 0, 0);
        var mv = MemorySegment.ofArray(m);
        assertThrows(
                IllegalArgumentException.class,
                () -> TrainingStateFile.write(dir.resolve("x.bin"), says, mv, mv, null, N, null));
        var saysNot = new TrainingStateFile.Header(1, 0, false, false, 4, 0, 0, 0, 0);
        assertThrows(
                IllegalArgumentException.class,
                () -> TrainingStateFile.write(dir.resolve("y.bin"), saysNot, mv, mv, mv, N, null));
        assertFalse(Files.exists(dir.resolve("x.bin")));
    }

    @Test
    void aFileWithoutMasterWeightsSaysSo() throws Exception {
        Path file = dir.resolve("state.bin");
        TrainingStateFile.write(
                file,
                new TrainingStateFile.Header(1, 0, false, false, 4, 0, 0, 0, 0),
                MemorySegment.ofArray(m),
                MemorySegment.ofArray(v),
                null,
                N,
                null);
        float[] master2 = new float[N];
        var contents = TrainingStateFile.read(
                file,
                N,
                1,
                0,
                MemorySegment.ofArray(new float[N]),
                MemorySegment.ofArray(new float[N]),
                MemorySegment.ofArray(master2));
        assertFalse(contents.header().masterWeights());
        assertArrayEquals(new float[N], master2, "left untouched");
    }
}
