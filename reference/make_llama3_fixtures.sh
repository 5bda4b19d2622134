#!/usr/bin/env bash
# Writes the Llama 3 parity fixtures into DIR with our PyTorch reference (reference/llama3_reference.py):
#   llama3_small.bin              fp32 checkpoint (llm.c llama3-branch layout, version 3)
#   llama3_small_bf16.bin         the same weights in bf16 (version 5)
#   llama3_small_debug_state.bin  x, y, logits, loss, gradients and 10 training losses/grad norms (B=4, T=64)
#   llama3_small.safetensors      the same weights under Hugging Face Llama names (F32)
#   llama3_small_debug_state_train_llama3.bin  the debug state made the way llm.c's train_llama3.py makes it
#   llama3_clip.bin, llama3_clip_debug_state.bin, llama3_clip_debug_state_train_llama3.bin
#                                 C=256: gradient norms above 1, so the recorded steps clip
# Small custom config: L=2, NH=4, NKV=2, C=64, V=512, maxT=128, ffn multiplier 1.3, multiple_of 32 (H=224),
# seeded random init (seed 42) and seeded random tokens (seed 1337).
# Like make: does nothing when the outputs are newer than the reference script. Without torch it prints how to
# get it and exits 0 (the parity tests then skip with a message).
set -euo pipefail
DIR=${1:?usage: make_llama3_fixtures.sh DIR}
HERE=$(cd "$(dirname "$0")" && pwd)
SCRIPT="$HERE/llama3_reference.py"
PYTHON=${LLMC_PYTHON:-/usr/bin/python3}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

OUTPUTS=("$DIR/llama3_small.bin" "$DIR/llama3_small_bf16.bin" "$DIR/llama3_small_debug_state.bin" "$DIR/llama3_small.safetensors"
  "$DIR/llama3_small_debug_state_train_llama3.bin" "$DIR/llama3_clip.bin" "$DIR/llama3_clip_debug_state.bin"
  "$DIR/llama3_clip_debug_state_train_llama3.bin")
up_to_date=1
for f in "${OUTPUTS[@]}"; do
  if [[ ! -f "$f" || "$f" -ot "$SCRIPT" || "$f" -ot "$0" ]]; then up_to_date=0; fi
done
if [[ $up_to_date == 1 ]]; then
  echo "llama3 fixtures in $DIR are up to date"
  exit 0
fi
if ! "$PYTHON" -c "import torch, numpy" 2>/dev/null; then
  echo "SKIP: $PYTHON has no torch/numpy; Llama 3 fixtures not written (install PyTorch, then run reference/make_llama3_fixtures.sh $DIR)"
  exit 0
fi
mkdir -p "$DIR"
"$PYTHON" "$SCRIPT" --config custom --layers 2 --heads 4 --kv-heads 2 --channels 64 --vocab 512 --max-seq-len 128 \
  --ffn-multiplier 1.3 --multiple-of 32 --seed 42 --data-seed 1337 --batch-size 4 --seq-len 64 --steps 10 --self-test \
  --write-model "$DIR/llama3_small.bin" --write-model-bf16 "$DIR/llama3_small_bf16.bin" \
  --write-debug-state "$DIR/llama3_small_debug_state.bin" --write-safetensors "$DIR/llama3_small.safetensors" \
  --write-debug-state-as-train-llama3 "$DIR/llama3_small_debug_state_train_llama3.bin"
"$PYTHON" "$SCRIPT" --config custom --layers 2 --heads 4 --kv-heads 2 --channels 256 --vocab 512 --max-seq-len 128 \
  --ffn-multiplier 1.3 --multiple-of 32 --seed 42 --data-seed 1337 --batch-size 4 --seq-len 64 --steps 10 \
  --write-model "$DIR/llama3_clip.bin" --write-debug-state "$DIR/llama3_clip_debug_state.bin" \
  --write-debug-state-as-train-llama3 "$DIR/llama3_clip_debug_state_train_llama3.bin"
