package dev.llmc4j.bench;

import dev.llmc4j.cpu.Matmul;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * The matmuls of GPT-2 124M at B=4, T=64 (BT=256): forward and backward, baseline vs fast. The "gflops" column
 * is the rate in GFLOP/s (2 flops per multiply-add; the backward does twice the forward's).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class MatmulBench {

    /** layer: C -> OC; lmhead is the tied wte (Vp = 50304). */
    @Param({"qkv", "attproj", "fc", "fcproj", "lmhead"})
    public String layer;

    @Param({"fast", "baseline"})
    public String kernel;

    @Param({"256"})
    public int BT;

    int C, OC;
    Matmul matmul;
    Arena arena;
    MemorySegment inp, weight, bias, out, dinp, dweight, dbias, dout;

    @Setup
    public void setup() {
        switch (layer) {
            case "qkv" -> {
                C = 768;
                OC = 3 * 768;
            }
            case "attproj" -> {
                C = 768;
                OC = 768;
            }
            case "fc" -> {
                C = 768;
                OC = 4 * 768;
            }
            case "fcproj" -> {
                C = 4 * 768;
                OC = 768;
            }
            case "lmhead" -> {
                C = 768;
                OC = 50304;
            }
            default -> throw new IllegalArgumentException(layer);
        }
        matmul = kernel.equals("fast") ? Matmul.VECTOR : Matmul.BASELINE;
        arena = Arena.ofShared();
        inp = Data.random(arena, (long) BT * C, 1);
        weight = Data.random(arena, (long) OC * C, 2);
        bias = layer.equals("lmhead") ? null : Data.random(arena, OC, 3);
        dout = Data.random(arena, (long) BT * OC, 4);
        out = Data.zeros(arena, (long) BT * OC);
        dinp = Data.zeros(arena, (long) BT * C);
        dweight = Data.zeros(arena, (long) OC * C);
        dbias = bias == null ? null : Data.zeros(arena, OC);
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public void forward(Data.Flops flops) {
        matmul.forward(out, inp, weight, bias, BT, C, OC);
        flops.gflops += 2.0 * BT * C * OC / 1e9;
    }

    @Benchmark
    public void backward(Data.Flops flops) {
        matmul.backward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC);
        flops.gflops += 4.0 * BT * C * OC / 1e9;
    }
}
