#!/usr/bin/env bash
# Builds the small Java runtime the GPU benchmark machine uses (it has neither Java nor Maven):
#   <repo>/.jdk/             a jlinked JDK 25 with just the modules llmc4j and the JUnit console launcher need
#   gpt2-cuda/target/gpu-bench/jdk.tar.gz   the same, packed (gpu-bench.sh unpacks it if .jdk/ is absent)
# Run it on the build machine after `./mvnw -B -pl gpt2-cuda -am -DskipTests package`.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
export JAVA_HOME="${JAVA_HOME:-/usr/lib/jvm/temurin-25-jdk-amd64}"
jlink="$JAVA_HOME/bin/jlink"
[ -x "$jlink" ] || { echo "make-jdk: no jlink at $jlink (set JAVA_HOME to a JDK 25)"; exit 1; }
version="$("$JAVA_HOME/bin/java" -XshowSettings:properties -version 2>&1 | sed -n 's/ *java.specification.version = //p')"
[ "${version%%.*}" -ge 25 ] 2>/dev/null || { echo "make-jdk: $JAVA_HOME is Java $version, need 25"; exit 1; }

# java.logging, java.xml and jdk.zipfs (class-path scanning inside jars): JUnit's console launcher;
# jdk.unsupported: libraries that peek at sun.misc.Unsafe
modules=java.base,jdk.incubator.vector,java.net.http,java.logging,java.xml,java.management,jdk.zipfs,jdk.unsupported
rm -rf "$root/.jdk"
"$jlink" --add-modules "$modules" --strip-debug --no-man-pages --no-header-files --compress zip-6 --output "$root/.jdk"
mkdir -p "$root/gpt2-cuda/target/gpu-bench"
tar -C "$root" -czf "$root/gpt2-cuda/target/gpu-bench/jdk.tar.gz" .jdk
echo "make-jdk: $root/.jdk ($(du -sh "$root/.jdk" | cut -f1)), gpt2-cuda/target/gpu-bench/jdk.tar.gz ($(du -sh "$root/gpt2-cuda/target/gpu-bench/jdk.tar.gz" | cut -f1))"
"$root/.jdk/bin/java" -version 2>&1 | head -1
