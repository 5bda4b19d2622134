package dev.llmc4j.util;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A file written atomically is either its old self or complete, never half written, and no temporary is left. */
class AtomicFilesTest {
    @TempDir
    Path folder;

    @Test
    void pendingFileAppearsOnlyOnCommit() throws IOException {
        Path target = folder.resolve("sub/shard.bin");
        try (var file = AtomicFiles.begin(target)) {
            file.channel().write(ByteBuffer.wrap(new byte[] {1, 2, 3}));
            file.channel().write(ByteBuffer.wrap(new byte[] {9}), 0); // a header patched at the end
            assertFalse(Files.exists(target));
            file.commit();
        }
        assertArrayEquals(new byte[] {9, 2, 3}, Files.readAllBytes(target));
        try (var stream = Files.list(target.getParent())) {
            assertEquals(1, stream.count(), "no temporary file left");
        }
    }

    @Test
    void closingWithoutCommitKeepsTheOldFileAndLeavesNoTemporary() throws IOException {
        Path target = Files.write(folder.resolve("old.bin"), new byte[] {7});
        try (var file = AtomicFiles.begin(target)) {
            file.channel().write(ByteBuffer.wrap(new byte[] {1, 2}));
        }
        assertArrayEquals(new byte[] {7}, Files.readAllBytes(target));
        try (var stream = Files.list(folder)) {
            assertEquals(1, stream.count());
        }
        AtomicFiles.write(target, new byte[] {4, 5});
        assertArrayEquals(new byte[] {4, 5}, Files.readAllBytes(target));
    }
}
