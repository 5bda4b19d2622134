package dev.llmc4j.llama3;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import org.junit.jupiter.api.Test;

class Llama3ConfigTest {
    /** The small config of reference/make_llama3_fixtures.sh. */
    static final Llama3Config SMALL = new Llama3Config(128, 512, 2, 4, 2, 64, 1.3f, 32, 1e-5f, 500000f, true, 3, 1);

    @Test
    void ffnHiddenFollowsMetasRule() {
        assertEquals(14336, Llama3Config.LLAMA_3_1_8B.ffnHidden());
        assertEquals(8192, Llama3Config.LLAMA_3_2_1B.ffnHidden());
        assertEquals(8192, Llama3Config.LLAMA_3_2_3B.ffnHidden());
        // 4*64=256 -> int(512/3)=170 -> int(1.3*170)=221 -> 224
        assertEquals(224, SMALL.ffnHidden());
    }

    @Test
    void shapesOfTheReleasedModels() {
        var b8 = Llama3Config.LLAMA_3_1_8B;
        assertEquals(128, b8.headSize());
        assertEquals(4, b8.kvGroupSize());
        assertEquals(6144, b8.qkvRows());
        // 8.03 B parameters, lm_head separate
        assertEquals(8_030_261_248L, b8.numTrainableParameters());
        // Llama 3.2 1B: 1.236 B with the tied embedding counted once, plus a 262 M copy for lm_head
        var b1 = Llama3Config.LLAMA_3_2_1B;
        assertEquals(1_235_814_400L + 128256L * 2048, b1.numTrainableParameters());
    }

    @Test
    void parameterSizesAndOffsets() {
        long[] sizes = SMALL.parameterSizes();
        long[] expected = {
            512 * 64,
            512 * 64,
            2 * 64,
            2 * 64,
            2 * 128 * 64,
            2 * 128,
            2 * 64 * 64,
            2 * 64,
            2 * 64,
            2 * 64,
            2 * 2 * 224 * 64,
            2 * 2 * 224,
            2 * 64 * 224,
            2 * 64,
            64,
            64
        };
        assertArrayEquals(expected, sizes);
        long[] offsets = SMALL.parameterOffsets();
        assertEquals(0, offsets[0]);
        assertEquals(sizes[0] + sizes[1], offsets[2]);
        long total = 0;
        for (long s : sizes) total += s;
        assertEquals(total, SMALL.numParameters());
        assertEquals(16, Llama3Config.PARAMETER_NAMES.length);
    }

    @Test
    void namesAndValidation() {
        assertSame(Llama3Config.LLAMA_3_1_8B, Llama3Config.fromName("3.1-8B"));
        assertSame(Llama3Config.LLAMA_3_2_1B, Llama3Config.fromName("llama3.2-1b"));
        assertSame(Llama3Config.LLAMA_3_2_3B, Llama3Config.fromName("Llama3.2_3B"));
        var e = assertThrows(LlmcException.class, () -> Llama3Config.fromName("3-70B"));
        assertTrue(e.getMessage().contains("3-70B"));
        assertThrows(
                LlmcException.class, () -> new Llama3Config(128, 512, 2, 4, 3, 64, 1f, 32, 1e-5f, 5e5f, true, 3, 1));
        assertThrows(
                LlmcException.class, () -> new Llama3Config(128, 512, 2, 5, 5, 64, 1f, 32, 1e-5f, 5e5f, true, 3, 1));
    }
}
