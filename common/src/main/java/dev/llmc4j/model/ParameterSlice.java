package dev.llmc4j.model;

/**
 * One layer of one parameter tensor inside the flat parameter vector: {@code count} floats from {@code offset}.
 * ZeRO-1 cuts each slice into one piece per process (see {@code dev.llmc4j.train.OptimizerShard}), and a GPU
 * reduces a layer's slices as soon as that layer's backward is done.
 */
public record ParameterSlice(long offset, long count) {}
