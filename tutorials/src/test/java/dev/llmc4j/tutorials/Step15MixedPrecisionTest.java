package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.format.BFloat16;
import dev.llmc4j.gpt2.cuda.DynamicLossScaler;
import dev.llmc4j.gpt2.cuda.GPT2Cuda;
import dev.llmc4j.gpt2.cuda.ParameterLayout;
import dev.llmc4j.gpt2.cuda.Precision;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.tutorials.step15.Formats;
import dev.llmc4j.tutorials.step15.LossScaler;
import dev.llmc4j.tutorials.step15.MixedPrecisionAdamW;
import dev.llmc4j.tutorials.step15.MixedPrecisionAdamW.Storage;
import dev.llmc4j.tutorials.step15.StochasticRounding;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.MethodOrderer;
import org.junit.jupiter.api.Order;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.TestMethodOrder;

/**
 * Step 15: the lesson's bf16/fp16 conversions against common's BFloat16 and the JDK, stochastic rounding's lack of
 * bias, the lost update, the loss scaler against gpt2-cuda's DynamicLossScaler, and the toy mixed-precision runs.
 * Everything runs on the CPU: gpt2-cuda's classes used here never load the CUDA driver.
 * The tests run in the page's order, so that the figures print in the order the page quotes them.
 */
@TestMethodOrder(MethodOrderer.OrderAnnotation.class)
class Step15MixedPrecisionTest {

    /** Floats to convert: specials, every bf16 and fp16 value with the ties next to them, random bit patterns. */
    static int[] floatBitPatterns() {
        var patterns = new ArrayList<Integer>();
        for (float f : new float[] {
            0f,
            -0f,
            1f,
            -1f,
            (float) Math.PI,
            65504f,
            65520f,
            65536f,
            Float.MAX_VALUE,
            -Float.MAX_VALUE,
            Float.MIN_VALUE,
            Float.MIN_NORMAL,
            Float.POSITIVE_INFINITY,
            Float.NEGATIVE_INFINITY,
            Float.NaN,
            0x1p-14f,
            0x1p-24f,
            0x1p-25f,
            0x1.8p-25f,
            1e-8f,
            1e-4f
        }) patterns.add(Float.floatToRawIntBits(f));
        for (int nan : new int[] {0x7F800001, 0x7FC00000, 0xFF800001, 0x7FFFFFFF, 0xFFFFFFFF, 0x7F80FFFF})
            patterns.add(nan); // NaNs whose payload sits in the low bits
        for (int kept = 0; kept < 0x10000; kept++) // every bf16, and the ties around it
        for (int low : new int[] {0x0000, 0x0001, 0x7FFF, 0x8000, 0x8001, 0xFFFF}) patterns.add(kept << 16 | low);
        for (int h = 0; h < 0x7BFF; h++) { // every fp16, and the ties above it
            float f = Float.float16ToFloat((short) h), next = Float.float16ToFloat((short) (h + 1));
            float tie = (f + next) / 2; // exact: fp16 has 11 bits, fp32 24
            for (float x : new float[] {f, tie, Math.nextDown(tie), Math.nextUp(tie)}) {
                patterns.add(Float.floatToRawIntBits(x));
                patterns.add(Float.floatToRawIntBits(-x));
            }
        }
        var random = new Random(15);
        for (int i = 0; i < 1_000_000; i++) patterns.add(random.nextInt());
        return patterns.stream().mapToInt(Integer::intValue).toArray();
    }

    @Test
    @Order(1)
    void bf16RoundingEqualsBFloat16BitForBit() {
        int[] patterns = floatBitPatterns();
        for (int bits : patterns) {
            float f = Float.intBitsToFloat(bits);
            short ours = Formats.toBf16(f), theirs = BFloat16.fromFloat(f);
            if (ours != theirs)
                throw new AssertionError(
                        "toBf16(0x%08x) = 0x%04x, BFloat16 gives 0x%04x".formatted(bits, ours, theirs));
        }
        for (int h = 0; h < 0x10000; h++) // widening: every one of the 65536 bf16
        assertEquals(
                    Float.floatToRawIntBits(BFloat16.toFloat((short) h)),
                    Float.floatToRawIntBits(Formats.fromBf16((short) h)),
                    "bf16 0x" + Integer.toHexString(h));
        System.out.printf(
                "fp32 -> bf16: lesson == BFloat16.fromFloat on %d floats (every tie, NaN, inf, subnormals); "
                        + "bf16 -> fp32 on all 65536%n",
                patterns.length);
        System.out.printf(
                "0.1: fp32 %.9f  bf16 %.9f  fp16 %.9f%n", 0.1f, Formats.roundToBf16(0.1f), Formats.roundToFp16(0.1f));
        System.out.printf(
                "1e-8: bf16 %.4g  fp16 %.4g;  70000: bf16 %.6g  fp16 %s%n",
                Formats.roundToBf16(1e-8f),
                Formats.roundToFp16(1e-8f),
                Formats.roundToBf16(70000f),
                Formats.roundToFp16(70000f));
        assertEquals(0.10009765625f, Formats.roundToBf16(0.1f));
        assertEquals(0.0999755859375f, Formats.roundToFp16(0.1f));
        assertEquals(0f, Formats.roundToFp16(1e-8f));
        assertEquals(Float.POSITIVE_INFINITY, Formats.roundToFp16(70000f));
    }

    @Test
    @Order(2)
    void fp16RoundingEqualsTheJdk() {
        int[] patterns = floatBitPatterns();
        for (int bits : patterns) {
            float f = Float.intBitsToFloat(bits);
            short ours = Formats.toFp16(f), jdk = Float.floatToFloat16(f);
            boolean same =
                    Float.isNaN(f) ? Float.isNaN(Float.float16ToFloat(ours)) : ours == jdk; // NaN payloads differ
            if (!same)
                throw new AssertionError(
                        "toFp16(%s = 0x%08x) = 0x%04x, the JDK gives 0x%04x".formatted(f, bits, ours, jdk));
        }
        for (int h = 0; h < 0x10000; h++) {
            float ours = Formats.fromFp16((short) h), jdk = Float.float16ToFloat((short) h);
            if (Float.isNaN(jdk)) assertTrue(Float.isNaN(ours), "fp16 0x" + Integer.toHexString(h));
            else
                assertEquals(
                        Float.floatToRawIntBits(jdk),
                        Float.floatToRawIntBits(ours),
                        "fp16 0x" + Integer.toHexString(h));
        }
        assertEquals(Formats.FP16_MAX, Float.float16ToFloat((short) 0x7BFF));
        assertEquals(Formats.FP16_MIN_NORMAL, Float.float16ToFloat((short) 0x0400));
        assertEquals(Formats.FP16_MIN_SUBNORMAL, Float.float16ToFloat((short) 0x0001));
        System.out.printf(
                "fp32 -> fp16: lesson == Float.floatToFloat16 on the same %d floats; fp16 -> fp32 on all 65536%n",
                patterns.length);
    }

    @Test
    @Order(3)
    void anUpdateBelowHalfABf16StepIsLostAndStochasticRoundingKeepsIt() {
        // weight 1.0, lr 1e-3 times gradient 0.1: each update is 1e-4, 1000 of them
        float[] one = MixedPrecisionAdamW.addRepeatedly(1f, 1e-4f, 1000, 15);
        float bf16Step = Formats.bf16Ulp(1f); // 2^-7 = 0.0078125 between 1 and 2
        assertEquals(1.1f, one[0], 1e-4f); // fp32's own rounding: ~1e-5
        assertEquals(1f, one[1]); // round to nearest: not one update survived
        // stochastic: each step adds +step with probability 1e-4/step (1.28%), so after 1000 steps the value is
        // 1.1 on average, spread by sqrt(1000 * p(1-p)) * step = 0.028
        double spread = Math.sqrt(1000 * (1e-4 / bf16Step) * (1 - 1e-4 / bf16Step)) * bf16Step;
        assertEquals(1.1, one[2], 4 * spread);
        int runs = 200;
        double sum = 0;
        for (int seed = 0; seed < runs; seed++) sum += MixedPrecisionAdamW.addRepeatedly(1f, 1e-4f, 1000, seed)[2];
        double mean = sum / runs;
        assertEquals(1.1, mean, 4 * spread / Math.sqrt(runs));
        System.out.printf(
                "1.0 + 1e-4, 1000 times: fp32 %.6f  bf16 nearest %.6f  bf16 stochastic %.6f "
                        + "(mean of %d runs %.6f, bf16 step %.7f)%n",
                one[0], one[1], one[2], runs, mean, bf16Step);
    }

    @Test
    @Order(4)
    void stochasticRoundingIsUnbiased() {
        // exact: over all 65536 random values, the magnitude rounds up for exactly d of them (d = dropped low bits)
        var random = new Random(1515);
        for (int i = 0; i < 20; i++) {
            float x = (float) (random.nextGaussian() * Math.pow(10, random.nextInt(9) - 4));
            int dropped = Float.floatToRawIntBits(x) & 0xFFFF, ups = 0;
            short down = (short) (Float.floatToRawIntBits(x) >>> 16);
            for (int r = 0; r < 0x10000; r++) {
                short rounded = StochasticRounding.toBf16(x, r);
                assertTrue(rounded == down || rounded == down + 1, "not a neighbour of " + x);
                if (rounded != down) ups++;
            }
            assertEquals(dropped, ups, "round-ups of " + x);
        }
        System.out.println(
                "20 values x 65536 random inputs each: rounds up for exactly d of them, d = the dropped 16 bits");

        // statistical: the mean of many roundings (hashed random bits, fixed seed) is x, within 5 standard errors
        int n = 100_000, seed = 42;
        for (float x : new float[] {1f + 0.3f * 0x1p-7f, -3.14159265f, 1.234e-3f, 7.77e5f}) {
            double sum = 0;
            for (int i = 0; i < n; i++)
                sum += StochasticRounding.roundToBf16(x, StochasticRounding.randomBits(seed, i));
            double mean = sum / n, step = Formats.bf16Ulp(x);
            double fraction = (Float.floatToRawIntBits(x) & 0xFFFF) / 65536.0;
            double standardError = step * Math.sqrt(fraction * (1 - fraction) / n);
            double nearestError = Math.abs(Formats.roundToBf16(x) - (double) x);
            assertTrue(Math.abs(mean - x) < 5 * standardError, x + ": mean " + mean);
            assertTrue(nearestError > 10 * standardError, "this x should show the bias of rounding to nearest");
            System.out.printf(
                    "x = %-12.7g fraction %.3f: mean of %d stochastic roundings off by %.2e (%.1f standard "
                            + "errors); round to nearest off by %.2e%n",
                    x, fraction, n, Math.abs(mean - x), Math.abs(mean - x) / standardError, nearestError);
        }
    }

    @Test
    @Order(5)
    void smallGradientsUnderflowInFp16UnlessTheLossIsScaled() {
        // 1000 gradient magnitudes spread evenly in log scale between 1e-10 and 1e-1
        int count = 1000;
        float[] gradients = new float[count];
        for (int i = 0; i < count; i++) gradients[i] = (float) Math.pow(10, -10 + 9.0 * i / (count - 1));
        for (float scale : new float[] {1f, 1024f, 65536f}) {
            int zero = 0, subnormal = 0, infinite = 0;
            double worstRelative = 0;
            for (float g : gradients) {
                float stored = Formats.roundToFp16(g * scale);
                if (stored == 0) zero++;
                else if (Float.isInfinite(stored)) infinite++;
                else {
                    if (stored < Formats.FP16_MIN_NORMAL) subnormal++;
                    worstRelative = Math.max(worstRelative, Math.abs(stored / scale - g) / g);
                }
            }
            System.out.printf(
                    "1000 gradients 1e-10..1e-1 in fp16, loss scale %6.0f: %3d become 0, %3d subnormal, "
                            + "%d inf; worst relative error of the rest %.1e%n",
                    scale, zero, subnormal, infinite, worstRelative);
            if (scale == 1f) assertTrue(zero > 250, "without scaling many gradients vanish");
            if (scale == 65536f) assertTrue(zero < 100, "scaled, most survive");
        }
        assertEquals(Float.POSITIVE_INFINITY, Formats.roundToFp16(2f * 65536f)); // the price: big gradients overflow
    }

    @Test
    @Order(6)
    void lossScalerMakesTheSameDecisionsAsDynamicLossScaler() {
        // a scripted run: random overflows, a burst of them, and long good stretches, with a short growth interval
        var random = new Random(16);
        var overflows = new ArrayList<Boolean>();
        for (int i = 0; i < 300; i++) overflows.add(random.nextInt(10) == 0);
        for (int i = 0; i < 6; i++) overflows.add(true);
        for (int i = 0; i < 40; i++) overflows.add(false);
        compareScalers(65536f, 3, overflows);
        compareScalers(
                0x1p126f,
                2,
                List.of(false, false, false, false, false, false, true, false, false)); // never grows into inf

        // a simulated fp16 run: the largest gradient is 2.0, so S * 2 must stay below 65504
        var ours = new LossScaler(65536f, 100);
        var real = new DynamicLossScaler(65536f, 2f, 0.5f, 100);
        float[] gradients = {2f, -1e-3f, 3e-7f};
        float[] scaled = new float[gradients.length];
        int skipped = 0;
        float lowest = Float.MAX_VALUE, highest = 0;
        for (int step = 0; step < 1000; step++) {
            for (int i = 0; i < gradients.length; i++) scaled[i] = Formats.roundToFp16(gradients[i] * ours.scale());
            boolean overflow = LossScaler.overflowed(scaled);
            boolean applied = ours.update(overflow);
            assertEquals(real.update(overflow), applied);
            assertEquals(real.scale(), ours.scale());
            if (!applied) skipped++;
            lowest = Math.min(lowest, ours.scale());
            highest = Math.max(highest, ours.scale());
        }
        assertEquals(11, skipped); // 2 to find S, then 1 every 101 steps
        assertEquals(16384f, lowest);
        System.out.printf(
                "fp16 run, largest gradient 2.0, S from 65536, doubling after 100 good steps: 1000 steps, "
                        + "%d skipped, S between %.0f and %.0f%n",
                skipped, lowest, highest);
    }

    static void compareScalers(float initialScale, int growthInterval, List<Boolean> overflows) {
        var ours = new LossScaler(initialScale, growthInterval);
        var real = new DynamicLossScaler(initialScale, 2f, 0.5f, growthInterval);
        var trace = new StringBuilder();
        for (int step = 0; step < overflows.size(); step++) {
            boolean overflow = overflows.get(step);
            boolean applied = ours.update(overflow);
            assertEquals(real.update(overflow), applied, "step " + step);
            assertEquals(real.scale(), ours.scale(), "scale after step " + step);
            assertTrue(Float.isFinite(ours.scale()));
            if (step < 12) trace.append(overflow ? " inf->" : " ok->").append((long) ours.scale());
        }
        if (initialScale == 65536f)
            System.out.printf(
                    "LossScaler == DynamicLossScaler on %d scripted steps; first 12:%s%n", overflows.size(), trace);
    }

    @Test
    @Order(7)
    void bf16WeightsStallWithoutMasterWeightsOrStochasticRounding() {
        var problem = MixedPrecisionAdamW.Problem.random(15, 64, 16);
        int steps = 3000;
        float lr = 1e-3f;
        var losses = new java.util.EnumMap<Storage, float[]>(Storage.class);
        for (Storage storage : Storage.values())
            losses.put(storage, MixedPrecisionAdamW.train(problem, storage, steps, lr, 15));
        System.out.printf("toy AdamW, lr %.0e, D=16 weights of magnitude 0.5..2 from std 0.02: loss at step%n", lr);
        int[] shown = {0, 250, 500, 1000, 2000, 3000};
        var header = new StringBuilder(String.format("  %-16s", "storage"));
        for (int s : shown) header.append(String.format("%11d", s));
        System.out.println(header);
        for (Storage storage : Storage.values()) {
            var line = new StringBuilder(String.format("  %-16s", storage.name().toLowerCase()));
            for (int s : shown) line.append(String.format("%11.3e", losses.get(storage)[s]));
            System.out.println(line);
        }
        float initial = losses.get(Storage.FP32)[0];
        float fp32 = losses.get(Storage.FP32)[steps], bf16 = losses.get(Storage.BF16)[steps];
        float master = losses.get(Storage.BF16_MASTER)[steps], stochastic = losses.get(Storage.BF16_STOCHASTIC)[steps];
        for (Storage storage : Storage.values()) assertEquals(initial, losses.get(storage)[0]); // same start
        assertTrue(bf16 > 0.1f * initial, "pure bf16 stalls: " + bf16);
        assertTrue(fp32 < 1e-4f * initial, "fp32 converges: " + fp32);
        assertTrue(Math.abs(master - fp32) < 1e-3f * initial, "master weights track fp32: " + master);
        assertTrue(stochastic < 1e-2f * initial, "stochastic rounding gets close: " + stochastic);
    }

    @Test
    @Order(8)
    void theRealTrainerKeepsMasterWeightsByDefault() {
        var defaults = GPT2Cuda.Options.defaults();
        assertEquals(Precision.BF16, defaults.precision());
        assertTrue(defaults.masterWeights());
        assertTrue(ParameterLayout.keepsMasterWeights(Precision.BF16, true));
        assertFalse(ParameterLayout.keepsMasterWeights(Precision.FP32, true)); // fp32 is its own master copy
        assertEquals(Precision.FP16, Precision.parse("fp16"));
        var layout = ParameterLayout.of(GPT2Config.fromDescriptor("d12"));
        long n = layout.numParameters();
        long without = layout.deviceBytes(Precision.BF16, false), with = layout.deviceBytes(Precision.BF16, true);
        assertEquals(12 * n, without); // bf16 params + grads, fp32 m + v
        assertEquals(16 * n, with); // + fp32 master weights
        System.out.printf(
                "GPT-2 124M (%d parameters) on the GPU in bf16: %.2f GB without master weights, %.2f GB with "
                        + "(fp32: %.2f GB)%n",
                n, without / 1e9, with / 1e9, layout.deviceBytes(Precision.FP32, true) / 1e9);
    }
}
