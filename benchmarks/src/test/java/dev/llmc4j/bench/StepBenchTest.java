package dev.llmc4j.bench;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.util.LlmcException;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Set;
import jdk.jfr.Recording;
import org.junit.jupiter.api.Test;

/** StepBench builds and steps the models it times (no timing asserted: tests check what runs, not how fast). */
class StepBenchTest {

    private static final String TINY_LLAMA = "llama3:L2,C32,NH4,NKV2,V96,MO16,MAXT16";

    /** Each step runs forward, backward and AdamW on the model: its parameters move, its gradients are finite. */
    @Test
    void stepsATinyLlama3() {
        var bench = new StepBench(TINY_LLAMA, 2, 8, 0);
        for (int step = 0; step < 2; step++) {
            float[] before = bench.model().parameters().toArray(ValueLayout.JAVA_FLOAT);
            double[] forwardBackwardUpdate = bench.trainStep();
            assertEquals(3, forwardBackwardUpdate.length);
            assertTrue(
                    Arrays.stream(forwardBackwardUpdate).allMatch(ms -> ms >= 0),
                    Arrays.toString(forwardBackwardUpdate));
            float[] after = bench.model().parameters().toArray(ValueLayout.JAVA_FLOAT);
            assertFalse(Arrays.equals(before, after), "step " + step + " left the parameters as they were");
            float[] gradients = bench.model().gradients().toArray(ValueLayout.JAVA_FLOAT);
            for (float g : gradients) assertTrue(Float.isFinite(g), "a gradient is " + g);
        }
        assertTrue(bench.forwardOnly() >= 0);
    }

    @Test
    void describesTheLlama3ShapeForThePyTorchSide() {
        var bench = new StepBench(TINY_LLAMA, 2, 8, 0);
        // H: 4C = 128 -> int(2*128/3) = 85 -> int(1.3 * 85) = 110 -> up to a multiple of 16: 112
        // N: L (qkv rows C + C^2 + 3 H C) + V C = 2 (64*32 + 32*32 + 3*112*32) + 96*32 = 27648 + 3072 = 30720
        assertEquals(
                "maxT=16 V=96 L=2 NH=4 NKV=2 C=32 ffn=1.3 multipleOf=16 eps=1.0E-5 theta=500000.0 scaledRope=false"
                        + " H=112 N=30720",
                bench.describeConfig());
        // a forward: 2 N tokens + attention's two (T x T) products, 4 L B T^2 C
        assertEquals(2.0 * 30720 * 16 + 4.0 * 2 * 2 * 8 * 8 * 32, bench.forwardFlops());
    }

    /** N counted from llm.c's parameter tensors, not from StepBench's formula: the 2-D weights a forward multiplies. */
    @Test
    void gpt2FlopsCountTheWeightsTheForwardMultiplies() {
        var bench = new StepBench("d6", 1, 4, 0);
        // wte (also the lm head), wpe, ln1w, ln1b, qkvw, qkvb, attprojw, attprojb, ln2w, ln2b, fcw, fcb, fcprojw, ...
        long[] sizes = GPT2Config.fromDescriptor("d6").parameterSizes();
        long matmulWeights = sizes[0] + sizes[4] + sizes[6] + sizes[10] + sizes[12];
        long L = 6, C = 384, BT = 4, T = 4;
        assertEquals(2.0 * BT * matmulWeights + 4.0 * L * BT * T * C, bench.forwardFlops());
        assertThrows(LlmcException.class, bench::describeConfig);
    }

    @Test
    void namesTheDescriptorFieldThatIsWrong() {
        var unknownKey = assertThrows(LlmcException.class, () -> Llama3Descriptor.parse("llama3:L2,X4"));
        assertTrue(unknownKey.getMessage().contains("key 'X'"), unknownKey.getMessage());
        var noNumber = assertThrows(LlmcException.class, () -> Llama3Descriptor.parse("llama3:L2,C"));
        assertTrue(noNumber.getMessage().contains("field 'C'"), noNumber.getMessage());
        var notWhole = assertThrows(LlmcException.class, () -> Llama3Descriptor.parse("llama3:C1.5"));
        assertTrue(notWhole.getMessage().contains("C: expected a whole number, found 1.5"), notWhole.getMessage());
        var tooLong = assertThrows(LlmcException.class, () -> new StepBench(TINY_LLAMA, 1, 32, 0));
        assertTrue(tooLong.getMessage().contains("MAXT32"), tooLong.getMessage());
        assertEquals(Llama3Descriptor.BENCHMARK_SHAPE, Llama3Descriptor.parse("llama3"));
        assertEquals(1792, Llama3Descriptor.BENCHMARK_SHAPE.ffnHidden());
        assertEquals(16, Llama3Descriptor.parse("llama3:3.2-1B").numLayers());
    }

    /**
     * The summary line, and a recording read back without an error (which deoptimizations it holds depends on the
     * JIT's timing, so the test asserts none).
     */
    @Test
    void theDeoptimizationWatchNamesAStorm() {
        try (var watch = new DeoptimizationWatch()) {
            watch.stop();
        }
        assertEquals("JIT: no deoptimizations during the timed steps", DeoptimizationWatch.summary(Map.of()));
        String calm = DeoptimizationWatch.summary(Map.of("a.B.c", 2, "a.B.d", 1));
        assertEquals("JIT: 3 deoptimizations during the timed steps (most in one method: 2, a.B.c)", calm);
        String storm = DeoptimizationWatch.summary(Map.of("a.B.c", 2, "a.B.gelu", 28));
        assertTrue(storm.startsWith("JIT: 30 deoptimizations") && storm.contains("28, a.B.gelu); a storm"), storm);
    }

    /**
     * A profiling recording the user started beside the watch (-XX:StartFlightRecording) puts its own events into
     * the watch's dump; the watch counts deoptimizations only, and does not fail on the others.
     */
    @Test
    void theDeoptimizationWatchReadsOnlyItsEventsBesideAProfile() throws Exception {
        try (var profile = new Recording()) {
            profile.enable("jdk.ThreadSleep").withThreshold(Duration.ZERO);
            profile.start();
            try (var watch = new DeoptimizationWatch()) {
                Thread.sleep(5);
                Map<String, Integer> perMethod = watch.stop();
                assertFalse(perMethod.containsKey("?"), perMethod.toString());
            }
        }
    }

    /**
     * C1 compiles every kernel method the project's steps run: one it gives up on ("out of virtual registers": a
     * row loop written out too long) runs with its vector calls boxed until C2 compiles it, and can stay there (a
     * SwiGLU backward at 14 ms a call instead of 1.7). In a fresh JVM, so that no other test compiled the kernels
     * before the recording started: a few steps of GPT-2 d6 and of a small Llama 3, vectorized kernels.
     */
    @Test
    void c1CompilesEveryKernelTheStepsRun() throws Exception {
        var failures = new StringBuilder();
        for (String model : new String[] {"d6", "llama3:L2,C64,NH4,NKV2,V512,MO16,MAXT64"}) {
            var command = List.of(
                    Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                    "--add-modules",
                    "jdk.incubator.vector",
                    "--enable-native-access=ALL-UNNAMED",
                    "-cp",
                    System.getProperty("java.class.path"),
                    StepBench.class.getName(),
                    model,
                    "2",
                    "64",
                    "4",
                    "4");
            var process = new ProcessBuilder(command).redirectErrorStream(true).start();
            String output = new String(process.getInputStream().readAllBytes());
            assertEquals(0, process.waitFor(), output);
            if (!output.contains("JIT: C1 compiled every method of the project it tried"))
                failures.append(model).append(":\n").append(output);
        }
        assertTrue(failures.isEmpty(), failures.toString());
        assertEquals(
                "JIT: C1 gave up on 1 of the project's methods (boxed vector calls until C2 compiles them): a.B.c",
                CompilationFailureWatch.summary(Set.of("a.B.c")));
    }
}
