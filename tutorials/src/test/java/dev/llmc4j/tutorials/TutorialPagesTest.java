package dev.llmc4j.tutorials;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The pages themselves: every step's page ends with a "Run it" section giving the exact command for its own test,
 * whose class exists; every link to another page and every included file and tag exist; no link depends on an
 * attribute that only the docs build defines (a forge renders the pages without it).
 */
class TutorialPagesTest {
    static final Path PAGES = Path.of(System.getProperty("llmc.root", ".."), "tutorials");
    static final Pattern PAGE = Pattern.compile("(\\d\\d)-[a-z0-9-]+\\.adoc");
    static final Pattern XREF = Pattern.compile("xref:([^\\[#]+)(?:#([^\\[]+))?\\[");
    static final Pattern INCLUDE = Pattern.compile("include::([^\\[]+)\\[(?:tag=([^\\]]+))?");

    static List<Path> pages() throws IOException {
        try (Stream<Path> files = Files.list(PAGES)) {
            return files.filter(p -> PAGE.matcher(p.getFileName().toString()).matches())
                    .sorted()
                    .toList();
        }
    }

    @Test
    void eighteenPagesEachEndingWithTheCommandThatRunsItsTest() throws IOException {
        var pages = pages();
        assertEquals(18, pages.size(), "pages in " + PAGES);
        for (Path page : pages) {
            String text = Files.readString(page);
            String step = page.getFileName().toString().substring(0, 2);
            int lastSection = text.lastIndexOf("\n== ");
            assertTrue(text.startsWith("== Run it", lastSection + 1), page + ": the last section is \"Run it\"");
            var command = Pattern.compile("\\./mvnw -q -pl tutorials -am test -Dtest=(Step" + step
                            + "\\w+Test) -Dllmc\\.skipFixtures=true -Dsurefire\\.failIfNoSpecifiedTests=false\n")
                    .matcher(text.substring(lastSection));
            assertTrue(command.find(), page + ": \"Run it\" gives the command for Step" + step + "...Test");
            Path test = PAGES.resolve("src/test/java/dev/llmc4j/tutorials/" + command.group(1) + ".java");
            assertTrue(Files.isRegularFile(test), page + ": the test it names exists: " + test);
        }
    }

    @Test
    void theBridgePagesEndWithTheirCommandsToo() throws IOException {
        for (String[] page : BRIDGES) {
            String text = Files.readString(PAGES.resolve(page[0]));
            int lastSection = text.lastIndexOf("\n== ");
            assertTrue(text.startsWith("== Run it", lastSection + 1), page[0]);
            assertTrue(
                    text.substring(lastSection)
                            .contains("./mvnw -q -pl tutorials -am test -Dtest=" + page[1]
                                    + " -Dllmc.skipFixtures=true -Dsurefire.failIfNoSpecifiedTests=false\n"),
                    page[0]);
        }
    }

    /** The pages beside the numbered steps, and their tests. */
    static final String[][] BRIDGES = {
        {"autograd-bridge.adoc", "AutogradBridgeTest"}, {"cuda-kernel.adoc", "CudaKernelTest"}
    };

    @Test
    void everyLinkAndIncludeResolvesWithoutTheDocsBuild() throws IOException {
        var pages = new ArrayList<>(pages());
        pages.add(PAGES.resolve("README.adoc"));
        for (String[] bridge : BRIDGES) pages.add(PAGES.resolve(bridge[0]));
        int links = 0, includes = 0;
        for (Path page : pages) {
            String text = Files.readString(page);
            assertFalse(text.contains("{ref-step"), page + ": a link through an attribute breaks on a forge");
            var xref = XREF.matcher(text);
            while (xref.find()) {
                Path target = PAGES.resolve(xref.group(1));
                assertTrue(Files.isRegularFile(target), page + " links to a missing page: " + xref.group(1));
                if (xref.group(2) != null)
                    assertTrue(
                            Files.readString(target).contains("[#" + xref.group(2) + "]"),
                            page + " links to a missing anchor: " + xref.group());
                links++;
            }
            var include = INCLUDE.matcher(text);
            while (include.find()) {
                if (include.group(1).contains("{")) continue; // attribute paths belong to the docs build
                Path target = PAGES.resolve(include.group(1));
                assertTrue(Files.isRegularFile(target), page + " includes a missing file: " + include.group(1));
                if (include.group(2) != null)
                    assertTrue(
                            Files.readString(target).contains("tag::" + include.group(2) + "[]"),
                            page + " includes a missing tag: " + include.group());
                includes++;
            }
        }
        System.out.printf(
                "tutorial pages: %d pages, %d links and %d includes resolve%n", pages.size(), links, includes);
        assertTrue(links >= 18 && includes >= 18, "the pattern found the links and includes");
    }
}
