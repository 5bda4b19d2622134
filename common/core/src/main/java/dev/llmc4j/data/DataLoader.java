package dev.llmc4j.data;

import dev.llmc4j.format.TokenShard;
import dev.llmc4j.random.MersenneTwister;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.stream.Stream;

/**
 * llm.c's {@code dataloader.h}, sample for sample: the same batches in the same order for the same shards, batch
 * size, sequence length, rank and process count, shuffled or not.
 *
 * <p>Layout. A shard of ntok tokens holds {@code (ntok - 1) / (P*B*T)} samples (P = number of processes). Sample
 * s of rank r is the B*T+1 tokens starting at token {@code s*P*B*T + r*B*T}: inputs are the first B*T, targets the
 * same window shifted by one. The "-1" keeps the last target inside the shard.
 *
 * <p>Shuffling. One Mersenne Twister seeded 42+rank draws every permutation, in this order: at each reset (start
 * and every new epoch) the shard order (permuted in place, not reset to identity first), then, each time a shard
 * is loaded, a fresh sample order for that shard (identity, then permuted). A permutation is Fisher-Yates from the
 * back: for i = n-1 down to 1, j = randInt32 % (i+1), swap i and j.
 *
 * <p>Not thread-safe. Owns the shard mappings: close it to unmap them.
 */
public final class DataLoader implements AutoCloseable {
    private final int batchSize; // B
    private final int seqLen; // T
    private final int rank; // r
    private final int numProcesses; // P
    private final boolean shuffle;
    private final int vocabSize;
    private final long tokensPerStep; // P*B*T: how far one sample index moves in a shard

    private final Arena arena = Arena.ofShared();
    private final TokenShard[] shards; // in sorted glob order
    private final long numTokens; // over all shards

    private final MersenneTwister rng;
    private final int[] shardOrder; // position in epoch -> shard index (identity unless shuffling)
    private int[] sampleOrder; // position in shard -> sample index (shuffling only)

    private int shardPosition; // llm.c current_shard_idx
    private long samplePosition; // llm.c current_sample_idx
    private TokenShard currentShard;
    private long shardNumSamples;

    private final int[] window; // B*T+1 tokens of the current sample
    private final int[] inputs; // (B, T)
    private final int[] targets; // (B, T)

    /**
     * @param patterns one or more files or globs in the file-name part ({@code data/tinyshakespeare/*_train.bin});
     *                 each pattern's matches are sorted by name and the lists are concatenated
     * @param vocabSize token ids must be below it (checked for every shard when it is opened, and every batch)
     */
    public DataLoader(
            List<String> patterns,
            int batchSize,
            int seqLen,
            int rank,
            int numProcesses,
            boolean shuffle,
            int vocabSize) {
        if (batchSize <= 0 || seqLen <= 0)
            throw new LlmcException(
                    "batch size and sequence length must be positive, got B=" + batchSize + " T=" + seqLen);
        if (numProcesses <= 0 || rank < 0 || rank >= numProcesses) {
            throw new LlmcException("process rank " + rank + " must be in 0.." + (numProcesses - 1));
        }
        if ((long) batchSize * seqLen + 1 > Integer.MAX_VALUE - 8)
            throw new LlmcException("B*T too large: " + batchSize + "*" + seqLen);
        this.batchSize = batchSize;
        this.seqLen = seqLen;
        this.rank = rank;
        this.numProcesses = numProcesses;
        this.shuffle = shuffle;
        this.vocabSize = vocabSize;
        this.tokensPerStep = (long) numProcesses * batchSize * seqLen;

        List<Path> files = expand(patterns);
        // open and validate every shard up front, so a bad shard fails at start, not hours into training
        shards = new TokenShard[files.size()];
        long total = 0;
        try {
            for (int i = 0; i < shards.length; i++) {
                shards[i] = TokenShard.open(files.get(i), arena);
                shards[i].checkTokensBelow(vocabSize); // the whole shard, so a bad id fails now, not hours in
                long needed = tokensPerStep + 1;
                if (shards[i].numTokens() < needed) {
                    throw new LlmcException(
                            "%s: too few tokens for one batch: needs at least %d (processes %d x B %d x T %d + 1), found %d"
                                    .formatted(
                                            files.get(i),
                                            needed,
                                            numProcesses,
                                            batchSize,
                                            seqLen,
                                            shards[i].numTokens()));
                }
                total += shards[i].numTokens();
            }
        } catch (RuntimeException e) {
            arena.close();
            throw e;
        }
        numTokens = total;

        rng = new MersenneTwister(42 + rank);
        shardOrder = new int[shards.length];
        for (int i = 0; i < shardOrder.length; i++) shardOrder[i] = i;
        window = new int[batchSize * seqLen + 1];
        inputs = new int[batchSize * seqLen];
        targets = new int[batchSize * seqLen];
        reset();
    }

    /** One pattern, as llm.c takes it. */
    public DataLoader(
            String pattern, int batchSize, int seqLen, int rank, int numProcesses, boolean shuffle, int vocabSize) {
        this(List.of(pattern), batchSize, seqLen, rank, numProcesses, shuffle, vocabSize);
    }

    /** Back to the first sample of the first shard; when shuffling, a new shard order (a new epoch). */
    public void reset() {
        shardPosition = 0;
        samplePosition = 0;
        if (shuffle) permute(shardOrder, rng);
        loadShard(shardPosition);
        if (shuffle) newSampleOrder();
    }

    /** Fills {@link #inputs()} and {@link #targets()} with the next (B, T) batch. */
    public void nextBatch() {
        if (samplePosition >= shardNumSamples) advance();
        long sample = shuffle ? sampleOrder[(int) samplePosition] : samplePosition;
        long start = sample * tokensPerStep + (long) rank * batchSize * seqLen;
        currentShard.read(start, window, 0, window.length);
        for (int i = 0; i < window.length; i++) {
            if (window[i] < 0 || window[i] >= vocabSize) {
                throw new LlmcException("%s: token %d at position %d is outside the vocabulary (0..%d)"
                        .formatted(currentShard.file(), Integer.toUnsignedLong(window[i]), start + i, vocabSize - 1));
            }
        }
        System.arraycopy(window, 0, inputs, 0, inputs.length);
        System.arraycopy(window, 1, targets, 0, targets.length);
        samplePosition++;
    }

    /**
     * Continues at a given shard position and sample position (llm.c's {@code dataloader_resume}): the shard is
     * loaded again but no permutation is drawn. With shuffling, restore the permutations and the rng first
     * ({@link #restore(State, Path)} does all of it). {@code source} (the state file) names the fields in errors.
     */
    public void resume(int shardPosition, long samplePosition, Path source) {
        if (shardPosition < 0 || shardPosition >= shards.length) {
            throw new LlmcException("%s: shard position: expected 0..%d (the data has %d shards), found %d"
                    .formatted(source, shards.length - 1, shards.length, shardPosition));
        }
        this.shardPosition = shardPosition;
        loadShard(shardPosition);
        if (samplePosition < 0 || samplePosition > shardNumSamples) {
            throw new LlmcException("%s: sample position: expected 0..%d (the samples of %s), found %d"
                    .formatted(source, shardNumSamples, currentShard.file(), samplePosition));
        }
        this.samplePosition = samplePosition;
    }

    /** Everything needed to continue exactly: positions, permutations and the rng. */
    public record State(
            int shardPosition, long samplePosition, int[] shardOrder, int[] sampleOrder, MersenneTwister.State rng) {
        public State {
            shardOrder = shardOrder.clone();
            sampleOrder = sampleOrder == null ? null : sampleOrder.clone();
        }
    }

    public State state() {
        return new State(shardPosition, samplePosition, shardOrder, shuffle ? sampleOrder : null, rng.saveState());
    }

    /**
     * Continues exactly where {@code state} was saved; every field is checked against the data first (the shard
     * order and sample order must be permutations of these shards' indices, the rng position inside its words),
     * and a bad one is a one-line error naming {@code source}, the field, expected and found.
     */
    public void restore(State state, Path source) {
        if (state.shardOrder().length != shards.length) {
            throw new LlmcException("%s: number of shards: expected %d (the shards the pattern matches), found %d"
                    .formatted(source, shards.length, state.shardOrder().length));
        }
        if ((state.sampleOrder() != null) != shuffle) {
            throw new LlmcException("%s: shuffle flag: expected %s, found %s (the saved run was%s shuffled)"
                    .formatted(source, shuffle, !shuffle, shuffle ? " not" : ""));
        }
        checkPermutation(source, "shard order", state.shardOrder());
        var rngState = state.rng();
        int left = rngState.left(), next = rngState.next();
        if (left < 1
                || left > MersenneTwister.STATE_WORDS
                || next < 0
                || left + next > MersenneTwister.STATE_WORDS + 1) {
            throw new LlmcException(
                    "%s: mt19937 position (left, next): expected 1 <= left <= %d and left + next <= %d, found (%d, %d)"
                            .formatted(
                                    source, MersenneTwister.STATE_WORDS, MersenneTwister.STATE_WORDS + 1, left, next));
        }
        System.arraycopy(state.shardOrder(), 0, shardOrder, 0, shardOrder.length);
        rng.restoreState(rngState);
        resume(state.shardPosition(), state.samplePosition(), source);
        if (shuffle) {
            if (state.sampleOrder().length != shardNumSamples) {
                throw new LlmcException("%s: number of samples: expected %d (the samples of %s), found %d"
                        .formatted(source, shardNumSamples, currentShard.file(), state.sampleOrder().length));
            }
            checkPermutation(source, "sample order", state.sampleOrder());
            sampleOrder = state.sampleOrder();
        }
    }

    /** Each of 0..n-1 exactly once. */
    private static void checkPermutation(Path source, String field, int[] order) {
        var seen = new boolean[order.length];
        for (int i = 0; i < order.length; i++) {
            int value = order[i];
            if (value < 0 || value >= order.length || seen[value]) {
                throw new LlmcException("%s: %s[%d]: expected an index 0..%d not used before (a permutation), found %d"
                        .formatted(source, field, i, order.length - 1, value));
            }
            seen[value] = true;
        }
    }

    /** Inputs of the last batch, (B, T) row-major. The array is reused by the next call. */
    public int[] inputs() {
        return inputs;
    }

    /** Targets of the last batch: inputs shifted left by one token. */
    public int[] targets() {
        return targets;
    }

    public int batchSize() {
        return batchSize;
    }

    public int seqLen() {
        return seqLen;
    }

    public int numShards() {
        return shards.length;
    }

    public List<Path> shardFiles() {
        return Arrays.stream(shards).map(TokenShard::file).toList();
    }

    /** Tokens over all shards; llm.c prints numTokens / (B*T) as the dataset's "num_batches". */
    public long numTokens() {
        return numTokens;
    }

    public int shardPosition() {
        return shardPosition;
    }

    public long samplePosition() {
        return samplePosition;
    }

    /** Samples (batches for this rank) in the shard being read. */
    public long shardNumSamples() {
        return shardNumSamples;
    }

    @Override
    public void close() {
        arena.close();
    }

    // next shard, or a new epoch after the last one
    private void advance() {
        if (shardPosition == shards.length - 1) {
            reset();
            return;
        }
        shardPosition++;
        samplePosition = 0;
        loadShard(shardPosition);
        if (shuffle) newSampleOrder();
    }

    private void loadShard(int position) {
        currentShard = shards[shuffle ? shardOrder[position] : position];
        shardNumSamples = (currentShard.numTokens() - 1) / tokensPerStep;
    }

    private void newSampleOrder() {
        if (shardNumSamples > Integer.MAX_VALUE - 8)
            throw new LlmcException(currentShard.file() + ": too many samples to shuffle");
        sampleOrder = new int[(int) shardNumSamples];
        for (int i = 0; i < sampleOrder.length; i++) sampleOrder[i] = i;
        permute(sampleOrder, rng);
    }

    /** Fisher-Yates from the back, llm.c's {@code random_permutation}: j = randInt32 % (i+1). */
    static void permute(int[] values, MersenneTwister rng) {
        for (int i = values.length - 1; i > 0; i--) {
            int j = (int) (rng.randInt32() % (i + 1));
            int swap = values[i];
            values[i] = values[j];
            values[j] = swap;
        }
    }

    /** Expands file names and globs (in the file-name part), each pattern's matches sorted, like glob(3). */
    public static List<Path> expand(List<String> patterns) {
        if (patterns.isEmpty()) throw new LlmcException("no data files given");
        var files = new ArrayList<Path>();
        for (String pattern : patterns) {
            Path path = Path.of(pattern);
            String name =
                    path.getFileName() == null ? pattern : path.getFileName().toString();
            boolean isGlob = name.chars().anyMatch(c -> c == '*' || c == '?' || c == '[' || c == '{');
            if (!isGlob) {
                if (!Files.isRegularFile(path)) throw new LlmcException("data file not found: " + pattern);
                files.add(path);
                continue;
            }
            Path folder = path.getParent() == null ? Path.of(".") : path.getParent();
            var matcher = FileSystems.getDefault().getPathMatcher("glob:" + name);
            List<Path> matches;
            try (Stream<Path> listing = Files.list(folder)) {
                matches = listing.filter(p -> Files.isRegularFile(p) && matcher.matches(p.getFileName()))
                        .sorted()
                        .toList();
            } catch (IOException e) {
                throw new LlmcException("no files match " + pattern + " (" + e.getMessage() + ")");
            }
            if (matches.isEmpty()) throw new LlmcException("no files match " + pattern);
            files.addAll(
                    path.getParent() == null
                            ? matches.stream().map(Path::getFileName).toList()
                            : matches);
        }
        return files;
    }
}
