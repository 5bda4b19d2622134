#!/usr/bin/env bash
# Compiles every src/main/cuda/*.cu into ONE fatbin (sm_80 + sm_90 machine code, compute_90 PTX so newer GPUs can
# JIT it) and writes it, with kernels.txt (the exported kernel names), as classpath resources:
#   <classes>/dev/llmc4j/gpt2/cuda/kernels.fatbin
#   <classes>/dev/llmc4j/gpt2/cuda/kernels.txt
# Maven runs this in generate-resources. Without nvcc it prints one line and exits 0: the Java code still builds,
# and GPT2Cuda reports the missing fatbin clearly at run time.
# Usage: build-kernels.sh [classes-dir]   (default: target/classes next to this script)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
classes="${1:-$here/target/classes}"
src="$here/src/main/cuda"
outdir="$classes/dev/llmc4j/gpt2/cuda"
work="$here/target/cuda"

nvcc=""
if command -v nvcc >/dev/null 2>&1; then nvcc="$(command -v nvcc)"
elif [ -n "${CUDA_HOME:-}" ] && [ -x "$CUDA_HOME/bin/nvcc" ]; then nvcc="$CUDA_HOME/bin/nvcc"
elif [ -x /usr/local/cuda/bin/nvcc ]; then nvcc=/usr/local/cuda/bin/nvcc
fi
if [ -z "$nvcc" ]; then
    echo "[gpt2-cuda] nvcc not found (PATH, \$CUDA_HOME/bin, /usr/local/cuda/bin): skipping the CUDA kernels; GPU runs will need a build with nvcc"
    exit 0
fi

mkdir -p "$outdir" "$work"
fatbin="$outdir/kernels.fatbin"
# up to date? (newer than every source)
if [ -f "$fatbin" ] && [ -f "$outdir/kernels.txt" ] && [ -z "$(find "$src" -newer "$fatbin" -print -quit)" ] \
   && [ "$here/build-kernels.sh" -ot "$fatbin" ]; then
    echo "[gpt2-cuda] kernels.fatbin is up to date"
    exit 0
fi

# one translation unit that includes every .cu: nvcc -fatbin takes a single input file
unity="$work/all_kernels.cu"
: > "$unity"
for f in "$src"/*.cu; do echo "#include \"$f\"" >> "$unity"; done

flags=(-std=c++17 -O3 -I"$src"
       -gencode arch=compute_80,code=sm_80
       -gencode arch=compute_90,code=sm_90
       -gencode arch=compute_90,code=compute_90)
echo "[gpt2-cuda] $nvcc -fatbin ${flags[*]} -> $fatbin"
"$nvcc" -fatbin "${flags[@]}" -o "$work/kernels.fatbin" "$unity"

# the exported names, from the preprocessed source (the macros generate them)
"$nvcc" -E -std=c++17 -arch=sm_80 -I"$src" "$unity" \
  | grep -oE 'extern "C" __attribute__\(\(global\)\) void (__attribute__\(\(launch_bounds\([A-Za-z_0-9]+\)\)\) )?[A-Za-z_0-9]+\(' \
  | sed -E 's/.* ([A-Za-z_0-9]+)\($/\1/' | sort -u > "$work/kernels.txt"

mv "$work/kernels.txt" "$outdir/kernels.txt"
mv "$work/kernels.fatbin" "$fatbin"
echo "[gpt2-cuda] $(wc -l < "$outdir/kernels.txt") kernels, $(stat -c %s "$fatbin") bytes"
