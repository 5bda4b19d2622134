package dev.llmc4j.util;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Writes a file so that a crash never leaves half of it: the bytes go to a temporary file in the same folder,
 * are forced to disk, and the temporary file is renamed over the target in one step.
 */
public final class AtomicFiles {
    private AtomicFiles() {}

    /** What writes the contents, given an open channel positioned at 0. */
    @FunctionalInterface
    public interface ChannelWriter {
        void write(FileChannel channel) throws IOException;
    }

    public static void write(Path target, ChannelWriter writer) {
        try (var file = begin(target)) {
            writer.write(file.channel());
            file.commit();
        } catch (IOException e) {
            throw new LlmcException("cannot write " + target + ": " + e.getMessage(), e);
        }
    }

    /**
     * A file written piece by piece (a token shard that grows as a corpus is tokenized): the bytes go to a
     * temporary file beside the target until {@link #commit()} forces and renames it; closing without commit
     * deletes it, so the target is either absent (or its old self) or complete.
     */
    public static final class Pending implements AutoCloseable {
        private final Path target;
        private Path temporary;
        private final FileChannel channel;

        private Pending(Path target) throws IOException {
            this.target = target.toAbsolutePath();
            Path folder = this.target.getParent();
            Files.createDirectories(folder);
            temporary = Files.createTempFile(folder, "." + this.target.getFileName(), ".tmp");
            makeReadableLikeANewFile(temporary);
            channel = FileChannel.open(temporary, StandardOpenOption.WRITE, StandardOpenOption.TRUNCATE_EXISTING);
        }

        public FileChannel channel() {
            return channel;
        }

        /** Forces the bytes to disk and renames the temporary file over the target in one step. */
        public void commit() throws IOException {
            channel.force(true);
            channel.close();
            try {
                Files.move(temporary, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
            } catch (AtomicMoveNotSupportedException e) {
                Files.move(temporary, target, StandardCopyOption.REPLACE_EXISTING);
            }
            temporary = null;
        }

        @Override
        public void close() {
            if (temporary == null) return;
            try {
                channel.close();
                Files.deleteIfExists(temporary);
            } catch (IOException ignored) {
                // the original error is the one worth reporting
            }
        }
    }

    /** Starts writing {@code target} atomically; see {@link Pending}. */
    public static Pending begin(Path target) {
        try {
            return new Pending(target);
        } catch (IOException e) {
            throw new LlmcException("cannot write " + target + ": " + e.getMessage(), e);
        }
    }

    // createTempFile makes the file private (rw-------); the result should look like any file we create: rw-r--r--
    private static void makeReadableLikeANewFile(Path file) throws IOException {
        if (file.getFileSystem().supportedFileAttributeViews().contains("posix")) {
            Files.setPosixFilePermissions(file, java.nio.file.attribute.PosixFilePermissions.fromString("rw-r--r--"));
        }
    }

    /** Writes the whole byte array atomically. */
    public static void write(Path target, byte[] bytes) {
        write(target, channel -> {
            var buffer = java.nio.ByteBuffer.wrap(bytes);
            while (buffer.hasRemaining()) channel.write(buffer);
        });
    }
}
