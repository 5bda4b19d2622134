package dev.llmc4j.bench;

import dev.llmc4j.format.TokenShard;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
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
 * The whole-shard token check a {@code DataLoader} runs when it opens a shard ({@link TokenShard#checkTokensBelow}):
 * 100M tokens, GPT-2 (uint16, 200 MB) and Llama 3 (uint32, 400 MB), the file in the page cache as after the first
 * open. One operation is one check of the whole shard.
 */
@BenchmarkMode(Mode.AverageTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(
        value = 1,
        jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
@State(Scope.Benchmark)
public class ShardCheckBench {

    @Param({"GPT2", "LLAMA3"})
    public String kind;

    @Param("100000000")
    public int tokens;

    private Path file;
    private Arena arena;
    private TokenShard shard;

    @Setup(Level.Trial)
    public void setUp() throws IOException {
        var shardKind = TokenShard.Kind.valueOf(kind);
        file = Files.createTempFile("shard-check", ".bin");
        try (var channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            var header = ByteBuffer.allocate(TokenShard.HEADER_BYTES).order(ByteOrder.LITTLE_ENDIAN);
            header.putInt(0, shardKind.magic).putInt(4, shardKind.version).putInt(8, tokens);
            channel.write(header);
            var block = ByteBuffer.allocate(1 << 20).order(ByteOrder.LITTLE_ENDIAN);
            long written = 0;
            while (written < tokens) {
                block.clear();
                while (block.remaining() >= shardKind.tokenBytes && written < tokens) {
                    int id = (int) (written * 2654435761L % 50257); // ids all over GPT-2's vocabulary
                    if (shardKind.tokenBytes == 2) block.putShort((short) id);
                    else block.putInt(id);
                    written++;
                }
                channel.write(block.flip());
            }
        }
        arena = Arena.ofShared();
        shard = TokenShard.open(file, arena);
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        arena.close();
        try {
            Files.deleteIfExists(file);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    @Benchmark
    public TokenShard checkWholeShard() {
        shard.checkTokensBelow(50257);
        return shard;
    }
}
