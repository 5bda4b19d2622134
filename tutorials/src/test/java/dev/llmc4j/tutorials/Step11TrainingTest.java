package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.cpu.CausalSelfAttention;
import dev.llmc4j.data.DatasetBuilder;
import dev.llmc4j.data.TinyShakespeare;
import dev.llmc4j.format.TokenShard;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.gpt2.GPT2Inference;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.random.XorShift;
import dev.llmc4j.sample.Sampler;
import dev.llmc4j.tokenizer.GPT2Tokenizer;
import dev.llmc4j.train.LearningRateSchedule;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import dev.llmc4j.tutorials.step11.KvCache;
import dev.llmc4j.tutorials.step11.TrainingLoop;
import dev.llmc4j.tutorials.step11.TrainingLoop.Batch;
import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Step 11: the lesson's loop reproduces the real Trainer's losses; generation with and without the KV cache agree. */
class Step11TrainingTest {
    static final GPT2Config TINY = new GPT2Config(32, 96, 128, 2, 2, 16);
    static final int B = 2, T = 16;

    @TempDir
    Path dir;

    /** A learnable stream: a repeating pattern of 12 tokens. */
    static int[] patternTokens(int n) {
        int[] tokens = new int[n];
        for (int i = 0; i < n; i++) tokens[i] = (i * 7 + i / 12) % 12 + 3;
        return tokens;
    }

    static Batch batch(int[] tokens, int index, int B, int T) {
        int start = index * B * T;
        return new Batch(
                Arrays.copyOfRange(tokens, start, start + B * T),
                Arrays.copyOfRange(tokens, start + 1, start + B * T + 1));
    }

    @Test
    void theLessonLoopGivesTheTrainersLosses() {
        int steps = 20;
        int[] tokens = patternTokens(200);
        Path shard = dir.resolve("val.bin");
        TokenShard.write(shard, TokenShard.Kind.GPT2, tokens);
        // the Trainer in llm.c's -a 1 mode: the first batch of the val shard, over and over
        var config = new TrainingConfig(
                shard.toString(),
                shard.toString(),
                B,
                T,
                -1,
                steps,
                1e-2f,
                0,
                1.0f,
                "cosine",
                0.0f,
                1.0f,
                100,
                1,
                0,
                0,
                true,
                null,
                0,
                0,
                0,
                false,
                0,
                0,
                null,
                1,
                0);
        var printed = new ByteArrayOutputStream();
        Trainer.Result result;
        try (var model = GPT2.randomInit(TINY)) {
            result = new Trainer(model, config, new PrintStream(printed, true, StandardCharsets.UTF_8)).run();
        }
        float[] lesson;
        try (var model = GPT2.randomInit(TINY)) {
            var schedule = LearningRateSchedule.of("cosine", 1e-2f, 0, steps, 1.0f);
            lesson = TrainingLoop.train(model, List.of(batch(tokens, 0, B, T)), B, T, steps, schedule, 0.0f);
        }
        printed.toString(StandardCharsets.UTF_8)
                .lines()
                .filter(line -> line.startsWith("step"))
                .limit(3)
                .forEach(System.out::println);
        float[] trainer = new float[steps];
        for (int i = 0; i < steps; i++) trainer[i] = result.trainLosses().get(i).loss();
        System.out.printf(
                "lesson loop losses: %.6f %.6f %.6f ... %.6f%n", lesson[0], lesson[1], lesson[2], lesson[steps - 1]);
        // the same arithmetic in the same order. Not always bit for bit: a method the JIT has compiled meanwhile
        // (Math.tanh, Math.exp) may round its last bit differently from the interpreter, and 20 steps carry that on
        for (int i = 0; i < steps; i++)
            assertEquals(trainer[i], lesson[i], 1e-5 * trainer[i], "loss of step " + (i + 1));
        assertTrue(lesson[steps - 1] < lesson[0] - 1, "one batch over and over: the loss must fall");
    }

    @Test
    void kvCacheGivesTheSameTokensAsRecomputing() {
        int[] prompt = {5, 9, 13};
        int count = 12;
        try (var model = GPT2.randomInit(TINY)) {
            var slowLogits = new ArrayList<float[]>();
            int[] slow = TrainingLoop.generateWithoutCache(
                    model, prompt, count, new Sampler(new XorShift(1337), 1.0f, 0), slowLogits);
            var inference = new GPT2Inference(model);
            int[] fast = inference.generate(prompt, count, new Sampler(new XorShift(1337), 1.0f, 0), token -> {});
            // and the cache's logits, position by position
            inference.reset();
            float[] cached = null;
            for (int token : prompt) cached = inference.next(token);
            double worst = 0;
            for (int i = 0; i < count; i++) {
                for (int v = 0; v < TINY.vocabSize(); v++)
                    worst = Math.max(worst, Math.abs(cached[v] - slowLogits.get(i)[v]));
                if (i + 1 < count) cached = inference.next(slow[i]);
            }
            inference.close();
            System.out.println("without cache: " + Arrays.toString(slow));
            System.out.println("with KV cache: " + Arrays.toString(fast));
            System.out.printf("largest logit difference: %.1e%n", worst);
            assertArrayEquals(slow, fast);
            assertTrue(worst < 1e-4, "float rounding only: " + worst);
        }
    }

    @Test
    void theLessonsKvCacheMatchesCommonsAttentionOverTheWholeSequence() {
        int T = 9, C = 12, NH = 3;
        double[] qkv = Tensors.roundedToFloat(Tensors.gaussian(new Random(11), T * 3 * C, 1));
        // common's attention over all T positions at once (B = 1): row t is what the cache must give at step t
        var out = Tensors.zeros(T * C);
        CausalSelfAttention.forward(
                out, Tensors.zeros(NH * T * T), Tensors.zeros(NH * T * T), Tensors.segment(qkv), 1, T, C, NH);
        var cache = new KvCache(T, C, NH);
        double worst = 0;
        for (int t = 0; t < T; t++) {
            double[] row = cache.append(Arrays.copyOfRange(qkv, t * 3 * C, (t + 1) * 3 * C));
            worst = Math.max(worst, Tensors.relativeError(Tensors.doubles(out, (long) t * C, C), row));
        }
        // the attention over the cache still reads every earlier key: NH * T(T+1)/2 key reads, O(n^2) in total
        long keysRead = cache.keysRead();
        long gpt2Cache = KvCache.cacheFloats(12, 1024, 768);
        System.out.printf(
                "KV cache vs CausalSelfAttention.forward over the sequence: worst relative error %.1e%n", worst);
        System.out.printf(
                "%d tokens, %d heads: %d key reads = NH * T(T+1)/2; GPT-2 124M's cache at T = 1024: %,d"
                        + " floats (%.1f MiB in fp32)%n",
                T, NH, keysRead, gpt2Cache, gpt2Cache * 4 / 1048576.0);
        assertTrue(worst < 1e-5, "float rounding only: " + worst);
        assertEquals(T, cache.length());
        assertEquals((long) NH * T * (T + 1) / 2, keysRead);
        assertEquals(2L * 12 * 1024 * 768, gpt2Cache);
        assertThrows(IllegalStateException.class, () -> cache.append(new double[3 * C]), "the cache is full");
    }

    @Test
    void trainOnTinyShakespeare() {
        Path text = Path.of(System.getProperty("llmc.root", "."), "..", "shared", "data", "tinyshakespeare.txt")
                .normalize();
        Assumptions.assumeTrue(
                Files.isRegularFile(text),
                "skipped: tinyshakespeare not found at " + text
                        + " (the tests never download it; ./llmc data tinyshakespeare does)");
        var tokenizer = GPT2Tokenizer.get();
        int[] tokens = DatasetBuilder.tokenizeSections(tokenizer, DatasetBuilder.readUtf8(text));
        int[] val = Arrays.copyOf(tokens, TinyShakespeare.VAL_TOKENS);
        int[] train = Arrays.copyOfRange(tokens, TinyShakespeare.VAL_TOKENS, tokens.length);
        int b = 4, t = 32, steps = 30;
        var trainBatches = new ArrayList<Batch>();
        for (int i = 0; i < steps; i++) trainBatches.add(batch(train, i, b, t));
        var valBatches = new ArrayList<Batch>();
        for (int i = 0; i < 4; i++) valBatches.add(batch(val, i, b, t));

        // a very small GPT-2 with the real vocabulary: 2 layers, 2 heads, 32 channels (1.7M parameters, mostly wte)
        try (var model = GPT2.randomInit(GPT2Config.of(2, 2, 32))) {
            float before = TrainingLoop.validationLoss(model, valBatches, b, t);
            float[] losses = TrainingLoop.train(
                    model, trainBatches, b, t, steps, LearningRateSchedule.of("cosine", 3e-3f, 3, steps, 0.1f), 0.0f);
            float after = TrainingLoop.validationLoss(model, valBatches, b, t);
            System.out.printf(
                    "%,d parameters; val loss %.3f -> %.3f after %d steps (train loss %.3f -> %.3f)%n",
                    model.numParameters(), before, after, steps, losses[0], losses[steps - 1]);
            int[] sample = model.generator().generate(new int[] {GPT2Tokenizer.EOT}, 24, Sampler.llmc(), token -> {});
            System.out.println("sample: " + tokenizer.decode(sample).replace("\n", "\\n"));
            assertEquals(Math.log(50257), before, 0.5, "an untrained model is close to uniform");
            assertTrue(after < before - 1.0, "30 steps already learn the most frequent tokens");
        }
    }
}
