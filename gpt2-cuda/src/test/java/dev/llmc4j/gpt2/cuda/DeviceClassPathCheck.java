package dev.llmc4j.gpt2.cuda;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.lang.classfile.ClassFile;
import java.lang.classfile.constantpool.ClassEntry;
import java.net.MalformedURLException;
import java.net.URL;
import java.net.URLClassLoader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Enumeration;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeMap;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.stream.Stream;

/**
 * Does a class path hold every class the code on it uses? Starting from every project class ({@code dev/llmc4j})
 * of some root entries (the GPU test jar, the command line's jar), it follows the class references in the class
 * files (their constant pools) through the project's classes and checks that each referenced class resolves: on
 * the class path, or in this Java runtime. A test that reaches a class its class path lacks ends in
 * NoClassDefFoundError only when it runs, so on a machine without a GPU, where GPU tests skip first, nothing
 * shows; this finds it without running anything.
 *
 * <pre>
 *   java -cp "lib/*" dev.llmc4j.gpt2.cuda.DeviceClassPathCheck lib/llmc4j-gpt2-cuda-tests.jar lib/llmc4j-cli.jar \
 *        dev.llmc4j.bench.CudaBench
 * </pre>
 * A root is a jar or class folder (all its project classes) or one class name (that class and what it reaches:
 * the benchmarks jar's JMH benchmarks need JMH, CudaBench does not).
 * prints one line per missing class (with a class that uses it) and exits 1, or prints the count checked and
 * exits 0. The class path is this JVM's ({@code java.class.path}).
 */
public final class DeviceClassPathCheck {
    private static final String PROJECT = "dev/llmc4j/";

    /** A class the class path lacks, and one class that refers to it. */
    public record Missing(String className, String usedBy) {}

    /**
     * What a check found: the project classes it read, what is missing, and the project classes that more than
     * one class path entry holds (a stale jar next to its successor: which copy loads depends on the order).
     */
    public record Result(int classesRead, List<Missing> missing, List<String> duplicates) {
        public boolean ok() {
            return missing.isEmpty() && duplicates.isEmpty();
        }
    }

    private DeviceClassPathCheck() {}

    public static void main(String[] args) {
        var classPath = Stream.of(System.getProperty("java.class.path").split(java.io.File.pathSeparator))
                .filter(s -> !s.isBlank())
                .map(Path::of)
                .toList();
        Result result = check(classPath, List.of(args));
        for (Missing m : result.missing())
            System.out.println("class-path check: MISSING " + m.className() + " (used by " + m.usedBy() + ")");
        for (String d : result.duplicates()) System.out.println("class-path check: DUPLICATE " + d);
        System.out.println("class-path check: " + result.classesRead() + " project classes read, "
                + result.missing().size() + " missing, " + result.duplicates().size() + " in more than one entry");
        System.exit(result.ok() ? 0 : 1);
    }

    /**
     * Follows the references of every project class in {@code roots} (jars or class folders, each also expected on
     * {@code classPath}) and reports the referenced classes that neither {@code classPath} nor the JDK has.
     */
    public static Result check(List<Path> classPath, List<String> roots) {
        URL[] urls = classPath.stream().map(DeviceClassPathCheck::url).toArray(URL[]::new);
        try (var loader = new URLClassLoader(urls, ClassLoader.getPlatformClassLoader())) {
            var queue = new ArrayDeque<String>();
            var seen = new HashSet<String>();
            for (String root : roots) for (String name : rootClasses(root)) if (seen.add(name)) queue.add(name);
            var missing = new TreeMap<String, String>();
            int read = 0;
            while (!queue.isEmpty()) {
                String name = queue.poll();
                byte[] bytes = read(loader, name);
                if (bytes == null) continue; // reported where it was referenced (or a root not on the path)
                read++;
                for (String ref : references(bytes)) {
                    if (!seen.add(ref)) continue;
                    if (loader.getResource(ref + ".class") == null) missing.putIfAbsent(ref, name);
                    else if (ref.startsWith(PROJECT)) queue.add(ref);
                }
            }
            var list = new ArrayList<Missing>();
            missing.forEach((cls, user) -> list.add(new Missing(cls.replace('/', '.'), user.replace('/', '.'))));
            return new Result(read, list, duplicates(classPath));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** "class (entry, entry, ...)" for every project class that several class path entries hold. */
    static List<String> duplicates(List<Path> classPath) throws IOException {
        var holders = new TreeMap<String, List<String>>();
        for (Path entry : classPath)
            for (String name : projectClassesIn(entry))
                holders.computeIfAbsent(name, n -> new ArrayList<>())
                        .add(entry.getFileName().toString());
        var duplicates = new ArrayList<String>();
        holders.forEach((name, entries) -> {
            if (entries.size() > 1) duplicates.add(name.replace('/', '.') + " " + entries);
        });
        return duplicates;
    }

    private static URL url(Path path) {
        try {
            return path.toUri().toURL();
        } catch (MalformedURLException e) {
            throw new IllegalArgumentException("not a class path entry: " + path, e);
        }
    }

    private static byte[] read(ClassLoader loader, String name) throws IOException {
        try (InputStream in = loader.getResourceAsStream(name + ".class")) {
            return in == null ? null : in.readAllBytes();
        }
    }

    /** The classes a class file refers to (internal names; array types reduced to their element class). */
    static Set<String> references(byte[] classFile) {
        var refs = new HashSet<String>();
        for (var entry : ClassFile.of().parse(classFile).constantPool()) {
            if (!(entry instanceof ClassEntry c)) continue;
            String name = c.asInternalName();
            if (name.startsWith("[")) {
                int l = name.indexOf('L');
                if (l < 0) continue; // an array of primitives
                name = name.substring(l + 1, name.length() - 1);
            }
            refs.add(name);
        }
        return refs;
    }

    /** A root's classes (internal names): every project class of a jar or folder, or the one class named. */
    static List<String> rootClasses(String root) throws IOException {
        Path path = Path.of(root);
        if (Files.exists(path)) return projectClassesIn(path);
        if (!root.matches("[\\w$.]+")) throw new IllegalArgumentException("no such jar, folder or class name: " + root);
        return List.of(root.replace('.', '/'));
    }

    /** The project classes (internal names) in a jar or a class folder. */
    static List<String> projectClassesIn(Path root) throws IOException {
        var names = new ArrayList<String>();
        if (Files.isDirectory(root)) {
            try (Stream<Path> files = Files.walk(root)) {
                files.filter(f -> f.toString().endsWith(".class")).forEach(f -> {
                    String name = root.relativize(f).toString().replace(java.io.File.separatorChar, '/');
                    if (name.startsWith(PROJECT)) names.add(name.substring(0, name.length() - ".class".length()));
                });
            }
        } else if (Files.isRegularFile(root)) {
            try (var jar = new JarFile(root.toFile())) {
                for (Enumeration<JarEntry> e = jar.entries(); e.hasMoreElements(); ) {
                    String name = e.nextElement().getName();
                    if (name.startsWith(PROJECT) && name.endsWith(".class") && !name.startsWith("META-INF/"))
                        names.add(name.substring(0, name.length() - ".class".length()));
                }
            }
        }
        return names;
    }
}
