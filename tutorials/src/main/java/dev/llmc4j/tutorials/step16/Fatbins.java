package dev.llmc4j.tutorials.step16;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

/**
 * Step 16: what nvcc makes and the driver loads. A fatbin ("fat binary") bundles, for one set of kernels, machine
 * code (SASS) for each GPU architecture asked for, plus PTX (a portable assembly the driver compiles, "JITs", for
 * a newer GPU the fatbin has no SASS for). cuModuleLoadData picks the best entry for the GPU at hand.
 */
public final class Fatbins {
    private Fatbins() {}

    /** A fatbin starts with 0xBA55ED50, stored little-endian: bytes 50 ED 55 BA. */
    public static final int MAGIC = 0xBA55ED50;

    public static boolean isFatbin(byte[] image) {
        if (image.length < 4) return false;
        int magic = (image[0] & 0xFF) | (image[1] & 0xFF) << 8 | (image[2] & 0xFF) << 16 | (image[3] & 0xFF) << 24;
        return magic == MAGIC;
    }

    // tag::nvcc[]
    /**
     * The nvcc command that builds one fatbin: SASS for each compute capability (80 = A100, 90 = H100), and PTX
     * for the newest so that later GPUs can JIT it. gpt2-cuda/build-kernels.sh runs the same with 80 and 90.
     * <pre>
     *   nvcc -fatbin -O3 -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90
     *                    -gencode arch=compute_90,code=compute_90 -o kernels.fatbin all_kernels.cu
     * </pre>
     */
    public static List<String> nvccCommand(String nvcc, Path source, Path fatbin, int... computeCapabilities) {
        var command = new ArrayList<>(List.of(nvcc, "-fatbin", "-O3"));
        for (int cc : computeCapabilities) command.addAll(List.of("-gencode", "arch=compute_" + cc + ",code=sm_" + cc));
        int newest = computeCapabilities[computeCapabilities.length - 1];
        command.addAll(List.of("-gencode", "arch=compute_" + newest + ",code=compute_" + newest));
        command.addAll(List.of("-o", fatbin.toString(), source.toString()));
        return command;
    }
    // end::nvcc[]

    /** nvcc where build-kernels.sh looks for it: PATH, $CUDA_HOME/bin, /usr/local/cuda/bin. */
    public static Optional<Path> findNvcc() {
        return nvccPlaces(System.getenv("PATH"), System.getenv("CUDA_HOME")).stream()
                .filter(Files::isExecutable)
                .findFirst();
    }

    /** Where to look for nvcc, first place first: each PATH entry, then $CUDA_HOME/bin, then /usr/local/cuda/bin. */
    public static List<Path> nvccPlaces(String path, String cudaHome) {
        var places = new ArrayList<Path>();
        if (path != null) for (String dir : path.split(":")) if (!dir.isEmpty()) places.add(Path.of(dir, "nvcc"));
        if (cudaHome != null && !cudaHome.isBlank()) places.add(Path.of(cudaHome, "bin", "nvcc"));
        places.add(Path.of("/usr/local/cuda/bin/nvcc"));
        return places;
    }

    /**
     * Whether the image holds {@code name} as bytes: the SASS entries are ELF files whose symbol tables list every
     * kernel by its (extern "C", unmangled) name, the name cuModuleGetFunction looks up. Only true of an
     * uncompressed fatbin; nvcc can also compress the entries.
     */
    public static boolean mentions(byte[] image, String name) {
        byte[] needle = name.getBytes(StandardCharsets.US_ASCII);
        outer:
        for (int i = 0; i + needle.length <= image.length; i++) {
            for (int j = 0; j < needle.length; j++) if (image[i + j] != needle[j]) continue outer;
            return true;
        }
        return false;
    }
}
