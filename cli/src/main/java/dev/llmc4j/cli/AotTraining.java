package dev.llmc4j.cli;

import dev.llmc4j.format.TokenShard;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.Random;
import java.util.stream.Stream;

/**
 * The run {@code ./llmc} records JDK 25's ahead-of-time cache from ({@code -XX:AOTCacheOutput}, JEP 483 and 514):
 * the classes a run loads, already parsed and linked, and the method profiles the JIT gathered (JEP 515), so that
 * a later start skips that work and compiles the hot kernels sooner. The cache holds what this run touched, so it
 * runs what users run, through the same command line: a few training steps of a small GPT-2 and of a small
 * Llama 3 on random tokens (with validation, sampling and a checkpoint), then {@code sample} with fp32 and bf16
 * weights. Random tokens keep it free of downloads; the shapes are small so that it takes seconds.
 *
 * <p>Started by the launcher only, when the cache is missing or older than the jar:
 * {@code java -XX:AOTCacheOutput=cli/target/llmc.aot ... dev.llmc4j.cli.AotTraining}.
 */
final class AotTraining {
    private AotTraining() {}

    public static void main(String[] args) throws IOException {
        Path dir = Files.createTempDirectory("llmc-aot-training");
        try {
            var random = new Random(1);
            Path gpt2Train = dir.resolve("gpt2_train.bin"), gpt2Val = dir.resolve("gpt2_val.bin");
            TokenShard.write(
                    gpt2Train,
                    TokenShard.Kind.GPT2,
                    random.ints(20_000, 0, 50257).toArray());
            TokenShard.write(
                    gpt2Val, TokenShard.Kind.GPT2, random.ints(4_000, 0, 50257).toArray());
            Path gpt2Out = dir.resolve("gpt2");
            run(
                    "train",
                    "--layers",
                    "2",
                    "--heads",
                    "4",
                    "--channels",
                    "128",
                    "-i",
                    gpt2Train.toString(),
                    "-j",
                    gpt2Val.toString(),
                    "-b",
                    "4",
                    "-t",
                    "64",
                    "-x",
                    "6",
                    "-v",
                    "3",
                    "-m",
                    "2",
                    "-s",
                    "3",
                    "-g",
                    "8",
                    "-n",
                    "6",
                    "-o",
                    gpt2Out.toString());
            for (String weights : new String[] {"fp32", "bf16"})
                run("sample", "-e", gpt2Out.resolve("model_00000006.bin").toString(), "-g", "16", "--weights", weights);

            Path llamaTrain = dir.resolve("llama3_train.bin"), llamaVal = dir.resolve("llama3_val.bin");
            TokenShard.write(
                    llamaTrain,
                    TokenShard.Kind.LLAMA3,
                    random.ints(20_000, 0, 512).toArray());
            TokenShard.write(
                    llamaVal, TokenShard.Kind.LLAMA3, random.ints(4_000, 0, 512).toArray());
            Path llamaOut = dir.resolve("llama3");
            run(
                    "llama3",
                    "train",
                    "--vocab",
                    "512",
                    "--layers",
                    "2",
                    "--heads",
                    "4",
                    "--kv-heads",
                    "2",
                    "--channels",
                    "128",
                    "--max-seq-len",
                    "64",
                    "-i",
                    llamaTrain.toString(),
                    "-j",
                    llamaVal.toString(),
                    "-b",
                    "4",
                    "-t",
                    "64",
                    "-x",
                    "6",
                    "-v",
                    "3",
                    "-m",
                    "2",
                    "-s",
                    "3",
                    "-g",
                    "8",
                    "-n",
                    "6",
                    "-o",
                    llamaOut.toString());
            for (String weights : new String[] {"fp32", "bf16"})
                run(
                        "llama3",
                        "sample",
                        "-e",
                        llamaOut.resolve("model_00000006.bin").toString(),
                        "-n",
                        "16",
                        "--weights",
                        weights);
        } finally {
            try (Stream<Path> files = Files.walk(dir)) {
                files.sorted(Comparator.reverseOrder()).forEach(AotTraining::delete);
            }
        }
    }

    private static void run(String... args) {
        int exitCode = Llmc.execute(args);
        if (exitCode != 0)
            throw new IllegalStateException("llmc " + String.join(" ", args) + " exited with " + exitCode);
    }

    private static void delete(Path path) {
        try {
            Files.delete(path);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }
}
