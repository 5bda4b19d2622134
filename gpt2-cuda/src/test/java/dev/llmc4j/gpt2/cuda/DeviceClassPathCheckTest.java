package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The device check's class path holds every class the GPU tests use (issue: the old script's class path had
 * runtime jars only, so GPT2CudaModelTest would have ended in NoClassDefFoundError for common's RandomTokens).
 */
class DeviceClassPathCheckTest {

    static List<Path> thisClassPath() {
        return Stream.of(System.getProperty("java.class.path").split(File.pathSeparator))
                .filter(s -> !s.isBlank())
                .map(Path::of)
                .toList();
    }

    /** This module's test classes: target/test-classes, where this class was loaded from. */
    static Path testClasses() throws Exception {
        return Path.of(DeviceClassPathCheckTest.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI());
    }

    @Test
    void mavensTestClassPathHoldsEverythingTheGpuTestsUse() throws Exception {
        var result = DeviceClassPathCheck.check(
                thisClassPath(), List.of(testClasses().toString()));
        assertEquals(List.of(), result.missing());
        assertEquals(List.of(), result.duplicates());
        assertTrue(result.classesRead() > 50, "read " + result.classesRead());
    }

    @Test
    void withoutCommonsTestJarRandomTokensIsReportedMissing() throws Exception {
        // the old gpu-bench.sh class path: everything but common's test classes
        var runtimeOnly = thisClassPath().stream()
                .filter(p -> !(p.toString().contains(File.separator + "common" + File.separator)
                        && (p.toString().endsWith("test-classes")
                                || p.toString().endsWith("-tests.jar"))))
                .toList();
        assertNotEquals(thisClassPath().size(), runtimeOnly.size(), "common's test classes were on the class path");
        var result =
                DeviceClassPathCheck.check(runtimeOnly, List.of(testClasses().toString()));
        assertTrue(
                result.missing().stream()
                        .anyMatch(m -> m.className().equals("dev.llmc4j.testing.RandomTokens")
                                && m.usedBy().startsWith("dev.llmc4j.gpt2.cuda.")),
                result.missing().toString());
    }

    /**
     * After {@code gpt2-cuda/scripts/prepare-device-check.sh}: the class path device-check.sh builds (every jar in
     * .device/lib) holds every class of the GPU tests and of the command line it runs.
     */
    @Test
    void thePreparedPayloadsClassPathIsComplete() throws IOException {
        Path lib = Path.of(System.getProperty("llmc.root", ".."), ".device", "lib");
        assumeTrue(Files.isDirectory(lib), "no prepared payload at " + lib + " (run prepare-device-check.sh)");
        List<Path> jars;
        try (var files = Files.list(lib)) {
            jars = files.filter(f -> f.toString().endsWith(".jar")).sorted().toList();
        }
        var roots = new java.util.ArrayList<>(jars.stream()
                .filter(j -> {
                    String name = j.getFileName().toString();
                    return name.startsWith("llmc4j-gpt2-cuda-") && name.endsWith("-tests.jar")
                            || name.equals("llmc4j-cli.jar");
                })
                .map(Path::toString)
                .toList());
        assertEquals(2, roots.size(), "the GPU test jar and the command line's jar in " + lib);
        roots.add("dev.llmc4j.bench.CudaBench");
        var result = DeviceClassPathCheck.check(jars, roots);
        assertEquals(List.of(), result.missing());
        assertEquals(List.of(), result.duplicates(), "stale jars in " + lib);
    }

    @Test
    void aClassInTwoEntriesIsADuplicate() throws Exception {
        var twice = new java.util.ArrayList<>(thisClassPath());
        twice.add(testClasses());
        var result = DeviceClassPathCheck.check(twice, List.of("dev.llmc4j.gpt2.cuda.DeviceProbe"));
        assertTrue(
                result.duplicates().stream().anyMatch(d -> d.startsWith("dev.llmc4j.gpt2.cuda.DeviceProbe [")),
                result.duplicates().toString());
        assertFalse(result.ok());
    }

    @Test
    void aRootCanBeOneClassAndAnUnknownRootIsAnError() throws Exception {
        var result = DeviceClassPathCheck.check(thisClassPath(), List.of("dev.llmc4j.gpt2.cuda.DeviceProbe"));
        assertEquals(List.of(), result.missing());
        assertTrue(result.classesRead() > 5 && result.classesRead() < 200, "read " + result.classesRead());
        assertThrows(
                IllegalArgumentException.class,
                () -> DeviceClassPathCheck.check(thisClassPath(), List.of("no/such/file.jar")));
    }

    @Test
    void arrayAndPrimitiveReferencesAreReducedToClasses() throws IOException {
        byte[] bytes;
        try (var in = DeviceClassPathCheck.class.getResourceAsStream("DeviceClassPathCheck.class")) {
            bytes = in.readAllBytes();
        }
        var refs = DeviceClassPathCheck.references(bytes);
        assertTrue(refs.contains("java/net/URLClassLoader"), refs.toString());
        assertTrue(refs.stream().noneMatch(r -> r.startsWith("[")), refs.toString());
    }
}
