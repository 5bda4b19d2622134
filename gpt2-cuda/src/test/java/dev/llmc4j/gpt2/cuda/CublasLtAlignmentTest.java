package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The alignments cuBLASLt's heuristic is told about (and that key its algorithm cache). */
class CublasLtAlignmentTest {

    @Test
    void alignmentIsTheLargestPowerOfTwoThatDividesTheAddressCappedAt256() {
        assertEquals(256, CublasLt.alignment(0x7f0000000000L));
        assertEquals(256, CublasLt.alignment(4096));
        assertEquals(128, CublasLt.alignment(0x7f0000000080L));
        assertEquals(2, CublasLt.alignment(0x7f0000000002L));
        assertEquals(256, CublasLt.alignment(0));
    }

    @Test
    void d48BiasSlicesAreOnly128ByteAligned() {
        // GPT-2 d48: C = 1600, bf16: layer l's bias starts l * 1600 * 2 = l * 3200 bytes into a 256-aligned tensor
        long base = 1L << 32;
        assertEquals(256, CublasLt.alignment(base));
        assertEquals(128, CublasLt.alignment(base + 3200));
        var aligned = CublasLt.Alignments.of(base, base, base, base);
        var slice = CublasLt.Alignments.of(base, base, base, base + 3200);
        assertEquals(new CublasLt.Alignments(256, 256, 256, 256), aligned);
        assertEquals(new CublasLt.Alignments(256, 256, 256, 128), slice);
        assertEquals(0, CublasLt.Alignments.of(base, base, base, 0).bias());
    }
}
