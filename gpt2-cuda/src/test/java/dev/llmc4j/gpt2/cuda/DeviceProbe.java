package dev.llmc4j.gpt2.cuda;

import dev.llmc4j.util.LlmcException;
import java.util.List;

/**
 * Phase 1 of gpt2-cuda/scripts/device-check.sh: what this machine offers the GPU code, as {@code key=value}
 * lines: {@code cuda=available|absent}, the GPU, the driver, and where cuBLASLt and NCCL were found (or every
 * place searched). Always exits 0: the script decides what a missing piece means.
 */
public final class DeviceProbe {
    private DeviceProbe() {}

    public static void main(String[] args) {
        System.out.println("java=" + Runtime.version());
        if (!CudaDriver.isAvailable()) {
            String why;
            try {
                CudaDriver.get().deviceCount();
                why = "no device";
            } catch (LlmcException e) {
                why = e.getMessage();
            }
            System.out.println("cuda=absent (" + why + ")");
        } else {
            var cuda = CudaDriver.get();
            System.out.println("cuda=available");
            System.out.println("devices=" + cuda.deviceCount());
            int device = cuda.device(0);
            System.out.println("gpu=" + cuda.deviceName(device));
            int major = cuda.deviceAttribute(CudaDriver.ATTR_COMPUTE_CAPABILITY_MAJOR, device);
            System.out.println("compute_capability_major=" + major);
            System.out.println("driver_version=" + cuda.driverVersion());
        }
        System.out.println("kernels="
                + (KernelModule.fatbinPresent()
                        ? KernelModule.exportedNames().size() + " in kernels.fatbin"
                        : "absent (built without nvcc)"));
        report("cublaslt", CublasLt.libraryCandidates());
        report("nccl", GPT2CudaModel.ncclCandidates());
        System.out.println("python_nvidia_lib_dirs=" + NativeLibraries.pythonLibraryDirectories());
    }

    private static void report(String key, List<String> candidates) {
        String found = NativeLibraries.firstThatLoads(candidates);
        String searched = "NOT FOUND, searched: " + String.join(", ", candidates);
        System.out.println(key + "=" + (found != null ? found : searched));
    }
}
