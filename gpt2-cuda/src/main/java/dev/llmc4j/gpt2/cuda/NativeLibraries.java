package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.util.LlmcException;

import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;

/**
 * Finds and opens the NVIDIA shared libraries at run time. Nothing is linked at build time: a machine without a GPU
 * builds and tests this module, and only fails (with a clear message) when it actually tries to use CUDA.
 */
@SuppressWarnings("restricted")   // FFM: binding native code is the point of this class
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
                    if (!Files.exists(path)) { failures.add(candidate + " (absent)"); continue; }
                    return SymbolLookup.libraryLookup(path, Arena.global());
                }
                return SymbolLookup.libraryLookup(candidate, Arena.global());
            } catch (IllegalArgumentException | IllegalCallerException e) {
                failures.add(candidate + " (" + e.getMessage() + ")");
            }
        }
        throw new LlmcException("no " + what + " found: tried " + String.join(", ", failures));
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

    /** CUDA's library folders: $CUDA_HOME/lib64, /usr/local/cuda/lib64, Debian's multiarch folder. */
    static List<String> cudaLibraryDirectories() {
        var dirs = new ArrayList<String>();
        String cudaHome = System.getenv("CUDA_HOME");
        if (cudaHome != null && !cudaHome.isBlank()) dirs.add(Path.of(cudaHome, "lib64").toString());
        dirs.add("/usr/local/cuda/lib64");
        dirs.add("/usr/local/cuda/targets/x86_64-linux/lib");
        dirs.add("/usr/lib/x86_64-linux-gnu");
        dirs.add("/usr/lib64");
        return dirs;
    }
}
