package dev.llmc4j.cli.monitor;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.InputStream;
import java.util.List;
import java.util.Properties;

/**
 * The page's files, from the jar: our small page (index.html, monitor.js, monitor.css) and Chart.js, which Maven
 * brings as a WebJar (org.webjars.npm:chart.js); its version is read from the WebJar's own pom.properties. The live
 * server and the static report serve the same files.
 */
final class MonitorAssets {
    private MonitorAssets() {}

    static final List<String> FILES = List.of("index.html", "monitor.js", "monitor.css", "chart.umd.js");

    private static final String WEBJAR = "META-INF/maven/org.webjars.npm/chart.js/pom.properties";

    static byte[] read(String name) {
        String resource = switch (name) {
            case "chart.umd.js" -> "META-INF/resources/webjars/chart.js/" + chartJsVersion() + "/dist/chart.umd.js";
            default -> "dev/llmc4j/cli/monitor/" + name;
        };
        try (InputStream in = MonitorAssets.class.getClassLoader().getResourceAsStream(resource)) {
            if (in == null)
                throw new LlmcException("the monitor's page is incomplete: " + resource + " is not on the class path");
            return in.readAllBytes();
        } catch (IOException e) {
            throw new LlmcException("cannot read " + resource + ": " + e.getMessage(), e);
        }
    }

    static String contentType(String name) {
        return name.endsWith(".html")
                ? "text/html; charset=utf-8"
                : name.endsWith(".js")
                        ? "text/javascript; charset=utf-8"
                        : name.endsWith(".css") ? "text/css; charset=utf-8" : "application/json; charset=utf-8";
    }

    private static String chartJsVersion() {
        try (InputStream in = MonitorAssets.class.getClassLoader().getResourceAsStream(WEBJAR)) {
            if (in == null)
                throw new LlmcException("Chart.js (the WebJar org.webjars.npm:chart.js) is not on the class path");
            var properties = new Properties();
            properties.load(in);
            return properties.getProperty("version");
        } catch (IOException e) {
            throw new LlmcException("cannot read " + WEBJAR + ": " + e.getMessage(), e);
        }
    }
}
