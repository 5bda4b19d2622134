package dev.llmc4j.gpt2;

import static dev.llmc4j.gpt2.GradientCheckTest.attention;
import static dev.llmc4j.gpt2.GradientCheckTest.crossEntropy;
import static dev.llmc4j.gpt2.GradientCheckTest.gelu;
import static dev.llmc4j.gpt2.GradientCheckTest.layernorm;
import static dev.llmc4j.gpt2.GradientCheckTest.matmul;
import static dev.llmc4j.gpt2.GradientCheckTest.numericGradient;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.Floats;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.MemorySegment;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * Each ablated GPT-2 against a double-precision model written here from its definition (x = attn(ln1(x)) without
 * the residual, and so on): the same loss, and every parameter's gradient equal to central finite differences of
 * that model's loss (PyTorch's gradcheck, for the whole model). The full model is checked the same way. Also: a
 * few AdamW steps lower each ablated model's loss, the KV-cache generator agrees with the forward, recompute does
 * not change the gradients, and the init and training ablations change what they say and nothing else.
 */
class AblationTest {
    // V = 23 real tokens in Vp = 32 rows, context 8 (longer than the T = 5 trained: wpe rows that get no gradient)
    static final GPT2Config TINY = new GPT2Config(8, 23, 32, 2, 2, 8);
    static final int B = 2, T = 5;
    /** "full" is the model with its own kernels; every other name is an {@link Ablation} that changes a layer. */
    static GPT2 build(String variant, GPT2Kernels base) {
        return variant.equals("full")
                ? GPT2.randomInit(TINY, base)
                : Ablation.of(variant).randomInit(TINY, base);
    }

    static int[] tokens(Random random, int n) {
        var tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = random.nextInt(TINY.vocabSize());
        return tokens;
    }

    /** Random parameters larger than the init's, so that every path carries a gradient well above float noise. */
    static void randomize(GPT2 model, Random random) {
        MemorySegment p = model.parameters();
        for (long i = 0; i < TINY.numParameters(); i++) Floats.set(p, i, (float) (0.3 * random.nextGaussian()));
    }

    // ---- the reference: GPT-2 in double, each ablation written out ----

    static double referenceLoss(double[] parameters, String variant, int[] inputs, int[] targets) {
        int C = TINY.channels(), L = TINY.numLayers(), NH = TINY.numHeads(), BT = B * T;
        int V = TINY.vocabSize(), Vp = TINY.paddedVocabSize();
        boolean position = !variant.equals("no-wpe"), norm = !variant.equals("no-layernorm");
        boolean residual = !variant.equals("no-residual"), relu = variant.equals("relu");
        double[][] p = split(parameters);

        var x = new double[BT * C];
        for (int bt = 0; bt < BT; bt++)
            for (int i = 0; i < C; i++)
                x[bt * C + i] = p[0][inputs[bt] * C + i] + (position ? p[1][(bt % T) * C + i] : 0);
        for (int l = 0; l < L; l++) {
            double[] h = norm ? layernorm(x, layer(p[2], l, C), layer(p[3], l, C), BT, C) : x;
            double[] qkv = matmul(h, layer(p[4], l, 3 * C * C), layer(p[5], l, 3 * C), BT, C, 3 * C);
            double[] a = matmul(attention(qkv, B, T, C, NH), layer(p[6], l, C * C), layer(p[7], l, C), BT, C, C);
            x = residual ? add(x, a) : a;
            h = norm ? layernorm(x, layer(p[8], l, C), layer(p[9], l, C), BT, C) : x;
            double[] fch = matmul(h, layer(p[10], l, 4 * C * C), layer(p[11], l, 4 * C), BT, C, 4 * C);
            double[] m =
                    matmul(relu ? relu(fch) : gelu(fch), layer(p[12], l, 4 * C * C), layer(p[13], l, C), BT, 4 * C, C);
            x = residual ? add(x, m) : m;
        }
        double[] h = norm ? layernorm(x, p[14], p[15], BT, C) : x;
        double[] losses = crossEntropy(matmul(h, p[0], null, BT, C, Vp), targets, BT, V, Vp);
        return Arrays.stream(losses).sum() / BT;
    }

    static double[][] split(double[] parameters) {
        long[] sizes = TINY.parameterSizes();
        var tensors = new double[sizes.length][];
        int offset = 0;
        for (int t = 0; t < sizes.length; t++) {
            tensors[t] = Arrays.copyOfRange(parameters, offset, offset + (int) sizes[t]);
            offset += (int) sizes[t];
        }
        return tensors;
    }

    static double[] layer(double[] tensor, int l, int size) {
        return Arrays.copyOfRange(tensor, l * size, (l + 1) * size);
    }

    static double[] add(double[] a, double[] b) {
        var out = new double[a.length];
        for (int i = 0; i < a.length; i++) out[i] = a[i] + b[i];
        return out;
    }

    static double[] relu(double[] x) {
        return Arrays.stream(x).map(v -> Math.max(v, 0)).toArray();
    }

    static double[] doubles(MemorySegment segment) {
        var values = new double[(int) TINY.numParameters()];
        for (int i = 0; i < values.length; i++) values[i] = Floats.get(segment, i);
        return values;
    }

    // ---- the checks ----

    @ParameterizedTest
    @ValueSource(strings = {"full", "no-wpe", "no-layernorm", "no-residual", "relu"})
    void lossAndEveryGradientMatchTheDoubleModelAndItsFiniteDifferences(String variant) {
        var random = new Random(7);
        int[] inputs = tokens(random, B * T), targets = tokens(random, B * T);
        double[] numeric = null;
        for (var base : new GPT2Kernels[] {GPT2Kernels.BASELINE, GPT2Kernels.VECTORIZED}) {
            try (var model = build(variant, base)) {
                randomize(model, new Random(11));
                double[] parameters = doubles(model.parameters());
                float loss = model.forward(inputs, targets, B, T);
                model.zeroGrad();
                model.backward();
                double expected = referenceLoss(parameters, variant, inputs, targets);
                assertEquals(expected, loss, 1e-5 * expected, variant + " " + base.name() + ": loss");

                if (numeric == null) // the same for both kernel sets
                numeric = numericGradient(
                        parameters, v -> new double[] {referenceLoss(v, variant, inputs, targets)}, new double[] {1});
                assertGradientsClose(variant + " " + base.name(), model, numeric, doubles(model.gradients()));
            }
        }
    }

    /** Tensor by tensor and layer by layer: relative error below 1e-3, or exactly zero where the loss ignores it. */
    static void assertGradientsClose(String what, GPT2 model, double[] numeric, double[] analytic) {
        for (var tensor : model.parameterTensors()) {
            double diff = 0, norm = 0;
            for (long i = tensor.offset(); i < tensor.offset() + tensor.count(); i++) {
                diff += (numeric[(int) i] - analytic[(int) i]) * (numeric[(int) i] - analytic[(int) i]);
                norm += numeric[(int) i] * numeric[(int) i];
            }
            String name = "%s d%s (layer %d)".formatted(what, tensor.name(), tensor.layer());
            if (norm == 0) assertEquals(0, diff, name + ": the loss does not depend on it, its gradient is zero");
            else assertTrue(Math.sqrt(diff / norm) < 1e-3, name + ": relative error " + Math.sqrt(diff / norm));
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"no-wpe", "no-layernorm", "no-residual", "relu"})
    void recomputeKeepsTheGradientsAndTheGeneratorAgreesWithTheForward(String variant) {
        var random = new Random(3);
        int[] inputs = tokens(random, B * T), targets = tokens(random, B * T);
        double[] kept;
        try (var model = build(variant, GPT2Kernels.VECTORIZED)) {
            randomize(model, new Random(5));
            // the ablation keeps wpe zero (its gradient is never accumulated): the generator adds wpe by itself
            if (variant.equals("no-wpe")) model.params.wpe().fill((byte) 0);
            model.forward(inputs, targets, B, T);
            model.zeroGrad();
            model.backward();
            kept = doubles(model.gradients());

            // one sequence through the KV cache, one token at a time: the forward's logits at each position
            int[] sequence = Arrays.copyOf(inputs, T);
            model.forward(sequence, null, 1, T);
            float[] logits = model.logits()
                    .asSlice(0, (long) T * TINY.paddedVocabSize() * Float.BYTES)
                    .toArray(Floats.FLOAT);
            try (var generator = new GPT2Inference(model)) {
                for (int t = 0; t < T; t++) {
                    float[] next = generator.next(sequence[t]);
                    for (int v = 0; v < TINY.vocabSize(); v++)
                        assertEquals(
                                logits[t * TINY.paddedVocabSize() + v],
                                next[v],
                                1e-4f,
                                variant + ": generator logit " + v + " at position " + t);
                }
            }
        }
        try (var model = build(variant, GPT2Kernels.VECTORIZED).recompute(2)) {
            randomize(model, new Random(5));
            model.forward(inputs, targets, B, T);
            model.zeroGrad();
            model.backward();
            double[] recomputed = doubles(model.gradients());
            for (int i = 0; i < kept.length; i++)
                assertEquals(kept[i], recomputed[i], 1e-6 * (1 + Math.abs(kept[i])), variant + " -r 2: gradient " + i);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"full", "no-wpe", "no-layernorm", "no-residual", "relu", "no-init-scaling"})
    void aFewAdamWStepsLowerTheLossOfEachModel(String variant) {
        var random = new Random(9);
        int[] inputs = tokens(random, B * T), targets = tokens(random, B * T);
        try (var model = build(variant, GPT2Kernels.VECTORIZED)) {
            float first = model.forward(inputs, targets, B, T), loss = first;
            for (int step = 1; step <= 20; step++) {
                model.zeroGrad();
                model.backward();
                model.update(1e-2f, 0.9f, 0.95f, 1e-8f, 0.0f, step);
                loss = model.forward(inputs, targets, B, T);
            }
            assertTrue(loss < 0.7f * first, variant + ": loss " + first + " -> " + loss + " after 20 steps");
        }
    }

    @Test
    void theInitAblationsChangeOnlyTheirTensors() {
        try (var full = GPT2.randomInit(TINY);
                var unscaled = Ablation.NO_INIT_SCALING.randomInit(TINY, GPT2Kernels.VECTORIZED);
                var noWpe = Ablation.NO_POSITION_EMBEDDING.randomInit(TINY, GPT2Kernels.VECTORIZED)) {
            double[] fullParameters = doubles(full.parameters()), unscaledParameters = doubles(unscaled.parameters());
            double[] noWpeParameters = doubles(noWpe.parameters());
            double undo = Math.sqrt(2.0 * TINY.numLayers());
            for (var tensor : full.parameterTensors()) {
                String name = tensor.name();
                boolean projection = name.equals("attprojw") || name.equals("fcprojw"); // 0.02/sqrt(2L) -> 0.02
                for (int i = (int) tensor.offset(); i < tensor.offset() + tensor.count(); i++) {
                    double expected = projection ? fullParameters[i] * undo : fullParameters[i];
                    assertEquals(expected, unscaledParameters[i], 1e-7, "no-init-scaling: " + name);
                    assertEquals(name.equals("wpe") ? 0 : fullParameters[i], noWpeParameters[i], "no-wpe: " + name);
                }
            }
        }
    }

    @Test
    void trainingAblationsChangeTheirSettingOnlyAndLayerAblationsWrapTheKernels() {
        for (var ablation : Ablation.values()) {
            assertEquals(ablation == Ablation.NO_WARMUP ? 0 : 30, ablation.warmupSteps(30), ablation.label());
            assertEquals(
                    ablation == Ablation.NO_WEIGHT_DECAY ? 0f : 0.1f, ablation.weightDecay(0.1f), ablation.label());
            var kernels = ablation.kernels(GPT2Kernels.VECTORIZED);
            switch (ablation) {
                case NO_POSITION_EMBEDDING, NO_LAYERNORM, NO_RESIDUAL, RELU -> {
                    assertSame(ablation, ((AblatedKernels) kernels).ablation());
                    assertEquals("vectorized, " + ablation.label(), kernels.name());
                }
                default -> assertSame(GPT2Kernels.VECTORIZED, kernels, ablation.label() + " runs the model as it is");
            }
            assertSame(ablation, Ablation.of(ablation.label().toUpperCase()));
        }
        var error = assertThrows(LlmcException.class, () -> Ablation.of("no-attention"));
        assertEquals("ablation: expected one of " + Ablation.labels() + ", found no-attention", error.getMessage());
    }

    /** A kernel method AblatedKernels did not override would run the interface's default: the baseline loops. */
    @Test
    void ablatedKernelsOverrideEveryKernel() throws NoSuchMethodException {
        for (Method method : GPT2Kernels.class.getMethods()) {
            if (Modifier.isStatic(method.getModifiers())) continue;
            // getMethod finds the interface's default where AblatedKernels has no override of its own
            var own = AblatedKernels.class.getMethod(method.getName(), method.getParameterTypes());
            assertEquals(AblatedKernels.class, own.getDeclaringClass(), method.getName());
        }
    }
}
