package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import org.junit.jupiter.api.Test;

class LaunchTest {

    @Test
    void ceilDiv() {
        assertEquals(0, Launch.ceilDiv(0, 512));
        assertEquals(1, Launch.ceilDiv(1, 512));
        assertEquals(1, Launch.ceilDiv(512, 512));
        assertEquals(2, Launch.ceilDiv(513, 512));
        assertEquals(3L * 1024 * 1024 * 1024, Launch.ceilDiv(3L * 1024 * 1024 * 1024 * 7, 7));
        assertThrows(IllegalArgumentException.class, () -> Launch.ceilDiv(5, 0));
        assertThrows(IllegalArgumentException.class, () -> Launch.ceilDiv(-1, 4));
    }

    @Test
    void gridStrideCoversRaggedSizesAndIsCapped() {
        assertEquals(1, Launch.gridStride(0, 512).x()); // never an empty grid
        assertEquals(1, Launch.gridStride(1, 512).x());
        assertEquals(2, Launch.gridStride(513, 512).x());
        assertEquals(384, Launch.gridStride(4L * 64 * 768, 512).x()); // B=4, T=64, C=768: 196608 / 512
        // d12's wte (50304 x 768 = 38.6M) would need 75,456 blocks; grid-stride kernels loop instead
        assertEquals(
                Launch.MAX_GRID_STRIDE_BLOCKS,
                Launch.gridStride(50304L * 768, 512).x());
        // threads always cover n, or the grid is capped and the kernel loops
        for (long n : new long[] {1, 31, 32, 33, 1000, 12345, 1 << 20}) {
            var g = Launch.gridStride(n, 256);
            assertTrue((long) g.x() * 256 >= n, "n=" + n);
            assertTrue((long) (g.x() - 1) * 256 < n, "no idle block for n=" + n);
        }
    }

    @Test
    void oneWarpPerRow() {
        // 256 threads = 8 rows per block
        assertEquals(1, Launch.warpPerRow(1, 256).x());
        assertEquals(1, Launch.warpPerRow(8, 256).x());
        assertEquals(2, Launch.warpPerRow(9, 256).x());
        assertEquals(32, Launch.warpPerRow(4 * 64, 256).x()); // B=4, T=64
        assertEquals(2048, Launch.warpPerRow(16 * 1024, 256).x()); // B=16, T=1024
        assertEquals(24576, Launch.warpPerRow(16L * 12 * 1024, 256).x()); // attention rows B*NH*T
        assertThrows(IllegalArgumentException.class, () -> Launch.warpPerRow(10, 100));
    }

    @Test
    void rowChunksDependOnlyOnRowsAndCoverEveryRow() {
        for (int rows : new int[] {1, 7, 64, 255, 256, 257, 1000, 4 * 64, 16 * 1024, 64 * 1024, 65537}) {
            int per = Launch.rowsPerChunk(rows), chunks = Launch.rowChunks(rows);
            assertTrue(chunks <= Launch.MAX_ROW_CHUNKS, "rows=" + rows);
            assertTrue((long) per * chunks >= rows, "covers rows=" + rows);
            assertTrue((long) per * (chunks - 1) < rows, "no empty chunk, rows=" + rows);
        }
        assertEquals(64, Launch.rowsPerChunk(16 * 1024));
        assertEquals(256, Launch.rowChunks(16 * 1024));
        assertEquals(1, Launch.rowsPerChunk(100));
        assertEquals(100, Launch.rowChunks(100));
    }

    @Test
    void flashAttentionGridIsTilesHeadsBatch() {
        assertEquals(new Launch.Dim3(16, 12, 4), Launch.flashAttention(4, 1024, 12));
        assertEquals(new Launch.Dim3(1, 12, 4), Launch.flashAttention(4, 64, 12));
        assertEquals(new Launch.Dim3(2, 2, 1), Launch.flashAttention(1, 65, 2)); // ragged: 64 + 1
        assertEquals(new Launch.Dim3(4, 3, 2), Launch.flashAttention(2, 200, 3));
    }

    @Test
    void dim3() {
        assertEquals(6, Launch.Dim3.of(1, 2, 3).threads());
        assertEquals("(4,1,1)", Launch.Dim3.of(4).toString());
        assertThrows(IllegalArgumentException.class, () -> Launch.Dim3.of(0));
    }
}
