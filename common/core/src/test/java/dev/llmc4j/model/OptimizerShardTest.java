package dev.llmc4j.model;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import java.util.List;
import org.junit.jupiter.api.Test;

class OptimizerShardTest {

    static final GPT2Config SMALL = new GPT2Config(64, 96, 128, 2, 4, 32);

    @Test
    void gpt2SlicesAreEveryLayerOfEveryTensorInParameterOrder() {
        List<ParameterSlice> slices = SMALL.parameterSlices();
        assertEquals(12 * 2 + 4, slices.size());
        long offset = 0;
        for (var slice : slices) {
            assertEquals(offset, slice.offset(), "slices are contiguous");
            offset += slice.count();
        }
        assertEquals(SMALL.numParameters(), offset);
        assertEquals(128L * 32, slices.get(0).count(), "wte");
        assertEquals(64L * 32, slices.get(1).count(), "wpe");
        assertEquals(32, slices.get(2).count(), "ln1w of layer 0");
        assertEquals(
                SMALL.parameterOffset(4) + 3L * 32 * 32,
                slices.get(2 * 2 + 2 + 1).offset(),
                "qkvw of layer 1");
    }

    @Test
    void piecesOfAllRanksCoverEveryParameterOnceAndStateIsInLlmcOrder() {
        int P = 4;
        long N = SMALL.numParameters();
        int[] owner = new int[(int) N];
        java.util.Arrays.fill(owner, -1);
        for (int rank = 0; rank < P; rank++) {
            var shard = OptimizerShard.of(SMALL.parameterSlices(), rank, P);
            assertEquals(N / P, shard.count());
            long state = 0;
            for (var piece : shard.pieces()) {
                assertEquals(state, piece.stateOffset(), "a rank's pieces are packed one after the other");
                state += piece.count();
                var slice = SMALL.parameterSlices().get(piece.slice());
                assertEquals(
                        slice.offset() + rank * slice.count() / P, piece.parameterOffset(), "piece r of its slice");
                for (long i = piece.parameterOffset(); i < piece.parameterOffset() + piece.count(); i++) {
                    assertEquals(-1, owner[(int) i], "parameter " + i + " owned twice");
                    owner[(int) i] = rank;
                }
            }
        }
        for (long i = 0; i < N; i++) assertTrue(owner[(int) i] >= 0, "parameter " + i + " owned by nobody");
        // llm.c's state offset of (tensor, layer l, element j) on rank r: tensorOffset/P + l*pieceSize + j
        var rank2 = OptimizerShard.of(SMALL.parameterSlices(), 2, P);
        var qkvwLayer1 = rank2.pieces().get(2 + 2 * 2 + 1); // wte, wpe, ln1w x2, ln1b x2, qkvw layer 0, qkvw layer 1
        long piece = 3L * 32 * 32 / P;
        assertEquals(SMALL.parameterOffset(4) / P + 1 * piece, qkvwLayer1.stateOffset());
    }

    @Test
    void unevenSlicesAreNamed() {
        assertTrue(OptimizerShard.splitsEvenly(SMALL.parameterSlices(), 2));
        assertFalse(OptimizerShard.splitsEvenly(SMALL.parameterSlices(), 3));
        var error = assertThrows(LlmcException.class, () -> OptimizerShard.of(SMALL.parameterSlices(), 0, 3));
        assertTrue(error.getMessage().contains("does not split evenly over 3 processes"), error.getMessage());
    }

    @Test
    void wholeIsOnePieceOfEverything() {
        var whole = OptimizerShard.whole(1000);
        assertTrue(whole.isWhole());
        assertEquals(List.of(new OptimizerShard.Piece(0, 0, 1000, 0)), whole.pieces());
    }

    @Test
    void runsCutThePiecesAtTensorBoundaries() {
        long[] sizes = SMALL.parameterSizes();
        var whole = OptimizerShard.whole(SMALL.numParameters()).runs(sizes);
        assertEquals(16, whole.size(), "the whole model: one run per tensor");
        for (int tensor = 0; tensor < 16; tensor++) {
            var run = whole.get(tensor);
            assertEquals(
                    new OptimizerShard.Run(
                            tensor, SMALL.parameterOffset(tensor), sizes[tensor], SMALL.parameterOffset(tensor), 0),
                    run);
        }
        var shard = OptimizerShard.of(SMALL.parameterSlices(), 1, 2);
        var runs = shard.runs(sizes);
        assertEquals(shard.pieces().size(), runs.size(), "a slice never spans two tensors");
        for (int i = 0; i < runs.size(); i++) {
            var run = runs.get(i);
            var piece = shard.pieces().get(i);
            assertEquals(piece.parameterOffset(), run.parameterOffset());
            assertEquals(piece.stateOffset(), run.stateOffset());
            long start = SMALL.parameterOffset(run.tensor());
            assertTrue(run.parameterOffset() >= start
                    && run.parameterOffset() + run.count() <= start + sizes[run.tensor()]);
            assertEquals(run.parameterOffset() - start, run.indexInTensor());
        }
        // a piece across a tensor boundary (the CPU's shards may do that) is cut in two
        var across = new OptimizerShard(0, 2, List.of(new OptimizerShard.Piece(0, sizes[0] - 5, 10, 0)), 10);
        assertEquals(
                List.of(
                        new OptimizerShard.Run(0, sizes[0] - 5, 5, 0, sizes[0] - 5),
                        new OptimizerShard.Run(1, sizes[0], 5, 5, 0)),
                across.runs(sizes));
    }
}
