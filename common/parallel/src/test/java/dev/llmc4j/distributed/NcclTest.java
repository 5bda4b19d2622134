package dev.llmc4j.distributed;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.util.LlmcException;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The NCCL binding without a GPU: a missing library gives a clear message, and against a stand-in library with
 * NCCL's signatures (compiled here from fake_nccl.c when a C compiler exists) every call passes its arguments right,
 * the 128-byte id included, which goes by value.
 */
class NcclTest {
    @TempDir
    Path dir;

    @AfterEach
    void clearLibrary() {
        System.clearProperty("llmc.nccl.lib");
    }

    @Test
    void missingLibrarySaysWhatToInstall() {
        System.setProperty("llmc.nccl.lib", dir.resolve("libnccl-absent.so.2").toString());
        var error = assertThrows(LlmcException.class, Nccl::load);
        assertTrue(
                error.getMessage()
                        .startsWith("cannot load NCCL (tried " + dir.resolve("libnccl-absent.so.2")
                                + "), which multi-GPU training needs"),
                error.getMessage());
    }

    private Path compileFake() throws Exception {
        return FakeNccl.compile(dir);
    }

    @Test
    void bindingPassesEveryArgumentThrough() throws Throwable {
        Path library = compileFake();
        System.setProperty("llmc.nccl.lib", library.toString());
        var nccl = Nccl.load();
        assertEquals(21903, nccl.version());
        MethodHandle last = Linker.nativeLinker()
                .downcallHandle(
                        SymbolLookup.libraryLookup(library, Arena.global())
                                .find("fake_last")
                                .orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));

        byte[] id = nccl.uniqueId();
        assertEquals(128, id.length);
        for (int i = 0; i < 128; i++) assertEquals((byte) (i * 3 + 1), id[i]);

        try (var comm = nccl.initRank(4, id, 3)) {
            long weighted = 0;
            for (int i = 0; i < 128; i++) weighted += (id[i] & 0xff) * (i + 1L);
            assertEquals(4L, (long) last.invokeExact(0));
            assertEquals(3L, (long) last.invokeExact(1));
            assertEquals(weighted, (long) last.invokeExact(2), "the id arrives by value, all 128 bytes");
            assertEquals(4, comm.size());
            assertEquals(3, comm.rank());

            var stream = MemorySegment.ofAddress(0x5000);
            comm.allReduce(0x1000, 0x1000, 1L << 33, Nccl.DataType.BFLOAT16, Nccl.ReduceOp.AVG, stream);
            assertArrayEquals(new long[] {0x1000, 0x1000, 1L << 33, 9, 4, 1, 0x5000}, lastCall(last));
            comm.reduceScatter(0x2000, 0x3000, 12345, Nccl.DataType.FLOAT32, Nccl.ReduceOp.SUM, stream);
            assertArrayEquals(new long[] {0x2000, 0x3000, 12345, 7, 0, 1, 0x5000}, lastCall(last));
            comm.allGather(0x3000, 0x2000, 777, Nccl.DataType.FLOAT32, stream);
            assertArrayEquals(new long[] {0x3000, 0x2000, 777, 7, -1, 1, 0x5000}, lastCall(last));
            comm.broadcast(0x4000, 0x4000, 128, Nccl.DataType.INT32, 0, stream);
            assertArrayEquals(new long[] {0x4000, 0x4000, 128, 2, 0, 1, 0x5000}, lastCall(last));
            nccl.groupStart();
            assertEquals(1L, (long) last.invokeExact(7));
            nccl.groupEnd();
            assertEquals(0L, (long) last.invokeExact(7));

            var error = assertThrows(
                    LlmcException.class,
                    () -> comm.allReduce(0x1000, 0x1000, 0, Nccl.DataType.FLOAT32, Nccl.ReduceOp.SUM, stream));
            assertEquals("ncclAllReduce failed: fake error 4 (ncclResult_t 4)", error.getMessage());
        }
        assertEquals(101L, (long) last.invokeExact(5), "ncclCommDestroy got the communicator");
    }

    private static long[] lastCall(MethodHandle last) throws Throwable {
        long[] values = new long[7];
        for (int i = 0; i < 7; i++) values[i] = (long) last.invokeExact(i);
        return values;
    }
}
