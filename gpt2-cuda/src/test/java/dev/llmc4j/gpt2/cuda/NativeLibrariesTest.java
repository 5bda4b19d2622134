package dev.llmc4j.gpt2.cuda;

import static org.junit.jupiter.api.Assertions.*;

import dev.llmc4j.util.LlmcException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Where cuBLASLt and NCCL are looked for: CUDA's folders and, on PyTorch-only machines, NVIDIA's Python wheels. */
class NativeLibrariesTest {

    @Test
    void findsTheLibFoldersOfNvidiaWheelsInAVirtualEnvironment(@TempDir Path venv) throws IOException {
        Path nvidia = venv.resolve("lib/python3.12/site-packages/nvidia");
        Files.createDirectories(nvidia.resolve("cublas/lib"));
        Files.createDirectories(nvidia.resolve("nccl/lib"));
        Files.createDirectories(nvidia.resolve("cu13/lib"));
        Files.createDirectories(nvidia.resolve("cudnn/include")); // no lib folder: not searched
        Files.createDirectories(venv.resolve("lib/python3.11/dist-packages/nvidia/cuda_runtime/lib"));
        Files.createDirectories(venv.resolve("lib/perl5/site-packages/nvidia/x/lib")); // not a python

        List<Path> roots = NativeLibraries.nvidiaPackagesUnder(List.of(venv, venv.resolve("absent")));
        assertEquals(List.of(venv.resolve("lib/python3.11/dist-packages/nvidia"), nvidia), roots);
        assertEquals(
                List.of(
                        venv.resolve("lib/python3.11/dist-packages/nvidia/cuda_runtime/lib")
                                .toString(),
                        nvidia.resolve("cu13/lib").toString(),
                        nvidia.resolve("cublas/lib").toString(),
                        nvidia.resolve("nccl/lib").toString()),
                NativeLibraries.libDirectoriesUnder(roots));
        // the same root twice (python3 reports it and it is also under a prefix) is searched once
        assertEquals(
                4,
                NativeLibraries.libDirectoriesUnder(List.of(roots.get(0), roots.get(1), nvidia))
                        .size());
    }

    @Test
    void aMissingLibraryNamesEveryPlaceSearched(@TempDir Path dir) {
        var candidates = NativeLibraries.candidates(
                null,
                List.of("libllmc-absent.so.1"),
                List.of(
                        dir.resolve("cuda/lib64").toString(),
                        dir.resolve("nvidia/cublas/lib").toString()));
        var e = assertThrows(LlmcException.class, () -> NativeLibraries.open("cuBLASLt (test)", candidates));
        String message = e.getMessage();
        assertTrue(message.startsWith("no cuBLASLt (test) found: tried libllmc-absent.so.1 ("), message);
        assertTrue(message.contains(dir.resolve("cuda/lib64/libllmc-absent.so.1") + " (absent)"), message);
        assertTrue(message.contains(dir.resolve("nvidia/cublas/lib/libllmc-absent.so.1") + " (absent)"), message);
        assertTrue(message.contains("site-packages/nvidia/*/lib"), message);
    }

    @Test
    void cudaFoldersComeBeforeThePythonWheels() {
        List<String> dirs = NativeLibraries.cudaLibraryDirectories();
        assertTrue(dirs.contains("/usr/local/cuda/lib64"), dirs.toString());
        assertEquals(
                NativeLibraries.pythonLibraryDirectories(),
                dirs.subList(
                        dirs.size() - NativeLibraries.pythonLibraryDirectories().size(), dirs.size()));
    }
}
