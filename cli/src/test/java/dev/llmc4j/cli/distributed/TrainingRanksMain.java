package dev.llmc4j.cli.distributed;

import dev.llmc4j.distributed.Communicator;
import dev.llmc4j.distributed.MpiCommunicator;
import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingConfig;
import java.io.IOException;
import java.io.OutputStream;
import java.io.PrintStream;
import java.lang.foreign.Arena;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;

/**
 * One rank of {@link DistributedTrainingTest}'s mpirun job: checks the collectives, then trains a tiny GPT-2 in four
 * ways, one JVM start for all. Rank 0 writes each run's step losses (exact float bits) to {@code <dir>/<name>.losses}.
 */
public final class TrainingRanksMain {
    static final GPT2Config TINY = new GPT2Config(32, 96, 128, 2, 2, 16);

    public static void main(String[] args) throws IOException {
        Path dir = Path.of(args[0]);
        try (Communicator comm = MpiCommunicator.init()) {
            collectives(comm, dir);
            int P = comm.size(), r = comm.rank();
            // 1. ZeRO-0 on data holding exactly one batch per rank: the test compares it with one process and 2x
            // accumulation
            train(comm, dir, "small-z0", config(dir, "small", 6, 2, P, r, null, false), 0);
            // 2. and 3. ZeRO-0 and ZeRO-1 on shuffled data; ZeRO-1 writes checkpoints at steps 3 and 6
            train(comm, dir, "big-z0", config(dir, "big", 6, 2, P, r, null, false), 0);
            train(comm, dir, "big-z1", config(dir, "big", 6, 2, P, r, dir.resolve("z1"), false), 1);
            // 4. resume ZeRO-1 from its step-3 checkpoint (copied alone into a fresh folder) and finish the 6 steps
            if (r == 0) {
                Files.createDirectories(dir.resolve("resumed"));
                for (String name : List.of(
                        "model_00000003.bin", "state_00000003_00000.bin", "state_00000003_00001.bin", "DONE_00000003"))
                    Files.copy(
                            dir.resolve("z1").resolve(name),
                            dir.resolve("resumed").resolve(name),
                            StandardCopyOption.REPLACE_EXISTING);
            }
            comm.barrier();
            train(comm, dir, "big-z1-resumed", config(dir, "big", 6, 2, P, r, dir.resolve("resumed"), true), 1);
        }
    }

    static TrainingConfig config(
            Path dir, String data, int steps, int valBatches, int P, int rank, Path out, boolean resume) {
        // B=2, T=8, total batch = B*T*P (no accumulation), lr 1e-3 cosine with warmup, weight decay, checkpoints every
        // 3
        return new TrainingConfig(
                dir.resolve(data + "-train.bin").toString(),
                dir.resolve(data + "-val.bin").toString(),
                2,
                8,
                -1,
                steps,
                1e-3f,
                2,
                0.1f,
                "cosine",
                0.1f,
                1.0f,
                3,
                valBatches,
                0,
                0,
                false,
                out,
                3,
                0,
                0,
                resume,
                0,
                0,
                null,
                P,
                rank);
    }

    private static void train(Communicator comm, Path dir, String name, TrainingConfig config, int zeroStage)
            throws IOException {
        PrintStream out = comm.rank() == 0 ? System.out : new PrintStream(OutputStream.nullOutputStream());
        Path model = config.resume() ? Trainer.resumeModelFile(config.outputDir()) : null;
        try (var gpt2 = model != null ? GPT2.fromCheckpoint(model) : GPT2.randomInit(TINY)) {
            var result = new Trainer(gpt2, config, out, comm, zeroStage).run();
            if (comm.rank() == 0) writeLosses(dir.resolve(name + ".losses"), result);
        }
    }

    static void writeLosses(Path file, Trainer.Result result) throws IOException {
        var lines = new ArrayList<String>();
        for (var p : result.trainLosses())
            lines.add("train " + p.step() + " " + Integer.toHexString(Float.floatToRawIntBits(p.loss())));
        for (var p : result.valLosses())
            lines.add("val " + p.step() + " " + Integer.toHexString(Float.floatToRawIntBits(p.loss())));
        Files.write(file, lines);
    }

    /** all-reduce, reduce-scatter, all-gather, broadcast on small arrays: rank 0 writes what it found. */
    private static void collectives(Communicator comm, Path dir) throws IOException {
        int P = comm.size(), r = comm.rank();
        var lines = new ArrayList<String>();
        try (var arena = Arena.ofConfined()) {
            var floats = arena.allocate(ValueLayout.JAVA_FLOAT, 4L * P);
            for (int i = 0; i < 4 * P; i++) floats.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 100 * r);
            comm.allReduceMean(floats, 4L * P);
            lines.add("allReduceMean " + floatsOf(floats, 4 * P));
            for (int i = 0; i < 4 * P; i++) floats.setAtIndex(ValueLayout.JAVA_FLOAT, i, i + 100 * r);
            comm.reduceScatterMean(floats, 4);
            var shard = new ArrayList<String>();
            for (int i = 4 * r; i < 4 * r + 4; i++)
                shard.add(Float.toString(floats.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
            comm.allGather(floats, 4);
            lines.add("reduceScatterMean+allGather " + floatsOf(floats, 4 * P));
            var bytes = arena.allocate(5);
            if (r == 0) bytes.copyFrom(java.lang.foreign.MemorySegment.ofArray(new byte[] {1, 2, 3, 4, 5}));
            comm.broadcast(bytes, 0);
            lines.add("broadcast " + java.util.Arrays.toString(bytes.toArray(ValueLayout.JAVA_BYTE)));
            lines.add("allReduceSum " + comm.allReduceSum(r + 1.5));
            // every rank reports its view; rank 1's must match rank 0's
            Files.write(dir.resolve("collectives-" + r + ".txt"), lines);
        }
        comm.barrier();
    }

    private static String floatsOf(java.lang.foreign.MemorySegment floats, int n) {
        var parts = new ArrayList<String>();
        for (int i = 0; i < n; i++) parts.add(Float.toString(floats.getAtIndex(ValueLayout.JAVA_FLOAT, i)));
        return String.join(" ", parts);
    }
}
