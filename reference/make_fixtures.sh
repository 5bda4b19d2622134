#!/usr/bin/env bash
# Makes the fixtures the Java parity tests read, with our PyTorch reference (gpt2_reference.py):
#   DIR/gpt2_small{.bin,_bf16.bin,_debug_state.bin,.safetensors}   L=2 NH=4 C=128, B=4 T=64
#   DIR/gpt2_d12{.bin,_bf16.bin,_debug_state.bin}                   GPT-2 124M random init, B=4 T=64
# Both batches are seeded random tokens (--token-seed 1234). A case is skipped when all its files exist and are
# newer than gpt2_reference.py. Without torch for /usr/bin/python3 it says so and exits 0.
#
# usage: reference/make_fixtures.sh DIR
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
DIR=$1
HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT=$HERE/gpt2_reference.py
PYTHON=${LLMC_PYTHON:-/usr/bin/python3}    # LLMC_PYTHON overrides it (a venv with torch)
export OMP_NUM_THREADS=2

if ! "$PYTHON" -c 'import torch' >/dev/null 2>&1; then
    echo "fixtures not made: $PYTHON cannot import torch (apt-get install python3-torch libopenblas0-openmp, then rerun $0 $DIR)"
    exit 0
fi
mkdir -p "$DIR"

# up_to_date FILE...: every file exists and is newer than the reference script
up_to_date() {
    local f
    for f in "$@"; do
        [ -f "$f" ] && [ "$f" -nt "$SCRIPT" ] || return 1
    done
}

# make_case TAG EXTRA_FILES -- ARGS...: runs the reference unless the case is up to date
make_case() {
    local tag=$1 extra=$2
    shift 3
    local files=("$DIR/gpt2_$tag.bin" "$DIR/gpt2_${tag}_bf16.bin" "$DIR/gpt2_${tag}_debug_state.bin")
    [ -n "$extra" ] && files+=("$extra")
    if up_to_date "${files[@]}"; then
        echo "$tag: up to date, skipped (${files[*]})"
        return
    fi
    echo "$tag: generating ($PYTHON gpt2_reference.py $* --out-dir $DIR --tag $tag)"
    local start=$SECONDS
    "$PYTHON" -u "$SCRIPT" "$@" --out-dir "$DIR" --tag "$tag" --batch 4 --seq 64 --token-seed 1234 --steps 10 \
        | sed "s/^/  $tag: /"
    echo "$tag: done in $((SECONDS - start)) s"
}

make_case small "$DIR/gpt2_small.safetensors" -- \
    --layers 2 --heads 4 --channels 128 --write-safetensors "$DIR/gpt2_small.safetensors"
make_case d12 "" -- --model d12
echo "fixtures in $DIR"
