package dev.llmc4j.cli;

import dev.llmc4j.format.FileFormatException;
import dev.llmc4j.llama3.Llama3Checkpoint;
import dev.llmc4j.model.GPT2Checkpoint;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/** Which model a checkpoint holds, told by its magic number: llm.c's GPT-2 (20240326) or Llama 3 (20240803). */
enum ModelFile {
    GPT2,
    LLAMA3;

    static ModelFile of(Path file) {
        var header = ByteBuffer.allocate(4).order(ByteOrder.LITTLE_ENDIAN);
        try (var channel = FileChannel.open(file)) {
            while (header.hasRemaining() && channel.read(header) >= 0) {
                /* read the magic */
            }
        } catch (NoSuchFileException e) {
            throw new LlmcException("model file not found: " + file);
        } catch (IOException e) {
            throw new LlmcException("cannot read " + file + ": " + e.getMessage(), e);
        }
        if (header.hasRemaining())
            throw new FileFormatException(file, "file size", ">= 1024 bytes (a header)", "a shorter file");
        int magic = header.getInt(0);
        return switch (magic) {
            case GPT2Checkpoint.MAGIC -> GPT2;
            case Llama3Checkpoint.MAGIC -> LLAMA3;
            default ->
                throw new FileFormatException(
                        file,
                        "header[0] (magic)",
                        GPT2Checkpoint.MAGIC + " (GPT-2) or " + Llama3Checkpoint.MAGIC + " (Llama 3)",
                        magic);
        };
    }
}
