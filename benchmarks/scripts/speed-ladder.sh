#!/usr/bin/env bash
# The speed ladder: tokens/s of a GPT-2 training step (forward, backward, AdamW) after each CPU optimization, on
# this machine. One rung per line of dev.llmc4j.bench.SpeedLadder.RUNGS, each in a JVM of its own: the plain loops
# on 1 thread and on all, the Vector API kernels on 1 thread and on all, then what recompute (-r 1, -r 2) costs.
#
#   benchmarks/scripts/speed-ladder.sh [MODEL [B [T [STEPS [WARMUP]]]]] [--adoc FILE] [--svg FILE]
#                                                             defaults: d6 4 64 5 2 (a few minutes on 2 cores)
#
# Prints a table: ms per step (the median of STEPS after WARMUP warm-up steps), tokens/s = B*T per step time, the
# speedup over the rung before and over the first, and the activation memory. --adoc writes the table as AsciiDoc,
# --svg draws tokens/s per rung as a bar chart (the docs' performance page shows both). Builds the benchmarks jar
# first. The plain-loop rungs are the slow ones: a bigger MODEL (d12) takes several times as long.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
export JAVA_HOME=${JAVA_HOME_25:-/usr/lib/jvm/temurin-25-jdk-amd64}
cd "$HERE"
./mvnw -q -B -pl benchmarks -am -DskipTests package
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp benchmarks/target/benchmarks.jar dev.llmc4j.bench.SpeedLadder "$@"
