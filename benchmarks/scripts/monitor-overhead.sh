#!/usr/bin/env bash
# What ./llmc train --ui costs a run: one process trains the quickstart's GPT-2 (4 layers, 4 heads, 256 channels,
# B=8, T=64) and hands its -v periods to the monitor or not, in pairs (on-off or off-on at random); prints each pair,
# the overhead of the wall and CPU time with 95% confidence intervals, and the monitor's own time per part
# (dev.llmc4j.cli.monitor.MonitorOverhead). --parts instead times each part of the monitor's work on its own.
# Usage: benchmarks/scripts/monitor-overhead.sh [--pairs 12] [--warmup-pairs 1] [-v 10] [--no-page] [--seed 1]
#        benchmarks/scripts/monitor-overhead.sh --parts
# The text is $LLMC_TINYSHAKESPEARE, else ../shared/data/tinyshakespeare.txt next to the checkout (as the tests').
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
: "${JAVA_HOME:=/usr/lib/jvm/temurin-25-jdk-amd64}"
cd "$root"
text="${LLMC_TINYSHAKESPEARE:-$root/../shared/data/tinyshakespeare.txt}"
[[ -f "$text" ]] || { echo "monitor-overhead.sh: no tinyshakespeare text at $text (set LLMC_TINYSHAKESPEARE to a copy of it)" >&2; exit 2; }
# the cli with its test classes (where the harness lives) and its libraries in cli/target/lib
./mvnw -q -B -pl cli -am -DskipTests package >&2
exec "$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC \
    -cp "cli/target/test-classes:cli/target/llmc4j-cli.jar:cli/target/lib/*" \
    dev.llmc4j.cli.monitor.MonitorOverhead --text "$text" "$@"
