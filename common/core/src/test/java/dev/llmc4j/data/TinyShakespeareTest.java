package dev.llmc4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.sun.net.httpserver.HttpServer;
import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.net.InetSocketAddress;
import java.net.URI;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Downloads only from a server on this machine: tests never reach the network. */
class TinyShakespeareTest {
    @TempDir
    Path folder;

    @Test
    void downloadsWithProgressFromALocalServer() throws IOException {
        byte[] content = "To be, or not to be\n".repeat(5000).getBytes();
        HttpServer server = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        server.createContext("/input.txt", exchange -> {
            exchange.sendResponseHeaders(200, content.length);
            try (var body = exchange.getResponseBody()) {
                body.write(content);
            }
        });
        server.start();
        try {
            var last = new AtomicLong(-1);
            var total = new AtomicLong();
            Path target = folder.resolve("cache/input.txt");
            TinyShakespeare.download(
                    URI.create("http://127.0.0.1:" + server.getAddress().getPort() + "/input.txt"),
                    target,
                    (done, all) -> {
                        last.set(done);
                        total.set(all);
                    });
            assertArrayEquals(content, Files.readAllBytes(target));
            assertEquals(content.length, last.get());
            assertEquals(content.length, total.get());
            // not char-rnn's text, so the hash check refuses it and says what to do
            var error = assertThrows(LlmcException.class, () -> TinyShakespeare.verify(target));
            assertTrue(
                    error.getMessage().contains("SHA-256") && error.getMessage().contains(TinyShakespeare.SHA256),
                    error.getMessage());
        } finally {
            server.stop(0);
        }
    }

    @Test
    void offlineMessageGivesBothWaysOut() {
        Path target = folder.resolve("cache/input.txt");
        // port 1 on the loopback: refused at once, no network involved
        var error = assertThrows(
                LlmcException.class,
                () -> TinyShakespeare.download(
                        URI.create("http://127.0.0.1:1/input.txt"), target, TinyShakespeare.Progress.NONE));
        assertTrue(error.getMessage().contains("--input FILE"), error.getMessage());
        assertTrue(error.getMessage().contains(target.toString()), error.getMessage());
        assertTrue(Files.notExists(target));
    }

    @Test
    void givenInputIsVerified() throws IOException {
        Path input = DatasetBuilderTest.tinyShakespeareText();
        if (Files.isRegularFile(input))
            assertEquals(input, TinyShakespeare.locate(input, folder, TinyShakespeare.Progress.NONE));
        Path wrong = folder.resolve("wrong.txt");
        Files.writeString(wrong, "not shakespeare");
        assertThrows(LlmcException.class, () -> TinyShakespeare.locate(wrong, folder, TinyShakespeare.Progress.NONE));
        assertThrows(
                LlmcException.class,
                () -> TinyShakespeare.locate(folder.resolve("none.txt"), folder, TinyShakespeare.Progress.NONE));
    }
}
