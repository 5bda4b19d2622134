#!/usr/bin/env bash
# Prepares the GPU device check: ONE command on the build machine (JDK 25, nvcc, network for Maven) that builds
# everything and packs it into <repo>/.device/ (ignored by git), measured to fit the 64 MiB a GPU machine gets:
#
#   .device/device-check.sh      the check itself (a copy of gpt2-cuda/scripts/device-check.sh)
#   .device/jdk.tgz              a jlinked JDK 25: java.base, jdk.incubator.vector and what the JUnit console
#                                launcher and the command line need; unpacked by device-check.sh on the GPU machine
#   .device/lib/*.jar            the command line (cli) and its runtime jars, gpt2-cuda's jar with kernels.fatbin,
#                                the GPU tests (gpt2-cuda's test jar and common's, which they use), the benchmarks
#                                (CudaBench), the JUnit console launcher
#   .device/reference/           gpt2_reference.py (the PyTorch reference the parity phase makes its models with)
#   .device/torch_bench.py       the PyTorch comparison (benchmarks/scripts)
#   .device/MANIFEST.txt         commit, files and sizes
#
# Then checks the payload: its class path holds every class the GPU tests and the command line use, each project
# class once (DeviceClassPathCheck), and its size. On the GPU machine (no Java, no Maven, no network):
#   .device/device-check.sh          (or gpt2-cuda/scripts/device-check.sh from a checkout that has .device/)
#
# Usage: gpt2-cuda/scripts/prepare-device-check.sh [--no-build]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
payload="$root/.device"
limit_bytes=$((64 * 1024 * 1024))
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
java="$JAVA_HOME/bin/java"
[ -x "$JAVA_HOME/bin/jlink" ] || { echo "prepare-device-check: no jlink at $JAVA_HOME/bin/jlink (set JAVA_HOME to a JDK 25)"; exit 1; }
version="$("$java" -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')"
[ "${version%%.*}" -ge 25 ] 2>/dev/null || { echo "prepare-device-check: $JAVA_HOME is Java $version, need 25"; exit 1; }

if [ "${1:-}" != "--no-build" ]; then
    echo "prepare-device-check: building (cli, benchmarks and what they need; tests compiled, not run)"
    rm -rf "$root/cli/target/lib"      # copy-dependencies only adds: a renamed module's old jar would stay
    (cd "$root" && ./mvnw -B -q -pl cli,benchmarks -am -DskipTests package)
fi

# --- jars ---------------------------------------------------------------------------------------------------------
one() {   # exactly one file matching a glob, or a clear error
    local matches=( $1 )
    if [ ! -f "${matches[0]}" ]; then echo "prepare-device-check: missing $1 (did the build run?)"; exit 1; fi
    echo "${matches[0]}"
}
rm -rf "$payload"
mkdir -p "$payload/lib" "$payload/reference"
cp "$(one "$root/cli/target/llmc4j-cli.jar")" "$payload/lib/"
cp "$root"/cli/target/lib/*.jar "$payload/lib/"
cp "$(one "$root/gpt2-cuda/target/llmc4j-gpt2-cuda-*-tests.jar")" "$payload/lib/"
# the common modules' test jars (RandomTokens and other test helpers the GPU tests use)
for jar in "$root"/common/*/target/*-tests.jar; do
    [ -f "$jar" ] && cp "$jar" "$payload/lib/"
done
cp "$(one "$root/benchmarks/target/llmc4j-benchmarks-*.jar")" "$payload/lib/"
cp "$(one "$root/gpt2-cuda/target/device-check/junit-platform-console-standalone.jar")" "$payload/lib/"
cuda_jar="$(ls "$payload"/lib/llmc4j-gpt2-cuda-*.jar | grep -v -- '-tests.jar$' | head -1)"
if ! "$JAVA_HOME/bin/jar" tf "$cuda_jar" | grep -q 'kernels.fatbin$'; then
    echo "prepare-device-check: $cuda_jar has no kernels.fatbin: build on a machine with nvcc"; exit 1
fi

# --- scripts ------------------------------------------------------------------------------------------------------
cp "$root/gpt2-cuda/scripts/device-check.sh" "$payload/device-check.sh"
cp "$root/reference/gpt2_reference.py" "$payload/reference/"
cp "$root/benchmarks/scripts/torch_bench.py" "$payload/"

# --- the Java runtime ---------------------------------------------------------------------------------------------
# java.logging, java.xml (XML reports), jdk.zipfs: the JUnit console launcher; java.net.http: `llmc data`;
# jdk.unsupported: libraries that peek at sun.misc.Unsafe; java.desktop: `train -o` draws loss.png (ImageIO; +9 MB);
# jdk.httpserver: `train --ui` (the run monitor's page).
modules=java.base,jdk.incubator.vector,java.logging,java.xml,java.net.http,java.management,jdk.zipfs,jdk.unsupported
modules=$modules,java.desktop,jdk.httpserver
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files \
    --compress zip-0 --output "$work/jdk"
tar -C "$work" -czf "$payload/jdk.tgz" jdk   # one compression (gzip of the uncompressed image) packs smallest

# --- checks -------------------------------------------------------------------------------------------------------
echo "prepare-device-check: checking the payload's class path"
"$work/jdk/bin/java" --add-modules jdk.incubator.vector -cp "$payload/lib/*" dev.llmc4j.gpt2.cuda.DeviceClassPathCheck \
    "$(ls "$payload"/lib/llmc4j-gpt2-cuda-*-tests.jar)" "$payload/lib/llmc4j-cli.jar" dev.llmc4j.bench.CudaBench

commit="$(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
{
    echo "llmc4j device-check payload, commit $commit, built $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    (cd "$payload" && find . -type f ! -name MANIFEST.txt -printf '%10s  %p\n' | sort -k2)
} > "$payload/MANIFEST.txt"
total=$(du -sb "$payload" | cut -f1)
echo "prepare-device-check: $payload is $total bytes ($((total / 1024 / 1024)) MiB; limit 64 MiB): jdk.tgz $(stat -c %s "$payload/jdk.tgz"), lib $(du -sb "$payload/lib" | cut -f1)"
if [ "$total" -ge "$limit_bytes" ]; then echo "prepare-device-check: payload over 64 MiB"; exit 1; fi
echo "prepare-device-check: ready. On the GPU machine: .device/device-check.sh (full log, JUnit XML and summary in \$OUT)"
