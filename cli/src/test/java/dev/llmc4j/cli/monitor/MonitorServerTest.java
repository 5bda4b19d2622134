package dev.llmc4j.cli.monitor;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.llmc4j.gpt2.GPT2;
import dev.llmc4j.model.GPT2Config;
import dev.llmc4j.train.Trainer;
import dev.llmc4j.train.TrainingListener.StepLog;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

/** The live page's server: its files, read-only, and the event stream (the state first, then each change). */
class MonitorServerTest {

    private GPT2 model;
    private RunMonitor monitor;
    private MonitorServer server;
    private final HttpClient http = HttpClient.newHttpClient();

    @BeforeEach
    void start() {
        model = GPT2.randomInit(new GPT2Config(16, 64, 64, 1, 2, 8));
        monitor = new RunMonitor(model, Map.of("title", "server test"), 1, String::valueOf, null);
        server = new MonitorServer(monitor, "127.0.0.1", 0);
    }

    @AfterEach
    void stop() {
        server.close();
        model.close();
    }

    private HttpResponse<String> send(String method, String path) throws Exception {
        var request = HttpRequest.newBuilder(URI.create(server.url() + path))
                .method(method, HttpRequest.BodyPublishers.noBody());
        return http.send(request.build(), HttpResponse.BodyHandlers.ofString());
    }

    @Test
    void servesThePageAndChartJsReadOnly() throws Exception {
        var page = send("GET", "");
        assertEquals(200, page.statusCode());
        assertTrue(page.body().contains("<script src=\"chart.umd.js\"></script>"));
        var chart = send("GET", "chart.umd.js");
        assertEquals(200, chart.statusCode());
        assertTrue(chart.headers().firstValue("Content-Type").orElse("").startsWith("text/javascript"));
        assertTrue(chart.body().contains("Chart"), "Chart.js from the WebJar");
        assertEquals("window.LLMC_LIVE = true;\n", send("GET", "state.js").body());
        assertEquals(200, send("HEAD", "monitor.js").statusCode());
        assertEquals(405, send("POST", "").statusCode());
        assertEquals(405, send("DELETE", "state.json").statusCode());
        assertEquals(404, send("GET", "../pom.xml").statusCode());
        assertEquals(404, send("GET", "dev/llmc4j/cli/monitor/RunMonitor.class").statusCode());
    }

    @Test
    void eventStreamStartsWithTheStateThenSendsEachChange() throws Exception {
        monitor.stepDone(new StepLog(1, 3, 5.5f, Double.NaN, 1.25f, Double.NaN, 1e-3f, 12.5, -1, false));
        var request =
                HttpRequest.newBuilder(URI.create(server.url() + "events")).build();
        var lines =
                http.send(request, HttpResponse.BodyHandlers.ofLines()).body().iterator();
        assertEquals("event: state", lines.next());
        String state = lines.next();
        assertTrue(state.startsWith("data: {\"run\":{\"title\":\"server test\""), state);
        assertTrue(state.contains("\"steps\":[{\"step\":1,\"numSteps\":3,\"loss\":5.5,\"lossZ\":null"), state);

        monitor.stepDone(new StepLog(2, 3, 5.25f, 0.5, 1.0f, -0.5, 1e-3f, 10, 100, true));
        monitor.sampled(2, "O Romeo");
        monitor.finished(new Trainer.Result(List.of(), List.of(), 10, 3));
        var rest = new StringBuilder();
        while (lines.hasNext()) rest.append(lines.next()).append('\n'); // the stream ends after "end"
        var events =
                rest.toString().lines().filter(l -> l.startsWith("event: ")).collect(Collectors.toList());
        assertEquals(List.of("event: step", "event: sample", "event: end"), events);
        assertTrue(rest.toString().contains("\"skipped\":true"));
        assertTrue(rest.toString().contains("{\"step\":2,\"text\":\"O Romeo\"}")
                || rest.toString().contains("\"text\":\"O Romeo\""));
    }
}
