package dev.llmc4j.bench;

import dev.llmc4j.cpu.AdamW;
import dev.llmc4j.cpu.CpuKernels;
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
 * The shared kernels of {@code dev.llmc4j.cpu} besides the matmul (see {@link MatmulBench}): residual, attention,
 * softmax + cross-entropy and AdamW, baseline vs vectorized, at GPT-2 124M's shapes with B=4, T=64 (C = 768, NH = 12,
 * Vp = 50304). Attention reports "gflops" (GFLOP/s of its causal dot products); the memory-bound rest report
 * "gbytes" (GB/s of the bytes a call must read and write at least). Each group has its own state, so a
 * benchmark allocates only its own buffers.
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class KernelBench {
    static final int B = 4, T = 64, C = 768, NH = 12, V = 50257, Vp = 50304;
    static final long BTC = (long) B * T * C, BT = (long) B * T;

    /** Buffers are made per benchmark, with the kernel set the parameter names. */
    @State(Scope.Benchmark)
    public abstract static class Buffers {
        @Param({"vectorized", "baseline"})
        public String kernel;

        CpuKernels kernels;
        Arena arena;

        @Setup
        public void setup() {
            kernels = CpuKernels.Choice.parse(kernel).pick(CpuKernels.BASELINE, CpuKernels.VECTORIZED);
            arena = Arena.ofShared();
            allocate();
        }

        abstract void allocate();

        @TearDown
        public void tearDown() {
            arena.close();
        }
    }

    /** Residual: (B,T,C). */
    public static class Residuals extends Buffers {
        MemorySegment a, b, out, da, db, dout;

        @Override
        void allocate() {
            a = Data.random(arena, BTC, 1);
            b = Data.random(arena, BTC, 2);
            out = Data.zeros(arena, BTC);
            da = Data.zeros(arena, BTC);
            db = Data.zeros(arena, BTC);
            dout = Data.random(arena, BTC, 3);
        }
    }

    /** Attention: qkv (B,T,3C) in, out (B,T,C), preatt and att (B,NH,T,T). */
    public static class Attentions extends Buffers {
        MemorySegment qkv, out, preatt, att, dqkv, dout, dpreatt, datt;

        @Override
        void allocate() {
            long attention = (long) B * NH * T * T;
            qkv = Data.random(arena, 3 * BTC, 1);
            out = Data.zeros(arena, BTC);
            preatt = Data.zeros(arena, attention);
            att = Data.zeros(arena, attention);
            kernels.attentionForward(out, preatt, att, qkv, B, T, NH, NH, C / NH); // a real att for the backward
            dqkv = Data.zeros(arena, 3 * BTC);
            dout = Data.random(arena, BTC, 2);
            dpreatt = Data.zeros(arena, attention);
            datt = Data.zeros(arena, attention);
        }
    }

    /** The head's end: logits, probs and dlogits (B,T,Vp), losses (B,T). */
    public static class Logits extends Buffers {
        MemorySegment logits, probs, losses, dlogits, dlosses;
        int[] targets;

        @Override
        void allocate() {
            logits = Data.random(arena, BT * Vp, 1);
            probs = Data.zeros(arena, BT * Vp);
            losses = Data.zeros(arena, BT);
            dlogits = Data.zeros(arena, BT * Vp);
            dlosses = Data.zeros(arena, BT);
            for (long i = 0; i < BT; i++) dlosses.setAtIndex(java.lang.foreign.ValueLayout.JAVA_FLOAT, i, 1.0f / BT);
            targets = new SplittableRandom(2).ints((int) BT, 0, V).toArray();
            kernels.softmaxForward(probs, logits, (int) BT, V, Vp); // real probabilities for the backward
        }
    }

    /** AdamW over one transformer block's parameters: 12 C^2 + 13 C floats (7.1M at C = 768). */
    public static class Optimizer extends Buffers {
        static final long N = 12L * C * C + 13L * C;
        MemorySegment params, grads, m, v;
        int t;

        @Override
        void allocate() {
            params = Data.random(arena, N, 1);
            grads = Data.random(arena, N, 2);
            m = Data.zeros(arena, N);
            v = Data.zeros(arena, N);
        }
    }

    @Benchmark
    public void residualForward(Residuals s, Data.Bytes bytes) {
        s.kernels.residualForward(s.out, s.a, s.b, BTC);
        bytes.gbytes += 4.0 * 3 * BTC / 1e9; // read a, b; write out
    }

    @Benchmark
    public void residualBackward(Residuals s, Data.Bytes bytes) {
        s.kernels.residualBackward(s.da, s.db, s.dout, BTC);
        bytes.gbytes += 4.0 * 5 * BTC / 1e9; // read dout; read and write da, db
    }

    /** Per (b, head): q·k over the causal triangle and att·v, T(T+1)/2 dot products of hs each, 2 flops a term. */
    static double attentionForwardGflop() {
        double triangle = T * (T + 1) / 2.0;
        return B * NH * 2 * triangle * (C / NH) * 2 / 1e9;
    }

    @Benchmark
    public void attentionForward(Attentions s, Data.Flops flops) {
        s.kernels.attentionForward(s.out, s.preatt, s.att, s.qkv, B, T, NH, NH, C / NH);
        flops.gflops += attentionForwardGflop();
    }

    @Benchmark
    public void attentionBackward(Attentions s, Data.Flops flops) {
        s.kernels.attentionBackward(s.dqkv, s.dpreatt, s.datt, s.dout, s.qkv, s.att, B, T, NH, NH, C / NH);
        flops.gflops += 2 * attentionForwardGflop(); // datt and dv, then dq and dk: four causal products
    }

    @Benchmark
    public void softmaxCrossentropyForward(Logits s, Data.Bytes bytes) {
        s.kernels.softmaxForward(s.probs, s.logits, (int) BT, V, Vp);
        s.kernels.crossentropyForward(s.losses, s.probs, s.targets, (int) BT, Vp);
        bytes.gbytes +=
                4.0 * (BT * V + BT * Vp + 2 * BT) / 1e9; // read logits; write probs; read probs[target], write losses
    }

    @Benchmark
    public void softmaxCrossentropyBackward(Logits s, Data.Bytes bytes) {
        s.kernels.crossentropySoftmaxBackward(s.dlogits, s.dlosses, s.probs, s.targets, (int) BT, V, Vp);
        bytes.gbytes += 4.0 * (3 * BT * V + BT) / 1e9; // read probs, dlogits; write dlogits; read dlosses
    }

    @Benchmark
    public void adamw(Optimizer s, Data.Bytes bytes) {
        var step = new AdamW.Step(1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 1.0f, ++s.t);
        s.kernels.adamwUpdate(s.params, s.grads, s.m, s.v, 0, Optimizer.N, step);
        bytes.gbytes += 4.0 * 7 * Optimizer.N / 1e9; // read params, grads, m, v; write params, m, v
    }
}
