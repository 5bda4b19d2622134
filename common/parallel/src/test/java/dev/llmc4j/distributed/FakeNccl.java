package dev.llmc4j.distributed;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

/**
 * The stand-in libnccl (src/test/resources/distributed/fake_nccl.c), compiled with cc into a test's folder; a test
 * without a C compiler is skipped. The library records each call's arguments, read back with {@link #last(int)}.
 */
final class FakeNccl {
    final Path library;
    private final MethodHandle last;

    private FakeNccl(Path library) {
        this.library = library;
        this.last = Linker.nativeLinker()
                .downcallHandle(
                        SymbolLookup.libraryLookup(library, Arena.global())
                                .find("fake_last")
                                .orElseThrow(),
                        FunctionDescriptor.of(ValueLayout.JAVA_LONG, ValueLayout.JAVA_INT));
    }

    /** Compiles the stand-in and points {@code llmc.nccl.lib} at it (clear the property after the test). */
    static FakeNccl load(Path dir) throws Exception {
        var fake = new FakeNccl(compile(dir));
        System.setProperty("llmc.nccl.lib", fake.library.toString());
        return fake;
    }

    static Path compile(Path dir) throws Exception {
        Path source = dir.resolve("fake_nccl.c");
        try (InputStream in = FakeNccl.class.getResourceAsStream("/distributed/fake_nccl.c")) {
            Files.copy(in, source);
        }
        Path library = dir.resolve("libfakenccl.so");
        Process cc;
        try {
            cc = new ProcessBuilder("cc", "-shared", "-fPIC", "-O1", "-o", library.toString(), source.toString())
                    .redirectErrorStream(true)
                    .start();
        } catch (java.io.IOException e) {
            assumeTrue(false, "no C compiler (cc) to build the stand-in NCCL library: " + e.getMessage());
            return null;
        }
        assumeTrue(
                cc.waitFor(60, TimeUnit.SECONDS) && cc.exitValue() == 0,
                "cc failed: " + new String(cc.getInputStream().readAllBytes()));
        return library;
    }

    /** Argument i of the last recorded call (see fake_nccl.c). */
    long last(int i) {
        try {
            return (long) last.invokeExact(i);
        } catch (Throwable e) {
            throw new IllegalStateException(e);
        }
    }

    /** send, recv, count, type, op, comm ok, stream of the last collective. */
    long[] lastCall() {
        long[] values = new long[7];
        for (int i = 0; i < 7; i++) values[i] = last(i);
        return values;
    }
}
