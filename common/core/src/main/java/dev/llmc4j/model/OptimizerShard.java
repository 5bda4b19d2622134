package dev.llmc4j.model;

import dev.llmc4j.util.LlmcException;
import java.util.ArrayList;
import java.util.List;

/**
 * Which parameters' AdamW state one process keeps, and updates: all of them (ZeRO-0), or under ZeRO-1 its 1/P of
 * every parameter slice, cut llm.c's way. A slice is one layer of one parameter tensor (wte, wpe, lnfw and lnfb are
 * one slice each); each slice is cut into P equal pieces and rank r owns piece r of every slice:
 * <pre>
 *   slice of c parameters at offset o:   [ rank 0: o .. o+c/P | rank 1: o+c/P .. o+2c/P | ... ]
 *   rank r's moments (m, v and the fp32 master weights on a GPU): its pieces one after the other, N/P floats
 * </pre>
 * That order is the one llm.c's state files hold under ZeRO-1, and the layout NCCL's in-place reduce-scatter and
 * all-gather work on: after a reduce-scatter of a slice, rank r's averaged piece sits at o + r·c/P. Every slice must
 * split evenly (llm.c's rule); {@link #splitsEvenly} says whether it does.
 *
 * @param rank          this process
 * @param numProcesses  P (1: the whole model, ZeRO-0)
 * @param pieces        this rank's pieces, in parameter order
 * @param count         their total: the number of floats in m (and v)
 */
public record OptimizerShard(int rank, int numProcesses, List<Piece> pieces, long count) {

    /**
     * Parameters [parameterOffset, parameterOffset + count) of slice {@code slice}, whose moments are this rank's
     * [stateOffset, stateOffset + count).
     */
    public record Piece(int slice, long parameterOffset, long count, long stateOffset) {}

    /**
     * Parameters [parameterOffset, parameterOffset + count) of tensor {@code tensor}, starting at element
     * {@code indexInTensor} of it, with moments at [stateOffset, stateOffset + count): what one AdamW call updates
     * (weight decay, and a GPU's rounding seed, go per tensor).
     */
    public record Run(int tensor, long parameterOffset, long count, long stateOffset, long indexInTensor) {}

    public OptimizerShard {
        pieces = List.copyOf(pieces);
    }

    /**
     * This shard's pieces cut at the tensor boundaries, in parameter order: the whole model gives one run per tensor,
     * a ZeRO-1 shard one per piece (a slice never spans two tensors).
     *
     * @param tensorSizes the sizes of the parameter tensors, in order (GPT-2: {@code GPT2Config.parameterSizes()})
     */
    public List<Run> runs(long[] tensorSizes) {
        var runs = new ArrayList<Run>();
        for (Piece piece : pieces) {
            long pieceStart = piece.parameterOffset(), pieceEnd = pieceStart + piece.count();
            long tensorStart = 0;
            for (int tensor = 0; tensor < tensorSizes.length; tensor++) {
                long tensorEnd = tensorStart + tensorSizes[tensor];
                long start = Math.max(pieceStart, tensorStart), end = Math.min(pieceEnd, tensorEnd);
                if (start < end)
                    runs.add(new Run(
                            tensor,
                            start,
                            end - start,
                            piece.stateOffset() + (start - pieceStart),
                            start - tensorStart));
                tensorStart = tensorEnd;
            }
        }
        return runs;
    }

    /** ZeRO-0: one process keeps the state of every parameter (one piece, moments in parameter order). */
    public static OptimizerShard whole(long numParameters) {
        return new OptimizerShard(0, 1, List.of(new Piece(0, 0, numParameters, 0)), numParameters);
    }

    /** True when every slice splits into numProcesses equal pieces. */
    public static boolean splitsEvenly(List<ParameterSlice> slices, int numProcesses) {
        return slices.stream().allMatch(s -> s.count() % numProcesses == 0);
    }

    /** Rank {@code rank}'s pieces of every slice (ZeRO-1). */
    public static OptimizerShard of(List<ParameterSlice> slices, int rank, int numProcesses) {
        if (numProcesses < 1 || rank < 0 || rank >= numProcesses)
            throw new IllegalArgumentException("rank " + rank + " of " + numProcesses);
        var pieces = new ArrayList<Piece>(slices.size());
        long state = 0;
        for (int i = 0; i < slices.size(); i++) {
            ParameterSlice slice = slices.get(i);
            if (slice.count() % numProcesses != 0)
                throw new LlmcException(
                        "ZeRO-1: parameter slice %d (%d floats at offset %d) does not split evenly over %d processes"
                                .formatted(i, slice.count(), slice.offset(), numProcesses));
            long piece = slice.count() / numProcesses;
            pieces.add(new Piece(i, slice.offset() + rank * piece, piece, state));
            state += piece;
        }
        return new OptimizerShard(rank, numProcesses, pieces, state);
    }

    /** This shard, after checking that every piece lies inside a model of {@code numParameters} floats. */
    public OptimizerShard requireWithin(long numParameters) {
        for (var piece : pieces)
            if (piece.parameterOffset() < 0 || piece.parameterOffset() + piece.count() > numParameters)
                throw new IllegalArgumentException(
                        "piece %s outside the %d parameters".formatted(piece, numParameters));
        return this;
    }

    /** Whether this is the whole model (ZeRO-0 or one process). */
    public boolean isWhole() {
        return numProcesses == 1;
    }
}
