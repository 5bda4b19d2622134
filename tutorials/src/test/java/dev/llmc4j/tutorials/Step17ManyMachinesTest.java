package dev.llmc4j.tutorials;

import static dev.llmc4j.tutorials.Tensors.doubles;
import static dev.llmc4j.tutorials.Tensors.relativeError;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.testing.RandomTokens;
import dev.llmc4j.tutorials.step17.RingAllReduce;
import dev.llmc4j.tutorials.step17.Zero1;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * Step 17: the ring's two halves, ZeRO-1 built from them (shard sizes, global norm, the same steps as one process),
 * P simulated ranks of a tiny GPT-2 against one process on the whole batch, and the page's figures.
 */
class Step17ManyMachinesTest {

    static double[] random(int n, long seed) {
        var random = new Random(seed);
        double[] values = new double[n];
        for (int i = 0; i < n; i++) values[i] = random.nextGaussian();
        return values;
    }

    static double[][] randomRanks(int P, int N, long seed) {
        double[][] ranks = new double[P][];
        for (int r = 0; r < P; r++) ranks[r] = random(N, seed + r);
        return ranks;
    }

    @Test
    void ringAllReduceAveragesAndEachRankSendsTwoPMinusOneOverPOfTheVector() {
        for (int P : new int[] {2, 3, 4, 8}) {
            int N = 24 * P;
            double[][] ranks = randomRanks(P, N, 0);
            double[] mean = new double[N];
            for (int r = 0; r < P; r++) for (int i = 0; i < N; i++) mean[i] += ranks[r][i] / P;
            long sent = RingAllReduce.allReduceMean(ranks);
            for (int r = 0; r < P; r++) assertArrayEquals(mean, ranks[r], 1e-12, "rank " + r + " of " + P);
            assertEquals(2L * (P - 1) * N / P, sent, "numbers sent per rank, P = " + P);
        }
    }

    @Test
    void reduceScatterLeavesEachRankTheSumOfOneChunkAndAllGatherSpreadsThem() {
        int P = 4, N = 4 * 6, chunk = N / P;
        double[][] ranks = randomRanks(P, N, 7);
        double[] sum = new double[N];
        for (double[] rank : ranks) for (int i = 0; i < N; i++) sum[i] += rank[i];
        assertEquals((long) (P - 1) * chunk, RingAllReduce.reduceScatter(ranks));
        boolean[] owned = new boolean[P];
        for (int r = 0; r < P; r++) {
            int c = RingAllReduce.ownedChunk(r, P);
            owned[c] = true;
            assertArrayEquals(
                    Arrays.copyOfRange(sum, c * chunk, (c + 1) * chunk),
                    Arrays.copyOfRange(ranks[r], c * chunk, (c + 1) * chunk),
                    1e-12,
                    "rank " + r + "'s chunk " + c);
            // and only that one: the chunk before it is a partial sum
            int before = Math.floorMod(c - 1, P);
            assertTrue(Math.abs(ranks[r][before * chunk] - sum[before * chunk]) > 1e-9, "a partial sum, rank " + r);
        }
        for (boolean chunkOwned : owned) assertTrue(chunkOwned, "every chunk has exactly one owner");
        assertEquals((long) (P - 1) * chunk, RingAllReduce.allGather(ranks));
        for (int r = 0; r < P; r++) assertArrayEquals(sum, ranks[r], 1e-12, "rank " + r + " after the all-gather");
    }

    /** Plain AdamW on the mean gradient, clipped to maxNorm, no sharding: what ZeRO-1 must reproduce. */
    static double plainAdamW(double[] p, double[] m, double[] v, double[] meanGrad, int t, double maxNorm) {
        double norm = 0;
        for (double g : meanGrad) norm += g * g;
        norm = Math.sqrt(norm);
        double scale = norm > maxNorm ? maxNorm / norm : 1.0;
        for (int i = 0; i < p.length; i++) {
            double g = meanGrad[i] * scale;
            m[i] = 0.9 * m[i] + 0.1 * g;
            v[i] = 0.95 * v[i] + 0.05 * g * g;
            double mHat = m[i] / (1 - Math.pow(0.9, t)), vHat = v[i] / (1 - Math.pow(0.95, t));
            p[i] -= 1e-2 * (mHat / (Math.sqrt(vHat) + 1e-8) + 0.1 * p[i]);
        }
        return norm;
    }

    @Test
    void zero1TrainsExactlyLikeAdamWOnTheAveragedGradientWithAPthOfTheMoments() {
        int P = 4, N = 32;
        double[] initial = random(N, 42);
        var zero1 = new Zero1(initial, P);
        for (int r = 0; r < P; r++) {
            assertEquals(N / P, zero1.firstMomentsOnRank(r), "m on rank " + r + ": its chunk only, not all N");
            assertEquals(N / P, zero1.secondMomentsOnRank(r), "v on rank " + r);
        }
        double[] p = initial.clone(), m = new double[N], v = new double[N];
        // maxNorm 1.5: the mean of 4 unit gaussians has norm about sqrt(32 / 4) = 2.8, so every step clips
        for (int t = 1; t <= 3; t++) {
            double[][] grads = randomRanks(P, N, 100 * t);
            double[] mean = new double[N];
            for (double[] rankGrads : grads) for (int i = 0; i < N; i++) mean[i] += rankGrads[i] / P;
            double norm = plainAdamW(p, m, v, mean, t, 1.5);
            zero1.step(grads, 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.5);
            assertEquals(norm, zero1.lastGradientNorm(), 1e-12, "the global norm from the shards' all-reduce");
            assertTrue(norm > 1.5, "the test must exercise clipping: " + norm);
            for (int r = 0; r < P; r++) assertArrayEquals(p, zero1.parameters(r), 1e-12, "rank " + r + ", step " + t);
        }
        assertThrows(IllegalArgumentException.class, () -> new Zero1(new double[10], 4));
    }

    @Test
    void twoSimulatedRanksOfATinyGpt2TrainLikeOneProcessOnTheWholeBatch() {
        var config = new GPT2Config(16, 60, 64, 2, 2, 8);
        int P = 2, B = 4, T = 8, N = (int) config.numParameters();
        assertEquals(0, N % P, "the tiny model's parameters split evenly over 2 ranks");
        int[] x = RandomTokens.of(B * T, config.vocabSize(), 17), y = RandomTokens.of(B * T, config.vocabSize(), 18);
        int rows = B / P * T; // each rank reads B/P rows of the batch
        GPT2[] ranks = new GPT2[P];
        try (var single = GPT2.randomInit(config)) {
            for (int r = 0; r < P; r++) ranks[r] = GPT2.randomInit(config); // the same seed: the same initial weights
            double[] initial = doubles(single.parameters(), N);
            var one = new Zero1(initial, 1); // P = 1: one process, plain AdamW
            var sharded = new Zero1(initial, P);
            double worstGradient = 0, worstParameters = 0;
            for (int step = 1; step <= 3; step++) {
                load(single, one.parameters(0));
                single.zeroGrad();
                float fullLoss = single.forward(x, y, B, T);
                single.backward(1);
                double[] fullGradient = doubles(single.gradients(), N);
                double[][] rankGradients = new double[P][];
                float meanLoss = 0;
                for (int r = 0; r < P; r++) {
                    load(ranks[r], sharded.parameters(r));
                    ranks[r].zeroGrad();
                    meanLoss += ranks[r].forward(
                                    Arrays.copyOfRange(x, r * rows, (r + 1) * rows),
                                    Arrays.copyOfRange(y, r * rows, (r + 1) * rows),
                                    B / P,
                                    T)
                            / P; // MPI: average the loss
                    ranks[r].backward(1);
                    rankGradients[r] = doubles(ranks[r].gradients(), N);
                }
                double[] mean = new double[N];
                for (double[] g : rankGradients) for (int i = 0; i < N; i++) mean[i] += g[i] / P;
                worstGradient = Math.max(worstGradient, relativeError(mean, fullGradient));
                assertEquals(fullLoss, meanLoss, 1e-5 * fullLoss, "the mean of the ranks' losses, step " + step);
                one.step(new double[][] {fullGradient}, 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.0);
                sharded.step(rankGradients, 1e-2, 0.9, 0.95, 1e-8, 0.1, 1.0);
                assertEquals(one.lastGradientNorm(), sharded.lastGradientNorm(), 1e-5 * one.lastGradientNorm());
                for (int r = 0; r < P; r++)
                    worstParameters =
                            Math.max(worstParameters, relativeError(sharded.parameters(r), one.parameters(0)));
            }
            System.out.printf(
                    "tiny GPT-2 (%,d parameters), 3 steps: 2 ZeRO-1 ranks on half a batch each vs one process"
                            + " on all of it: mean gradient %.1e, parameters %.1e (relative); m and v: %d floats per rank"
                            + " instead of %d%n",
                    N, worstGradient, worstParameters, sharded.firstMomentsOnRank(0), N);
            assertTrue(worstGradient < 1e-5, "float rounding only: " + worstGradient);
            assertTrue(worstParameters < 1e-5, "float rounding only: " + worstParameters);
        } finally {
            for (var rank : ranks) if (rank != null) rank.close();
        }
    }

    static void load(GPT2 model, double[] parameters) {
        for (int i = 0; i < parameters.length; i++) Floats.set(model.parameters(), i, (float) parameters[i]);
    }

    @Test
    void theFiguresOnThePageForD6OnTwoRanks() {
        long N = GPT2Config.fromDescriptor("d6").numParameters();
        assertEquals(30_357_504L, N);
        assertEquals("463.2", "%.1f".formatted(Zero1.bytesPerRank(N, 2, false) / 1048576.0)); // ZeRO-0
        assertEquals("347.4", "%.1f".formatted(Zero1.bytesPerRank(N, 2, true) / 1048576.0)); // ZeRO-1
        assertEquals("115.8", "%.1f".formatted(2.0 * (2 - 1) / 2 * N * 4 / 1048576.0)); // sent per rank and step
    }

    @Test
    void bandwidthArithmeticForGpt2OnRealNetworks() {
        long N = GPT2Config.fromDescriptor("d12").numParameters();
        double bf16Bytes = 2.0 * N; // the gradients in bf16, as llm.c's GPU trainer sends them
        double nvlink = RingAllReduce.ringSeconds(bf16Bytes, 8, 450e9); // H100 NVLink 4: 450 GB/s each way
        double infiniband = RingAllReduce.ringSeconds(bf16Bytes, 8, 50e9); // 400 Gb/s InfiniBand NDR per GPU
        double ethernet = RingAllReduce.ringSeconds(bf16Bytes, 8, 1.25e9); // 10 Gb/s Ethernet
        System.out.printf(
                "GPT-2 124M, %,d bf16 gradients (%.0f MB), ring over 8 GPUs: NVLink %.2f ms,"
                        + " InfiniBand NDR %.1f ms, 10 GbE %.0f ms%n",
                N, bf16Bytes / 1e6, nvlink * 1e3, infiniband * 1e3, ethernet * 1e3);
        assertEquals(2.0 * 7 / 8 * bf16Bytes / 450e9, nvlink, 1e-15);
        assertEquals(9, infiniband / nvlink, 1e-9);
        assertEquals(0.0, RingAllReduce.ringSeconds(bf16Bytes, 1, 1e9), "one rank sends nothing");
    }
}
