package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Finds and opens the NVIDIA shared libraries at run time. Nothing is linked at build time: a machine without a GPU
 * builds and tests this module, and only fails (with a clear message) when it actually tries to use CUDA.
 */
@SuppressWarnings("restricted") // FFM: binding native code is the point of this class
final class NativeLibraries {
    private NativeLibraries() {}

    /**
     * Opens the first candidate that loads. A bare name ("libcuda.so.1") goes through the dynamic loader, so
     * LD_LIBRARY_PATH and the ld cache apply; a path is opened as is.
     *
     * @throws LlmcException "no &lt;what&gt; found: tried ..." when none loads
     */
    static SymbolLookup open(String what, List<String> candidates) {
        List<String> failures = new ArrayList<>();
        for (String candidate : candidates) {
            try {
                if (candidate.contains("/")) {
                    Path path = Path.of(candidate);
                    if (!Files.exists(path)) {
                        failures.add(candidate + " (absent)");
                        continue;
                    }
                    return SymbolLookup.libraryLookup(path, Arena.global());
                }
                return SymbolLookup.libraryLookup(candidate, Arena.global());
            } catch (IllegalArgumentException | IllegalCallerException e) {
                failures.add(candidate + " (" + e.getMessage() + ")");
            }
        }
        throw new LlmcException("no " + what + " found: tried " + String.join(", ", failures)
                + " (a pip-installed PyTorch brings its own copy under site-packages/nvidia/*/lib: put that python3"
                + " first on PATH, or set LLMC_PYTHON to it)");
    }

    /** The first candidate that loads (as {@link #open} would pick it), or null: for reports of what was found. */
    static String firstThatLoads(List<String> candidates) {
        for (String candidate : candidates) {
            try {
                open("", List.of(candidate));
                return candidate;
            } catch (LlmcException e) {
                // next
            }
        }
        return null;
    }

    /**
     * Candidate locations of a library, in search order: an explicit override (system property, then
     * environment variable), the bare sonames (dynamic loader: LD_LIBRARY_PATH, ld cache), then the directories
     * CUDA installs into.
     *
     * @param override  a path given by the user, or null
     * @param sonames   names for the dynamic loader, most specific first (e.g. libcublasLt.so.13, .so.12, .so)
     * @param directories folders to look in for each soname
     */
    static List<String> candidates(String override, List<String> sonames, List<String> directories) {
        var result = new LinkedHashSet<String>();
        if (override != null && !override.isBlank()) result.add(override.trim());
        result.addAll(sonames);
        for (String dir : directories) {
            if (dir == null || dir.isBlank()) continue;
            for (String soname : sonames) result.add(Path.of(dir, soname).toString());
        }
        return List.copyOf(result);
    }

    /**
     * Where the CUDA libraries may be: CUDA's own folders ($CUDA_HOME/lib64, /usr/local/cuda/lib64, Debian's
     * multiarch folder), then the lib folders of NVIDIA's Python wheels ({@link #pythonLibraryDirectories}), which
     * on a machine with only PyTorch installed are the only copies of cuBLASLt and NCCL.
     */
    static List<String> cudaLibraryDirectories() {
        var dirs = new ArrayList<String>();
        String cudaHome = System.getenv("CUDA_HOME");
        if (cudaHome != null && !cudaHome.isBlank())
            dirs.add(Path.of(cudaHome, "lib64").toString());
        dirs.add("/usr/local/cuda/lib64");
        dirs.add("/usr/local/cuda/targets/x86_64-linux/lib");
        dirs.add("/usr/lib/x86_64-linux-gnu");
        dirs.add("/usr/lib64");
        dirs.addAll(pythonLibraryDirectories());
        return dirs;
    }

    private static volatile List<String> pythonDirectories;

    /**
     * The lib folders of NVIDIA's pip wheels ({@code site-packages/nvidia/cublas/lib}, {@code nvidia/nccl/lib},
     * CUDA 13's {@code nvidia/cu13/lib}, ...): every {@code nvidia/<name>/lib} under the {@code nvidia} packages
     * that {@code python3} reports, then under the usual environment places ($VIRTUAL_ENV, $CONDA_PREFIX,
     * ~/.local, /usr/local, /usr, /opt/conda). Computed once per process.
     */
    static List<String> pythonLibraryDirectories() {
        List<String> dirs = pythonDirectories;
        if (dirs == null) {
            var roots = new ArrayList<Path>(nvidiaPackagesFromPython());
            roots.addAll(nvidiaPackagesUnder(environmentPrefixes()));
            pythonDirectories = dirs = libDirectoriesUnder(roots);
        }
        return dirs;
    }

    /** Every existing {@code <root>/<name>/lib} folder, in name order, each once. */
    static List<String> libDirectoriesUnder(List<Path> nvidiaRoots) {
        var dirs = new LinkedHashSet<String>();
        for (Path root : nvidiaRoots) {
            if (!Files.isDirectory(root)) continue;
            try (Stream<Path> children = Files.list(root)) {
                children.map(child -> child.resolve("lib"))
                        .filter(Files::isDirectory)
                        .sorted()
                        .forEach(lib -> dirs.add(lib.toString()));
            } catch (IOException | UncheckedIOException e) {
                // an unreadable folder is simply not searched
            }
        }
        return List.copyOf(dirs);
    }

    /** Every {@code <prefix>/lib/python3*}/{site,dist}-packages/nvidia folder that exists. */
    static List<Path> nvidiaPackagesUnder(List<Path> prefixes) {
        var roots = new ArrayList<Path>();
        for (Path prefix : prefixes) {
            Path lib = prefix.resolve("lib");
            if (!Files.isDirectory(lib)) continue;
            try (Stream<Path> pythons = Files.list(lib)) {
                pythons.filter(p -> p.getFileName().toString().startsWith("python3"))
                        .sorted()
                        .forEach(python -> {
                            for (String packages : List.of("site-packages", "dist-packages")) {
                                Path nvidia = python.resolve(packages).resolve("nvidia");
                                if (Files.isDirectory(nvidia)) roots.add(nvidia);
                            }
                        });
            } catch (IOException | UncheckedIOException e) {
                // not searched
            }
        }
        return roots;
    }

    private static List<Path> environmentPrefixes() {
        var prefixes = new ArrayList<Path>();
        for (String variable : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String value = System.getenv(variable);
            if (value != null && !value.isBlank()) prefixes.add(Path.of(value));
        }
        prefixes.add(Path.of(System.getProperty("user.home"), ".local"));
        for (String prefix : List.of("/usr/local", "/usr", "/opt/conda")) prefixes.add(Path.of(prefix));
        return prefixes;
    }

    /**
     * The folders of python3's {@code nvidia} namespace package ({@code nvidia.__path__}), asked of the python3 on
     * PATH (or $LLMC_PYTHON) with a 10-second limit; empty when there is no python3 or no such package.
     */
    static List<Path> nvidiaPackagesFromPython() {
        String python = System.getenv().getOrDefault("LLMC_PYTHON", "python3");
        try {
            Process process = new ProcessBuilder(python, "-c", "import nvidia\nfor p in nvidia.__path__: print(p)")
                    .redirectError(ProcessBuilder.Redirect.DISCARD)
                    .start();
            process.getOutputStream().close();
            if (!process.waitFor(10, TimeUnit.SECONDS)) {
                process.destroyForcibly();
                return List.of();
            }
            if (process.exitValue() != 0) return List.of();
            String out = new String(process.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
            return out.lines().filter(line -> !line.isBlank()).map(Path::of).toList();
        } catch (IOException e) {
            return List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        }
    }
}
