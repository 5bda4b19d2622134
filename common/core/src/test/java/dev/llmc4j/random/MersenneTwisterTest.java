package dev.llmc4j.random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The seed-137 vectors of llm.c's rand.h, which are torch.Generator's outputs. */
class MersenneTwisterTest {

    @Test
    void seed137MatchesTorch() {
        var rng = new MersenneTwister(137);
        long[] ints = new long[5];
        for (int i = 0; i < 5; i++) ints[i] = rng.randInt32();
        assertArrayEquals(new long[] {4053805790L, 2173880614L, 380293709L, 1237255315L, 2986595568L}, ints);

        float[] eight = new float[8];
        rng.normal(eight, 0, 1);
        assertArrayEquals(
                new float[] {
                    0.7947664260864258f,
                    1.4369317293167114f,
                    -0.2292192131280899f,
                    0.47556325793266296f,
                    -0.6334410905838013f,
                    -0.5791953802108765f,
                    -0.0925704762339592f,
                    -0.8659197092056274f
                },
                eight);

        assertEquals(2186503452L, rng.randInt32());

        float[] sixteen = new float[16];
        rng.normal(sixteen, 0, 1);
        assertArrayEquals(
                new float[] {
                    -1.2813878059387207f,
                    -2.646395683288574f,
                    -0.06569503247737885f,
                    0.2180829495191574f,
                    -0.46536165475845337f,
                    -0.33108410239219666f,
                    2.5485482215881348f,
                    0.10425379872322083f,
                    0.8460659980773926f,
                    0.9462448358535767f,
                    -0.2913765013217926f,
                    0.34313806891441345f,
                    -1.1186704635620117f,
                    -0.18305328488349915f,
                    -2.3153159618377686f,
                    0.3961987793445587f
                },
                sixteen);

        assertEquals(2756748748L, rng.randInt32());
    }

    @Test
    void xorshiftFollowsLlmcFormula() {
        var rng = new XorShift(1337);
        long s = 1337;
        for (int i = 0; i < 100; i++) {
            s ^= s >>> 12;
            s ^= s << 25;
            s ^= s >>> 27;
            long expected = (s * 0x2545F4914F6CDD1DL) >>> 32;
            assertEquals(expected, rng.nextInt32());
        }
    }
}
