#!/usr/bin/env bash
# Mutation testing of the tutorials' lesson code with PIT: for each step, PIT breaks the lesson's code one small
# change at a time (a + turned into -, a condition negated, a call removed, ...) and reruns that step's tests; a
# mutant is "killed" when a test fails. Prints the share of killed mutants per step.
# Usage (repository root, JDK 25):  bash tutorials/mutation-test.sh [STEP ...]    e.g. 10 17 18; default: all
# CPU-heavy: a few minutes per step on 2 cores. Not part of ./mvnw verify.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
steps=("$@")
if [ ${#steps[@]} -eq 0 ]; then
    steps=()
    for dir in tutorials/src/main/java/dev/llmc4j/tutorials/step*/; do steps+=("$(basename "$dir" | sed 's/step//')"); done
fi
for step in "${steps[@]}"; do
    echo "== step $step"
    ./mvnw -q -B -pl tutorials -am test -Pmutation -Dpit.step="$step" -Dpit.report="step$step" \
        -Dtest="Step${step}*" -Dsurefire.failIfNoSpecifiedTests=false -Dllmc.skipFixtures=true >"tutorials/target/pit-step$step.log" 2>&1 \
        || { echo "step $step: the run failed, see tutorials/target/pit-step$step.log"; continue; }
done
python3 tutorials/mutation-scores.py
