#!/usr/bin/env bash
# The GPU device check: settles every GPU claim of gpt2-cuda in one run of under 8 minutes, on a machine that has
# an NVIDIA GPU, python3 (with PyTorch for phases 3 and 6) and nvidia-smi, but no Java, no Maven and no network.
#
# Prepare on the build machine:   gpt2-cuda/scripts/prepare-device-check.sh      (makes .device/, < 64 MiB)
# Run on the GPU machine:         .device/device-check.sh    or    gpt2-cuda/scripts/device-check.sh
#
# Phases, each under its own time limit (and all under DEVICE_CHECK_SECONDS, default 470):
#   1 environment   nvidia-smi, PyTorch's version, Java, the GPU as our driver binding sees it, where cuBLASLt and
#                   NCCL were found (or every place searched)
#   2 gpu tests     the class-path check, then every JUnit test tagged "gpu" (JUnit console launcher, XML reports)
#   3 parity        a small model (head size 64) and d12 from llm.c's seeded init with their debug states, made by
#                   reference/gpt2_reference.py (PyTorch); `llmc test-gpt2 --device cuda` in fp32, bf16 and fp16;
#                   `llmc train` for 5 steps on the GPU and on the CPU, losses compared (fp32: 1e-4 relative;
#                   bf16: llm.c test_gpt2.cu's 0.05)
#   4 benchmark     d12, T=1024, bf16, flash attention, B=16/32/64: ms/step, tokens/s, MFU
#   5 attention     flash vs plain attention (d12, T=1024, B=8)
#   6 pytorch       the same shapes in PyTorch: bf16 autocast, torch.compile, scaled_dot_product_attention
# Without a CUDA device, phases 3-6 report "skipped: no CUDA device" and phase 2's tests skip themselves.
#
# Output: everything on stdout; with $OUT set (else ./device-check-out) also these files there:
#   device-check.log        the full log        junit-reports.tar.gz   the JUnit XML reports
#   summary.txt             one line per phase  results.txt            every RESULT/PARITY line
# The last lines of stdout are the summary: one line per phase, then the verdict. Exit 0 when no phase failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
if [ -f "$here/jdk.tgz" ]; then payload="$here"                              # .device/device-check.sh
elif [ -f "$here/../../.device/jdk.tgz" ]; then payload="$(cd "$here/../../.device" && pwd)"
else
    echo "device-check: no payload (jdk.tgz) next to this script or in <repo>/.device: run gpt2-cuda/scripts/prepare-device-check.sh on the build machine first"
    exit 2
fi
out="${OUT:-$PWD/device-check-out}"
mkdir -p "$out"
work="$(mktemp -d "${TMPDIR:-/tmp}/llmc4j-device-check.XXXXXX")"
log="$out/device-check.log"
results="$out/results.txt"
summary="$out/summary.txt"
: > "$results"; : > "$summary"
exec > >(tee "$log") 2>&1
tee_pid=$!

total_seconds="${DEVICE_CHECK_SECONDS:-470}"
start_time=$(date +%s)
declare -a phase_lines=()
any_failed=0

say() { echo "[device-check $(date -u +%H:%M:%S)] $*"; }
phase_end=0
# phase_begin SECONDS: the current phase may use this many seconds (and no more than the whole run has left)
phase_begin() { phase_end=$(( $(date +%s) + $1 )); }
remaining() {
    local now; now=$(date +%s)
    local overall=$(( total_seconds - (now - start_time) )) phase=$(( phase_end - now ))
    echo $(( overall < phase ? overall : phase ))
}

# run_limited SECONDS CMD...: runs CMD under `timeout`, within SECONDS, the phase's and the whole run's budget
run_limited() {
    local limit=$1; shift
    local left; left=$(remaining)
    [ "$left" -lt "$limit" ] && limit=$left
    if [ "$limit" -lt 5 ]; then say "no time left for: $*"; return 124; fi
    timeout --kill-after=10 "$limit" "$@"
}

# record PHASE STATUS DETAILS: one summary line per phase
record() {
    local line; line=$(printf '%-14s %-8s %s' "$1" "$2" "$3")
    phase_lines+=("$line")
    echo "$line" >> "$summary"
    [ "$2" = "FAILED" ] && any_failed=1
    say "phase $1: $2 $3"
}

# --- the Java runtime and class path -------------------------------------------------------------------------------
jdk="${TMPDIR:-/tmp}/llmc4j-device-jdk"
if [ ! -x "$jdk/jdk/bin/java" ] || [ "$payload/jdk.tgz" -nt "$jdk/jdk/bin/java" ]; then
    rm -rf "$jdk" && mkdir -p "$jdk" && tar -C "$jdk" -xzf "$payload/jdk.tgz"
fi
java="$jdk/jdk/bin/java"
cp="$payload/lib/*"
tests_jar="$(ls "$payload"/lib/llmc4j-gpt2-cuda-*-tests.jar 2>/dev/null | head -1)"
jvm=(--add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -Xss8m)
llmc=("$java" "${jvm[@]}" -cp "$cp" dev.llmc4j.cli.Llmc)
python="${PYTHON:-$(command -v python3 || true)}"     # PYTHON=... picks another interpreter
threads="$(nproc 2>/dev/null || echo 4)"

say "payload $payload ($(head -1 "$payload/MANIFEST.txt" 2>/dev/null)), output $out, budget ${total_seconds}s"

# === 1. environment ===============================================================================================
say "=== phase 1: environment ==="
phase_begin 30
gpu=0
{
    if command -v nvidia-smi >/dev/null 2>&1; then
        run_limited 20 nvidia-smi --query-gpu=name,memory.total,driver_version,compute_cap --format=csv,noheader
    else
        echo "nvidia-smi: not installed"
    fi
    if [ -n "$python" ]; then
        run_limited 30 "$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())' 2>&1 | tail -1
    else
        echo "python3: not installed"
    fi
} | tee "$work/env.txt"
run_limited 30 "$java" "${jvm[@]}" -cp "$cp" dev.llmc4j.gpt2.cuda.DeviceProbe | tee "$work/probe.txt"
probe_status=${PIPESTATUS[0]}
grep -q '^cuda=available' "$work/probe.txt" && gpu=1
gpu_name="$(sed -n 's/^gpu=//p' "$work/probe.txt")"
torch_version="$(sed -n 's/^torch \([^ ]*\) .*/\1/p' "$work/env.txt")"
torch_cuda="$(grep -c 'available True' "$work/env.txt")"
found() {  # KEY -> the library's path, or "not found" (the probe's line above lists every place searched)
    local v; v="$(sed -n "s/^$1=//p" "$work/probe.txt")"
    case "$v" in "NOT FOUND"*) echo "not found (places searched: see the log)" ;; *) echo "$v" ;; esac
}
cublaslt="$(found cublaslt)"; nccl="$(found nccl)"
why_no_gpu="$(sed -n 's/^cuda=absent (\(.*\))$/\1/p' "$work/probe.txt" | cut -d: -f1)"
if [ "$probe_status" -ne 0 ]; then
    record "1 environment" FAILED "the Java probe exited $probe_status"
else
    record "1 environment" ok "gpu: ${gpu_name:-none, ${why_no_gpu}}; torch ${torch_version:-none}$([ "$torch_cuda" = 1 ] && echo ' (cuda)'); cublasLt: ${cublaslt}; nccl: ${nccl}"
fi

# === 2. GPU tests =================================================================================================
say "=== phase 2: class-path check and the GPU-tagged tests ==="
phase_begin 100
reports="$work/junit-reports"
mkdir -p "$reports"
run_limited 60 "$java" "${jvm[@]}" -cp "$cp" dev.llmc4j.gpt2.cuda.DeviceClassPathCheck "$tests_jar" \
    "$payload/lib/llmc4j-cli.jar" dev.llmc4j.bench.CudaBench | tee "$work/classpath.txt"
classpath_status=${PIPESTATUS[0]}
run_limited 150 "$java" "${jvm[@]}" -Dllmc.root="$work" -cp "$cp" org.junit.platform.console.ConsoleLauncher execute \
    --disable-banner --details=tree --disable-ansi-colors --scan-class-path="$tests_jar" --include-tag=gpu \
    --reports-dir="$reports" > "$work/junit.txt" 2>&1
junit_status=$?
cat "$work/junit.txt"
count() { sed -n "s/.*\[ *\([0-9]*\) tests $1 *\].*/\1/p" "$work/junit.txt" | head -1; }
passed=$(count successful); failed=$(count failed); skipped=$(count skipped); aborted=$(count aborted)
tar -C "$work" -czf "$out/junit-reports.tar.gz" junit-reports
details="passed ${passed:-?}, failed ${failed:-?}, skipped ${skipped:-?} (aborted ${aborted:-?}: assumptions such as 'no CUDA device'); class path: $(tail -1 "$work/classpath.txt" | sed 's/class-path check: //')"
# a test that skipped itself has proved nothing: with a GPU present every skip is a failure of this phase, and
# without one the phase is "skipped", never "ok"
if [ "$classpath_status" -ne 0 ] || [ "$junit_status" -ne 0 ] || [ -z "$passed" ]; then
    record "2 gpu-tests" FAILED "$details (junit exit $junit_status)"
elif [ "$gpu" != 1 ]; then
    record "2 gpu-tests" skipped "no CUDA device; $details"
elif [ "${aborted:-0}" -ne 0 ] || [ "${skipped:-0}" -ne 0 ] || [ "$passed" -eq 0 ]; then
    record "2 gpu-tests" FAILED "a GPU is present but tests skipped themselves: $details"
else
    record "2 gpu-tests" ok "$details"
fi

# === 3. end-to-end parity =========================================================================================
say "=== phase 3: end-to-end parity against PyTorch-made models ==="
phase_begin 130
if [ "$gpu" != 1 ]; then
    record "3 parity" skipped "no CUDA device"
elif [ -z "$torch_version" ]; then
    record "3 parity" skipped "no PyTorch for the reference models (python3 -c 'import torch' failed)"
else
    ref="$work/ref"
    mkdir -p "$ref"
    export OMP_NUM_THREADS="$threads"
    # small: L=2, NH=2, C=128, so the head size is 64 and flash attention runs on it too
    run_limited 60 "$python" "$payload/reference/gpt2_reference.py" --layers 2 --heads 2 --channels 128 \
        --out-dir "$ref" --tag small --batch 4 --seq 64 --token-seed 1234 --steps 5 | tail -3
    run_limited 120 "$python" "$payload/reference/gpt2_reference.py" --model d12 \
        --out-dir "$ref" --tag d12 --batch 4 --seq 64 --token-seed 1234 --steps 3 | tail -3
    checks=0; passes=0; failures=""
    for model in small d12; do
        [ -f "$ref/gpt2_${model}_debug_state.bin" ] || { failures="$failures $model:not-made"; continue; }
        for precision in fp32 bf16 fp16; do
            attention=flash; [ "$precision" = fp32 ] && attention=plain
            checks=$((checks + 1))
            say "llmc test-gpt2 --device cuda --precision $precision ($model)"
            run_limited 60 "${llmc[@]}" test-gpt2 --device cuda --precision "$precision" --attention "$attention" \
                --model "$ref/gpt2_$model.bin" --state "$ref/gpt2_${model}_debug_state.bin" > "$work/parity-$model-$precision.txt" 2>&1
            status=$?
            tail -25 "$work/parity-$model-$precision.txt"
            if [ $status -eq 0 ]; then passes=$((passes + 1)); verdict=ok; else failures="$failures $model/$precision"; verdict="FAILED(exit $status)"; fi
            echo "PARITY test-gpt2 model=$model precision=$precision status=$verdict" >> "$results"
        done
    done
    # a short training run, GPU against CPU: same model file, same tokens, same 5 steps
    if [ -f "$ref/gpt2_small.bin" ]; then
        "$python" - "$work/tokens.bin" <<'PY'
import random, struct, sys
# llm.c's token shard: 256 int32 header (magic 20240520, version 1, count), then uint16 tokens
random.seed(7)
tokens = [random.randrange(50257) for _ in range(20000)]
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<256i", 20240520, 1, len(tokens), *([0] * 253)))
    f.write(struct.pack("<%dH" % len(tokens), *tokens))
PY
        train() {  # DEVICE PRECISION -> losses, one per line
            local extra=(); [ "$1" = cuda ] && extra=(--precision "$2" --attention "$3" -f 0)
            run_limited 90 "${llmc[@]}" train --device "$1" "${extra[@]}" -e "$ref/gpt2_small.bin" -i "$work/tokens.bin" \
                -j "$work/tokens.bin" -b 4 -t 64 -x 5 -l 1e-4 -v 100 -m 1 -g 0 -s 0 > "$work/train-$1-$2.txt" 2>&1
            sed -n 's/^step *\([0-9]*\)\/[0-9]* | loss \([0-9.]*\).*/\1 \2/p' "$work/train-$1-$2.txt"
        }
        train cpu fp32 plain > "$work/losses-cpu.txt"
        for precision in fp32 bf16; do
            attention=flash; [ "$precision" = fp32 ] && attention=plain
            checks=$((checks + 1))
            train cuda "$precision" "$attention" > "$work/losses-cuda-$precision.txt"
            tolerance=1e-4; mode=relative; [ "$precision" = bf16 ] && { tolerance=0.05; mode=absolute; }
            verdict="$("$python" - "$work/losses-cpu.txt" "$work/losses-cuda-$precision.txt" "$tolerance" "$mode" <<'PY'
import sys
cpu = dict(line.split() for line in open(sys.argv[1]) if line.strip())
gpu = dict(line.split() for line in open(sys.argv[2]) if line.strip())
tol, mode = float(sys.argv[3]), sys.argv[4]
if len(cpu) < 5 or len(gpu) < 5:
    print("FAILED steps cpu=%d gpu=%d" % (len(cpu), len(gpu))); sys.exit()
worst = 0.0
for step in cpu:
    c, g = float(cpu[step]), float(gpu.get(step, "nan"))
    err = abs(g - c) / abs(c) if mode == "relative" else abs(g - c)
    worst = max(worst, err) if err == err else float("inf")
print("%s worst_%s_error=%.3g tolerance=%g" % ("ok" if worst <= tol else "FAILED", mode, worst, tol))
PY
)"
            echo "PARITY train model=small precision=$precision cuda_vs_cpu $verdict" >> "$results"
            say "train cuda $precision vs cpu: $verdict"
            case "$verdict" in ok*) passes=$((passes + 1)) ;; *) failures="$failures train/$precision" ;; esac
        done
    fi
    if [ -z "$failures" ]; then record "3 parity" ok "$passes/$checks checks passed (torch $torch_version)"
    else record "3 parity" FAILED "$passes/$checks checks passed; failed:$failures"; fi
fi

# === 4-5. our benchmark ===========================================================================================
bench_summary() {  # RESULT lines of a file -> "B=16 1234 tok/s MFU 12.3%; ..."
    sed -n 's/^RESULT \(.*\)/\1/p' "$1" | tee -a "$results" | awk '{
        b = ""; t = ""; m = ""; s = ""; a = "";
        for (i = 1; i <= NF; i++) { split($i, kv, "=");
            if (kv[1] == "B") b = kv[2]; if (kv[1] == "tok_per_s") t = kv[2]; if (kv[1] == "mfu") m = kv[2];
            if (kv[1] == "status") s = kv[2]; if (kv[1] == "attention") a = kv[2]; }
        printf "%s%s B=%s %s", (NR > 1 ? "; " : ""), a, b, (s == "ok" ? sprintf("%.0f tok/s MFU %.1f%%", t, m * 100) : s) }'
}
# bench_phase PHASE SECONDS RUNS CMD...: a benchmark phase, ok when RUNS configurations report status=ok
bench_phase() {
    local phase=$1 seconds=$2 runs=$3; shift 3
    phase_begin "$seconds"
    if [ "$gpu" != 1 ]; then record "$phase" skipped "no CUDA device"; return; fi
    local file="$work/${phase// /-}.txt" line
    run_limited "$seconds" "$@" 2>&1 | tee "$file"
    line="$(bench_summary "$file")"
    if [ "$(grep -c 'status=ok' "$file")" -ge "$runs" ]; then record "$phase" ok "$line"
    else record "$phase" FAILED "${line:-no result}"; fi
}
bench=("$java" "${jvm[@]}" -cp "$cp" dev.llmc4j.bench.CudaBench --model d12 --seq 1024 --precision bf16)

say "=== phase 4: d12 T=1024 bf16 training steps, B=16/32/64 ==="
bench_phase "4 benchmark" 80 3 "${bench[@]}" --attention flash --batch 16,32,64 --steps 8 --warmup 2

say "=== phase 5: flash vs plain attention (d12, T=1024, B=8) ==="
bench_phase "5 attention" 40 2 "${bench[@]}" --attention flash,plain --batch 8 --steps 3 --warmup 1

# === 6. PyTorch ===================================================================================================
say "=== phase 6: PyTorch bf16 + torch.compile + SDPA, same shapes ==="
if [ "$gpu" = 1 ] && [ "$torch_cuda" != 1 ]; then
    record "6 pytorch" skipped "no PyTorch with CUDA"
else
    bench_phase "6 pytorch" 90 1 env OMP_NUM_THREADS=4 "$python" "$payload/torch_bench.py" --batch 16,32,64 \
        --seq 1024 --steps 8 --warmup 3
fi

# === summary ======================================================================================================
elapsed=$(( $(date +%s) - start_time ))
verdict="PASSED"; [ "$gpu" != 1 ] && verdict="DRY RUN (no CUDA device: nothing was proved on a GPU)"
[ "$any_failed" = 1 ] && verdict="FAILED"
echo "verdict: $verdict in ${elapsed}s (files in $out: device-check.log summary.txt results.txt junit-reports.tar.gz)" >> "$summary"
echo
echo "================================ device-check summary ================================"
cat "$summary"
rm -rf "$work"
exec 1>&- 2>&-      # let tee write the last lines of the log before the script ends
wait "$tee_pid" 2>/dev/null
[ "$any_failed" = 0 ]
