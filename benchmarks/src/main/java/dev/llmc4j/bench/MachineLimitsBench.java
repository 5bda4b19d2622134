package dev.llmc4j.bench;

import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

/**
 * This machine's two limits under JMH, the same loops as {@link MachineLimits} (which the bench scripts run for
 * their ratios): {@code fmaPeak} reports the fp32 FMA peak in its "gflops" column (GFLOP/s, all threads, 8 FMA
 * chains each, no memory) and {@code readBandwidth} the read bandwidth in its "gbytes" column (GB/s, all threads
 * summing their parts of 512 MiB). JMH's warm-up and forks stand in for MachineLimits' best-of-rounds.
 *
 * <pre>
 *   java -jar benchmarks/target/benchmarks.jar MachineLimitsBench
 * </pre>
 */
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class MachineLimitsBench {
    private static final int CALLS = 200; // per thread and operation: 15 GFLOP on 2 threads, 38 ms at 400 GFLOP/s

    MachineLimits.ReadProbe probe;

    @Setup
    public void setup() {
        probe = new MachineLimits.ReadProbe();
    }

    @TearDown
    public void tearDown() {
        probe.close();
    }

    @Benchmark
    public void fmaPeak(Data.Flops flops) {
        MachineLimits.fmaPeakRound(CALLS);
        flops.gflops += MachineLimits.fmaRoundFlops(CALLS) / 1e9;
    }

    @Benchmark
    public void readBandwidth(Data.Bytes bytes) {
        probe.gigabytesPerSecond(1);
        bytes.gbytes += probe.bytes() / 1e9;
    }
}
