package dev.llmc4j.bench;

import dev.llmc4j.cpu.CpuKernels;
import dev.llmc4j.gpt2.GPT2Kernels;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.util.SplittableRandom;
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
 * The layers only GPT-2 has (GPT2.java's, through {@link GPT2Kernels}): layernorm, GELU and
 * the encoder, forward and backward, baseline vs vectorized, at GPT-2 124M's shapes with B=4, T=64 (N = B*T = 256
 * positions, C = 768). All are memory-bound: the "gbytes" column is GB/s of the bytes a call must read and
 * write at least (a kernel that reads its input twice gets no credit for the second pass).
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class GPT2LayersBench {

    @Param({"vectorized", "baseline"})
    public String kernel;

    GPT2Kernels kernels;

    @Param({"4"})
    public int B;

    @Param({"64"})
    public int T;

    @Param({"768"})
    public int C;

    static final int V = 50257;

    Arena arena;
    MemorySegment inp, out, dinp, dout, weight, bias, dweight, dbias, mean, rstd; // (B,T,C) and (C) and (B,T)
    MemorySegment fch, fchGelu, dfch, dfchGelu; // (B,T,4C)
    MemorySegment wte, wpe, dwte, dwpe; // (V,C), (T,C)
    int[] tokens;
    long btc, bt;

    @Setup
    public void setup() {
        kernels = GPT2Kernels.of(CpuKernels.Choice.parse(kernel));
        arena = Arena.ofShared();
        btc = (long) B * T * C;
        bt = (long) B * T;
        inp = Data.random(arena, btc, 1);
        out = Data.zeros(arena, btc);
        dinp = Data.zeros(arena, btc);
        dout = Data.random(arena, btc, 2);
        weight = Data.random(arena, C, 3);
        bias = Data.random(arena, C, 4);
        dweight = Data.zeros(arena, C);
        dbias = Data.zeros(arena, C);
        mean = Data.zeros(arena, bt);
        rstd = Data.zeros(arena, bt);
        kernels.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C); // real mean and rstd for the backward
        fch = Data.random(arena, 4 * btc, 5);
        fchGelu = Data.zeros(arena, 4 * btc);
        dfch = Data.zeros(arena, 4 * btc);
        dfchGelu = Data.random(arena, 4 * btc, 6);
        wte = Data.random(arena, (long) V * C, 7);
        wpe = Data.random(arena, (long) T * C, 8);
        dwte = Data.zeros(arena, (long) V * C);
        dwpe = Data.zeros(arena, (long) T * C);
        tokens = new SplittableRandom(9).ints(B * T, 0, V).toArray();
    }

    @TearDown
    public void tearDown() {
        arena.close();
    }

    @Benchmark
    public void layernormForward(Data.Bytes bytes) {
        kernels.layernormForward(out, mean, rstd, inp, weight, bias, B, T, C);
        bytes.gbytes += 4.0 * (2 * btc + 2 * bt + 2L * C) / 1e9; // read inp, weight, bias; write out, mean, rstd
    }

    @Benchmark
    public void layernormBackward(Data.Bytes bytes) {
        kernels.layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, B, T, C);
        bytes.gbytes +=
                4.0 * (4 * btc + 2 * bt + 5L * C) / 1e9; // read dout, inp, dinp; write dinp; mean, rstd; dweight, dbias
    }

    @Benchmark
    public void geluForward(Data.Bytes bytes) {
        kernels.geluForward(fchGelu, fch, 4 * btc);
        bytes.gbytes += 4.0 * (2 * 4 * btc) / 1e9; // read fch, write fchGelu
    }

    @Benchmark
    public void geluBackward(Data.Bytes bytes) {
        kernels.geluBackward(dfch, fch, dfchGelu, 4 * btc);
        bytes.gbytes += 4.0 * (4 * 4 * btc) / 1e9; // read fch, dfchGelu, dfch; write dfch
    }

    @Benchmark
    public void encoderForward(Data.Bytes bytes) {
        kernels.encoderForward(out, tokens, wte, wpe, B, T, C);
        bytes.gbytes += 4.0 * (3 * btc) / 1e9; // read a wte row and a wpe row per position, write out
    }

    @Benchmark
    public void encoderBackward(Data.Bytes bytes) {
        kernels.encoderBackward(dwte, dwpe, dout, tokens, B, T, C);
        bytes.gbytes += 4.0 * (5 * btc) / 1e9; // read dout; read and write a dwte row and a dwpe row per position
    }
}
