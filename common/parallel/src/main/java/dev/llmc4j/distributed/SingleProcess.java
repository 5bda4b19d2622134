package dev.llmc4j.distributed;

import java.lang.foreign.MemorySegment;

/** One process training alone: there is nobody to talk to, so every collective leaves the data as it is. */
public final class SingleProcess implements Communicator {
    public static final SingleProcess INSTANCE = new SingleProcess();

    private SingleProcess() {}

    @Override
    public int rank() {
        return 0;
    }

    @Override
    public int size() {
        return 1;
    }

    @Override
    public String description() {
        return "single process";
    }

    @Override
    public void allReduceMean(MemorySegment floats, long count) {}

    @Override
    public float allReduceMean(float value) {
        return value;
    }

    @Override
    public double allReduceSum(double value) {
        return value;
    }

    @Override
    public void reduceScatterMean(MemorySegment floats, long shardCount) {}

    @Override
    public void allGather(MemorySegment floats, long shardCount) {}

    @Override
    public void broadcast(MemorySegment bytes, int root) {}

    @Override
    public void barrier() {}

    @Override
    public void abort(int exitCode) {
        Runtime.getRuntime().halt(exitCode);
    }

    @Override
    public void close() {}
}
