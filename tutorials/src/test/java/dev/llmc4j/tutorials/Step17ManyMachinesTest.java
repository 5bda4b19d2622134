package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step17.RingAllReduce;
import dev.llmc4j.tutorials.step17.Zero1;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** Step 17: the ring all-reduce and ZeRO-1, checked against the plain arithmetic and against the page's figures. */
class Step17ManyMachinesTest {

    static double[] random(int n, long seed) {
        var random = new Random(seed);
        double[] values = new double[n];
        for (int i = 0; i < n; i++) values[i] = random.nextGaussian();
        return values;
    }

    @Test
    void ringAllReduceAveragesAndEachRankSendsTwoPMinusOneOverPOfTheVector() {
        for (int P : new int[] {2, 3, 4, 8}) {
            int N = 24 * P;
            double[][] ranks = new double[P][];
            double[] mean = new double[N];
            for (int r = 0; r < P; r++) {
                ranks[r] = random(N, r);
                for (int i = 0; i < N; i++) mean[i] += ranks[r][i] / P;
            }
            RingAllReduce.allReduceMean(ranks);
            for (int r = 0; r < P; r++) assertArrayEquals(mean, ranks[r], 1e-12, "rank " + r + " of " + P);
            assertEquals(2L * (P - 1) * N / P, RingAllReduce.sentPerRank, "numbers sent per rank, P = " + P);
        }
    }

    @Test
    void zero1TrainsExactlyLikeAdamWOnTheAveragedGradient() {
        int P = 4, N = 32;
        double[] initial = random(N, 42);
        var zero1 = new Zero1(initial, P);
        double[] p = initial.clone(), m = new double[N], v = new double[N];
        for (int t = 1; t <= 3; t++) {
            double[][] grads = new double[P][];
            for (int r = 0; r < P; r++) grads[r] = random(N, 100 * t + r);
            zero1.step(grads, 1e-2, 0.9, 0.95, 1e-8, 0.1);
            for (int i = 0; i < N; i++) { // plain AdamW, no sharding, on the mean gradient
                double g = 0;
                for (double[] rankGrads : grads) g += rankGrads[i] / P;
                m[i] = 0.9 * m[i] + 0.1 * g;
                v[i] = 0.95 * v[i] + 0.05 * g * g;
                double mHat = m[i] / (1 - Math.pow(0.9, t)), vHat = v[i] / (1 - Math.pow(0.95, t));
                p[i] -= 1e-2 * (mHat / (Math.sqrt(vHat) + 1e-8) + 0.1 * p[i]);
            }
            for (int r = 0; r < P; r++) assertArrayEquals(p, zero1.parameters(r), 1e-12, "rank " + r + " after step " + t);
        }
    }

    @Test
    void theFiguresOnThePageForD6OnTwoRanks() {
        long N = GPT2Config.fromDescriptor("d6").numParameters();
        assertEquals(30_357_504L, N);
        assertEquals("463.2", "%.1f".formatted(Zero1.bytesPerRank(N, 2, false) / 1048576.0)); // ZeRO-0
        assertEquals("347.4", "%.1f".formatted(Zero1.bytesPerRank(N, 2, true) / 1048576.0));  // ZeRO-1
        assertEquals("115.8", "%.1f".formatted(2.0 * (2 - 1) / 2 * N * 4 / 1048576.0));      // sent per rank and step
    }
}
