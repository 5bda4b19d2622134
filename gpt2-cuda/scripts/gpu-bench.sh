#!/usr/bin/env bash
# One script for a GPU machine that has neither Java nor Maven: runs the CUDA tests, then the benchmark.
#
# Prepare on the build machine (JDK 25 + nvcc):
#   ./mvnw -B -pl gpt2-cuda -am -DskipTests package     # jars, kernels.fatbin, JUnit console, runtime deps
#   gpt2-cuda/scripts/make-jdk.sh                       # .jdk/ and gpt2-cuda/target/gpu-bench/jdk.tar.gz
# and bring gpt2-cuda/target along (38 MB with the packed JDK; .jdk/ itself too if there is room).
#
# On the GPU machine:   gpt2-cuda/scripts/gpu-bench.sh [--quick] [--no-tests] [--no-bench] [--no-torch]
#   --quick   tests only (no benchmark)
# Output: JUnit tree, then "RESULT ..." lines (ms/step, tok/s, bf16 MFU) for d12 at T=1024, B=16/32/64 with
# our flash attention, flash vs plain attention at B=8, and PyTorch (torch.compile + SDPA, bf16) if importable.
# Exit status: that of the tests (benchmark failures are reported but do not change it).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target="$root/gpt2-cuda/target"
bench="$target/gpu-bench"
run_tests=1; run_bench=1; run_torch=1
for arg in "$@"; do
    case "$arg" in
        --quick) run_bench=0; run_torch=0 ;;
        --no-tests) run_tests=0 ;;
        --no-bench) run_bench=0 ;;
        --no-torch) run_torch=0 ;;
        *) echo "gpu-bench: unknown option $arg"; exit 2 ;;
    esac
done

# --- a Java 25: the carried .jdk, else the packed one, else $JAVA_HOME, else java on PATH -----------------------
java=""
if [ -x "$root/.jdk/bin/java" ]; then java="$root/.jdk/bin/java"
elif [ -f "$bench/jdk.tar.gz" ]; then
    jdkdir="${TMPDIR:-/tmp}/llmc4j-jdk"
    if [ ! -x "$jdkdir/.jdk/bin/java" ]; then mkdir -p "$jdkdir" && tar -C "$jdkdir" -xzf "$bench/jdk.tar.gz"; fi
    java="$jdkdir/.jdk/bin/java"
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then java="$JAVA_HOME/bin/java"
elif command -v java >/dev/null 2>&1; then java="$(command -v java)"
fi
if [ -z "$java" ]; then
    echo "gpu-bench: no Java: run gpt2-cuda/scripts/make-jdk.sh on the build machine and bring .jdk/ or gpt2-cuda/target along"
    exit 2
fi
"$java" -version 2>&1 | head -1

# --- class path -------------------------------------------------------------------------------------------------
main_jar="$(ls "$target"/llmc4j-gpt2-cuda-*.jar 2>/dev/null | grep -v -- '-tests.jar' | head -1)"
tests_jar="$(ls "$target"/llmc4j-gpt2-cuda-*-tests.jar 2>/dev/null | head -1)"
junit_jar="$bench/junit-platform-console-standalone.jar"
for f in "$main_jar" "$tests_jar" "$junit_jar"; do
    if [ -z "$f" ] || [ ! -f "$f" ]; then
        echo "gpu-bench: missing ${f:-a jar} under $target: run ./mvnw -B -pl gpt2-cuda -am -DskipTests package first"
        exit 2
    fi
done
cp="$main_jar:$tests_jar"
for j in "$bench"/lib/*.jar; do cp="$cp:$j"; done
jvm=(--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector -Xss8m "-Dllmc.root=$root")

command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader

# --- tests ------------------------------------------------------------------------------------------------------
status=0
if [ "$run_tests" = 1 ]; then
    echo "=== CUDA tests (JUnit console launcher) ==="
    "$java" "${jvm[@]}" -cp "$cp:$junit_jar" org.junit.platform.console.ConsoleLauncher execute \
        --disable-banner --details=tree --fail-if-no-tests --select-package=dev.llmc4j.gpt2.cuda
    status=$?
    echo "tests exit status: $status"
fi

# --- benchmark --------------------------------------------------------------------------------------------------
if [ "$run_bench" = 1 ]; then
    echo "=== llmc4j gpt2-cuda: d12, T=1024, bf16, training steps ==="
    "$java" "${jvm[@]}" -cp "$cp" dev.llmc4j.gpt2.cuda.CudaBench \
        --model d12 --seq 1024 --precision bf16 --attention flash --batch 16,32,64 --steps 10 --warmup 3 \
        || echo "gpu-bench: the flash benchmark failed"
    echo "=== flash vs plain attention (d12, T=1024, B=8; plain materialises T x T and is slow) ==="
    "$java" "${jvm[@]}" -cp "$cp" dev.llmc4j.gpt2.cuda.CudaBench \
        --model d12 --seq 1024 --precision bf16 --attention flash,plain --batch 8 --steps 3 --warmup 1 \
        || echo "gpu-bench: the flash-vs-plain benchmark failed"
fi

# --- PyTorch for comparison ---------------------------------------------------------------------------------------
if [ "$run_torch" = 1 ]; then
    py="$(command -v python3 || true)"
    if [ -n "$py" ] && "$py" -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)' >/dev/null 2>&1; then
        echo "=== PyTorch: d12, T=1024, bf16 autocast, torch.compile, scaled_dot_product_attention ==="
        OMP_NUM_THREADS=2 "$py" "$here/torch_bench.py" --batch 16,32,64 --seq 1024 --steps 10 --warmup 3 \
            || echo "gpu-bench: the PyTorch benchmark failed"
    else
        echo "gpu-bench: no PyTorch with CUDA here: skipping the PyTorch comparison"
    fi
fi
exit $status
