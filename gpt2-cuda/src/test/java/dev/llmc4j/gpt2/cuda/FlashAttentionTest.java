package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.llmc4j.util.LlmcException;
import org.junit.jupiter.api.Test;

/** CPU-side facts about the flash kernels: shared memory budgets and names. */
class FlashAttentionTest {

    @Test
    void sharedMemoryForHeadSize64InBf16() {
        // forward: Q,K,V 3*64*64*2 = 24576; per warp 16*64*4 + 16*64*2 + 16*64*4 + 256 = 10496; x4 = 41984
        assertEquals(24576 + 41984, FlashAttention.forwardSharedBytes(64, 2));
        // dK/dV: 4 tiles 32768 + lse/D 512; per warp 4096 + 4096 + 2*2048 = 12288; x4 = 49152
        assertEquals(32768 + 512 + 49152, FlashAttention.backwardDkDvSharedBytes(64, 2));
        // dQ: 33280 + 4 * (4096 + 4096 + 2048)
        assertEquals(33280 + 40960, FlashAttention.backwardDqSharedBytes(64, 2));
    }

    @Test
    void everySupportedHeadSizeFitsAnA100() {
        int a100OptIn = 163 * 1024; // the smaller of the two targets (H100: 227 KiB)
        for (int hs : new int[] {64, 96, 128}) {
            assertTrue(FlashAttention.forwardSharedBytes(hs, 2) <= a100OptIn, "fwd hs=" + hs);
            assertTrue(FlashAttention.backwardDkDvSharedBytes(hs, 2) <= a100OptIn, "dkdv hs=" + hs);
            assertTrue(FlashAttention.backwardDqSharedBytes(hs, 2) <= a100OptIn, "dq hs=" + hs);
            // every carved buffer must keep 32-byte alignment for wmma
            assertEquals(0, FlashAttention.forwardSharedBytes(hs, 2) % 32);
            assertEquals(0, FlashAttention.backwardDkDvSharedBytes(hs, 2) % 32);
            assertEquals(0, FlashAttention.backwardDqSharedBytes(hs, 2) % 32);
        }
    }

    @Test
    void namesAndHeadSizes() {
        assertEquals("flash_attention_forward_bf16_hs64", CudaKernels.flashForward(Precision.BF16, 64));
        assertEquals("flash_attention_backward_dkdv_f16_hs128", CudaKernels.flashBackwardDkDv(Precision.FP16, 128));
        assertEquals("flash_attention_backward_dq_bf16_hs96", CudaKernels.flashBackwardDq(Precision.BF16, 96));
        assertEquals("flash_attention_backward_preprocess_bf16", CudaKernels.flashPreprocess(Precision.BF16));
        assertTrue(FlashAttention.supportsHeadSize(64));
        assertFalse(FlashAttention.supportsHeadSize(32));
        var e = assertThrows(LlmcException.class, () -> FlashAttention.checkHeadSize(80));
        assertTrue(e.getMessage().contains("64, 96 and 128"), e.getMessage());
    }
}
