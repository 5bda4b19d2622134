#!/usr/bin/env bash
# The site's example report (Maven runs this in the docs' package phase): a short run of the README quickstart's
# model, data and learning-rate schedule, trained with --ui so that it keeps monitor.json, then `llmc report` of it
# into the site. The full quickstart (500 steps, its val loss 11 times over 20 batches) takes 10 minutes on 2 cores:
# this run takes STEPS steps, with the val loss every 10 steps over 5 batches, about a minute. The report is static
# files, Chart.js among them, so the site shows it offline.
# TEXT is $LLMC_TINYSHAKESPEARE, else ../shared/data/tinyshakespeare.txt next to the checkout; without either,
# `llmc data tinyshakespeare` takes its usual path (its cached copy, else a download, SHA-256 checked).
# Usage: docs/quickstart-report.sh JAVA CLASSPATH WORK_DIR SITE_DIR STEPS
set -euo pipefail
java="$1"; classpath="$2"; work="$3"; site="$4"; steps="$5"
root="$(cd "$(dirname "$0")/.." && pwd)"
text="${LLMC_TINYSHAKESPEARE:-$root/../shared/data/tinyshakespeare.txt}"
input=()
[ -f "$text" ] && input=(--input "$text")
llmc() {
    "$java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -XX:+UseParallelGC \
        -cp "$classpath" dev.llmc4j.cli.Llmc "$@"
}
rm -rf "$work/run" "$site/quickstart-report"
mkdir -p "$work"
start=$SECONDS
log="$work/quickstart-report.log" # the step lines; the build's output keeps the summary
data="$work/data/tinyshakespeare"
# the quickstart's GPT-2 (4 layers, 4 heads, 256 channels), batch (8 x 64), learning rate (1e-3, warmup, cosine
# to a tenth) and samples (64 tokens), fewer steps and val batches; --ui 0: any free port, on this machine only
if ! { llmc data tinyshakespeare "${input[@]}" -o "$data" &&
       llmc train -i "$data/tiny_shakespeare_train.bin" -j "$data/tiny_shakespeare_val.bin" \
           --tokenizer "$data/gpt2_tokenizer.bin" --layers 4 --heads 4 --channels 256 -r 0 -b 8 -t 64 \
           -x "$steps" -l 1e-3 -u 2 -q 0.1 -k cosine -v 10 -m 5 -s 20 -g 64 -n "$steps" -o "$work/run" \
           --ui 0 --ui-every 5; } > "$log" 2>&1; then
    cat "$log" >&2
    echo "[quickstart-report] the run failed (its output above)" >&2
    exit 1
fi
grep -E '^(val loss|total average|monitor: )' "$log" | sed 's/^/[quickstart-report] /'
llmc report "$work/run" -o "$site/quickstart-report" | sed 's/^/[quickstart-report] /'
echo "[quickstart-report] $steps steps, run and report in $((SECONDS - start)) s"
