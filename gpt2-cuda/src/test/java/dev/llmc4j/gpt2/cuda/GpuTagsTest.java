package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.classfile.ClassFile;
import java.lang.classfile.MethodModel;
import java.lang.classfile.instruction.InvokeInstruction;
import java.lang.reflect.Method;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Tag;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;

/**
 * {@code -Dgroups=gpu} (and the device check's {@code --include-tag=gpu}) selects exactly the GPU tests: a test is
 * a GPU test when it, or a {@code @BeforeEach} of its class, calls {@code assumeTrue(CudaDriver.isAvailable(), ...)}
 * (read from the bytecode, lambdas included); every such test must be tagged {@code gpu}, and no other test may be.
 */
class GpuTagsTest {

    @Test
    void everyGpuTestIsTaggedGpuAndNoOtherTestIs() throws Exception {
        Path testClasses = Path.of(GpuTagsTest.class
                .getProtectionDomain()
                .getCodeSource()
                .getLocation()
                .toURI());
        List<String> untagged = new ArrayList<>(), wronglyTagged = new ArrayList<>();
        int gpuTests = 0;
        for (Class<?> type : testClassesIn(testClasses)) {
            boolean classTagged = isTaggedGpu(type.getAnnotationsByType(Tag.class));
            boolean beforeEachNeedsGpu = false;
            for (Method m : type.getDeclaredMethods())
                if (m.isAnnotationPresent(BeforeEach.class) && assumesAGpu(type, m.getName()))
                    beforeEachNeedsGpu = true;
            for (Method m : type.getDeclaredMethods()) {
                if (!m.isAnnotationPresent(Test.class) && !m.isAnnotationPresent(ParameterizedTest.class)) continue;
                boolean needsGpu = beforeEachNeedsGpu || assumesAGpu(type, m.getName());
                boolean tagged = classTagged || isTaggedGpu(m.getAnnotationsByType(Tag.class));
                String name = type.getSimpleName() + "." + m.getName();
                if (needsGpu) gpuTests++;
                if (needsGpu && !tagged) untagged.add(name);
                if (!needsGpu && tagged) wronglyTagged.add(name);
            }
        }
        assertEquals(List.of(), untagged, "GPU tests without @Tag(\"gpu\")");
        assertEquals(List.of(), wronglyTagged, "@Tag(\"gpu\") on tests that need no GPU");
        assertTrue(gpuTests >= 20, "found only " + gpuTests + " GPU test methods");
    }

    private static boolean isTaggedGpu(Tag[] tags) {
        return Stream.of(tags).anyMatch(t -> t.value().equals("gpu"));
    }

    /** Whether method {@code name} of {@code type} (or a lambda in that class) calls assumeTrue and isAvailable. */
    private static boolean assumesAGpu(Class<?> type, String name) throws IOException {
        byte[] bytes;
        try (InputStream in = type.getResourceAsStream(type.getSimpleName() + ".class")) {
            bytes = in.readAllBytes();
        }
        var model = ClassFile.of().parse(bytes);
        for (MethodModel method : model.methods()) {
            String methodName = method.methodName().stringValue();
            if (!methodName.equals(name)) continue;
            if (calls(method, "isAvailable") && calls(method, "assumeTrue")) return true;
        }
        return false;
    }

    private static boolean calls(MethodModel method, String methodName) {
        return method.code().stream()
                .flatMap(code -> code.elementStream())
                .anyMatch(e -> e instanceof InvokeInstruction i
                        && i.name().stringValue().equals(methodName));
    }

    private static List<Class<?>> testClassesIn(Path root) throws IOException, ClassNotFoundException {
        var classes = new ArrayList<Class<?>>();
        try (Stream<Path> files = Files.walk(root)) {
            for (Path f : files.filter(p -> p.toString().endsWith("Test.class")).toList()) {
                String name = root.relativize(f).toString().replace('/', '.').replaceAll("\\.class$", "");
                if (name.startsWith("dev.llmc4j.gpt2.cuda.")) classes.add(Class.forName(name));
            }
        }
        return classes;
    }
}
