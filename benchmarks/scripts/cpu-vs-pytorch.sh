#!/usr/bin/env bash
# Our GPT-2 or Llama 3 training step vs PyTorch's on the same machine, alternating step by step in one run.
#
#   benchmarks/scripts/cpu-vs-pytorch.sh [MODEL [B [T [STEPS [WARMUP]]]]]     defaults: d12 4 64 7 3
#   benchmarks/scripts/cpu-vs-pytorch.sh llama3 [B [T [STEPS [WARMUP]]]]      defaults: 4 128 7 3
#
# MODEL: a GPT-2 depth (d6, d12, ...) or a Llama 3 shape: llama3 (L4 C512 NH8 NKV2 V32768), llama3:3.2-1B, or
# fields over that shape, llama3:L4,C512,NH8,NKV2,V32768[,FFN1.3,MO256,MAXT1024] (StepBench / Llama3Descriptor).
#
# Prints, for the full training step (forward, backward, AdamW) and for the forward pass alone: the median ms of
# ours and of PyTorch's (Debian's torch with OpenBLAS, /usr/bin/python3), the ratio, GFLOP/s and % of the
# machine's fp32 FMA peak, measured first through the Vector API on all threads (MachineLimits; its read bandwidth
# is printed too). Both use OMP_NUM_THREADS=2 threads. PyTorch runs OpenBLAS's best kernels for the CPU: the script
# removes OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE for the PyTorch side only and prints the core OpenBLAS chose.
# Builds the benchmarks jar first. The PyTorch side is reference/gpt2_reference.py's model (GPT-2) or
# reference/llama3_reference.py's (Llama 3, the shape our side parsed) with torch.optim.AdamW. FLOPs: 6 N tokens
# over the N matmul weights, plus attention's two (T x T) products in full.
# With BENCH_SVG=FILE it also draws the medians as a bar chart (the docs site's performance charts come from here).
set -euo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
export JAVA_HOME=${JAVA_HOME_25:-/usr/lib/jvm/temurin-25-jdk-amd64}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
cd "$HERE"
./mvnw -q -B -pl benchmarks -am -DskipTests package
limits=$("$JAVA_HOME/bin/java" --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \
  -cp benchmarks/target/benchmarks.jar dev.llmc4j.bench.MachineLimits 2>/dev/null)
echo "$limits" | sed -n 's/^# /machine: /p'
PEAK_GFLOPS=$(echo "$limits" | sed -n 's/^peak_gflops //p')
export PEAK_GFLOPS
exec /usr/bin/python3 -u benchmarks/scripts/cpu_vs_pytorch.py "$@"
