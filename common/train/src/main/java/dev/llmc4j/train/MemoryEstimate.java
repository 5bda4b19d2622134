package dev.llmc4j.train;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.OptionalLong;

/**
 * What one rank of a CPU training run will hold, estimated before anything large is allocated, so that a config
 * that cannot fit is refused up front (naming the total, its parts and what to lower) instead of failing deep in
 * the first forward pass, or being killed by the operating system.
 *
 * <pre>
 * parameters       N floats                      allocated by the model
 * gradients        N floats                      of the parameters
 * AdamW m, v       2 N floats (2 N / P with ZeRO-1 over P processes)
 * activations      2 A floats                    A = the model's forward tensors at B, T (with -r's recompute);
 *                                                the backward keeps as many again for their gradients
 * sampling         the KV cache of generation    only when samples are on
 * data             the token shards' bytes       memory-mapped: the whole-shard check reads every page
 * JVM              the process's resident memory when the estimate is made (heap, code, libraries), and how
 *                  far the heap may still grow (to -Xmx)
 * </pre>
 *
 * All model parts are native memory (FFM arenas), which no JVM flag limits: the refusal compares them with what
 * the machine can give now (Linux MemAvailable, and a cgroup's limit when there is one). The JVM's parts are shown
 * in the total, not refused on: the heap stays within -Xmx by itself.
 *
 * @param parts the estimate's parts, in bytes, with their names
 */
public record MemoryEstimate(List<Part> parts) {

    /** One named part of the estimate. */
    public record Part(String name, long bytes) {}

    public MemoryEstimate {
        parts = List.copyOf(parts);
    }

    /** Builds an estimate part by part. */
    public static final class Builder {
        private final List<Part> parts = new ArrayList<>();

        public Builder add(String name, long bytes) {
            if (bytes > 0) parts.add(new Part(name, bytes));
            return this;
        }

        /** {@code count} fp32 values. */
        public Builder floats(String name, long count) {
            return add(name, Math.multiplyExact(count, (long) Float.BYTES));
        }

        /** The training state of N parameters: parameters, gradients and AdamW's m and v (ZeRO-1: a 1/P shard). */
        public Builder trainingState(long numParameters, int numProcesses, int zeroStage) {
            long optimizer = zeroStage == 1 ? Math.ceilDiv(numParameters, numProcesses) : numParameters;
            return floats("parameters", numParameters)
                    .floats("gradients", numParameters)
                    .floats("AdamW m and v" + (zeroStage == 1 ? " (ZeRO-1 shard)" : ""), 2 * optimizer);
        }

        /** The mapped bytes of the shards the run reads. */
        public Builder data(List<Path> files) {
            long bytes = 0;
            for (Path file : files) {
                try {
                    bytes += Files.size(file);
                } catch (IOException e) {
                    // a missing shard is reported by the data loader, with its own message
                }
            }
            return add("data (mapped shards)", bytes);
        }

        /**
         * The JVM: what it holds now (resident: code, classes, the heap touched so far), and how far its heap may
         * still grow (to -Xmx). The CPU models allocate heap garbage at a high rate (vector temporaries), so the
         * collector does grow the heap towards its limit: pin it with {@code LLMC_JAVA_OPTS=-Xmx512m} to keep it small.
         */
        public Builder jvm() {
            var heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage();
            long limit =
                    heap.getMax() > 0 ? heap.getMax() : Runtime.getRuntime().maxMemory();
            return add(JVM_NOW, residentBytes().orElse(0))
                    .add(JVM_HEAP_GROWTH, Math.max(0, limit - heap.getCommitted()));
        }

        public MemoryEstimate build() {
            return new MemoryEstimate(parts);
        }
    }

    public static Builder builder() {
        return new Builder();
    }

    public long totalBytes() {
        return parts.stream().mapToLong(Part::bytes).sum();
    }

    private static final String JVM_NOW = "JVM now", JVM_HEAP_GROWTH = "JVM heap growth to -Xmx";

    /**
     * Bytes the run must allocate (natively, outside the heap): everything but the JVM's parts, which it holds
     * already or may take within its own limit.
     */
    public long bytesToAllocate() {
        return parts.stream()
                .filter(p -> !p.name().startsWith("JVM "))
                .mapToLong(Part::bytes)
                .sum();
    }

    /** "1.23 GiB (parameters 474.7 MiB, gradients 474.7 MiB, ...)". */
    public String describe() {
        var text = new StringBuilder(format(totalBytes())).append(" (");
        for (int i = 0; i < parts.size(); i++) {
            if (i > 0) text.append(", ");
            text.append(parts.get(i).name())
                    .append(' ')
                    .append(format(parts.get(i).bytes()));
        }
        return text.append(')').toString();
    }

    /**
     * Refuses, with one line, when the bytes still to allocate exceed what the machine can give now.
     *
     * @param toLower what the user can lower, such as "-b (batch size), -t (sequence length), or use -r 2"
     */
    public void requireFits(String toLower) {
        OptionalLong available = availableBytes();
        if (available.isEmpty()) return; // not Linux: nothing reliable to compare with
        requireFits(available.getAsLong(), toLower);
    }

    /** As {@link #requireFits(String)}, against a given number of available bytes. */
    public void requireFits(long availableBytes, String toLower) {
        if (bytesToAllocate() > availableBytes)
            throw new LlmcException(("this run needs %s of memory per rank, %s of it native memory still to allocate, "
                            + "but the machine has %s available; lower %s")
                    .formatted(describe(), format(bytesToAllocate()), format(availableBytes), toLower));
    }

    /** GiB or MiB with one or two decimals. */
    public static String format(long bytes) {
        double mib = bytes / 1048576.0;
        return mib >= 1024
                ? String.format(Locale.ROOT, "%.2f GiB", mib / 1024)
                : String.format(Locale.ROOT, "%.1f MiB", mib);
    }

    // ---- what the machine can give ----

    /**
     * Memory the machine can give this process now: Linux's MemAvailable, capped by the cgroup's limit less its
     * usage when the process runs in a limited cgroup; empty where neither can be read.
     */
    public static OptionalLong availableBytes() {
        OptionalLong meminfo = procField(Path.of("/proc/meminfo"), "MemAvailable:");
        OptionalLong cgroup = cgroupRoom();
        if (meminfo.isEmpty()) return cgroup;
        if (cgroup.isEmpty()) return meminfo;
        return OptionalLong.of(Math.min(meminfo.getAsLong(), cgroup.getAsLong()));
    }

    /** This process's resident memory (VmRSS). */
    public static OptionalLong residentBytes() {
        return procField(Path.of("/proc/self/status"), "VmRSS:");
    }

    /** This process's peak resident memory (VmHWM). */
    public static OptionalLong peakResidentBytes() {
        return procField(Path.of("/proc/self/status"), "VmHWM:");
    }

    private static OptionalLong cgroupRoom() {
        try {
            Path max = Path.of("/sys/fs/cgroup/memory.max"), current = Path.of("/sys/fs/cgroup/memory.current");
            if (!Files.isReadable(max) || !Files.isReadable(current)) return OptionalLong.empty();
            String limit = Files.readString(max).strip();
            if (limit.equals("max")) return OptionalLong.empty();
            return OptionalLong.of(Long.parseLong(limit)
                    - Long.parseLong(Files.readString(current).strip()));
        } catch (IOException | NumberFormatException e) {
            return OptionalLong.empty();
        }
    }

    /** A "Name:   1234 kB" line of a /proc file, in bytes. */
    private static OptionalLong procField(Path file, String name) {
        try {
            for (String line : Files.readAllLines(file)) {
                if (!line.startsWith(name)) continue;
                String[] words = line.substring(name.length()).strip().split("\\s+");
                long value = Long.parseLong(words[0]);
                return OptionalLong.of(words.length > 1 && words[1].equalsIgnoreCase("kB") ? value * 1024 : value);
            }
        } catch (IOException | RuntimeException e) {
            // not Linux, or a format we do not know: no figure
        }
        return OptionalLong.empty();
    }
}
