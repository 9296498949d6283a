#!/usr/bin/env bash
# The README's demo: train -> export -> bench -> run on a bounded subset, a few minutes on 2 cores.
set -euo pipefail
PY=${PY:-python3}
OUT=${DEMO_OUT:-demo_out}
DATA=${ASL_DATA:-}
PER_CLASS=${DEMO_PER_CLASS:-60}
CLIP=scripts/demo_clip/hello_lolzorus.mp4

speller_on_clip() {
  echo "The shipped default model spells from a real webcam clip ($CLIP: HELLO, one person; the model was"
  echo "trained on this person's recordings, see scripts/demo_clip/README.md), as asl-run --camera would:"
  asl-run --camera "$CLIP" --no-display | tail -n 1
}

if [ -z "$DATA" ] || [ ! -d "$DATA/train" ]; then
  echo "No training images found (ASL_DATA='${DATA}')."
  echo "Set ASL_DATA to a folder with train/<CLASS>/ images (Kaggle 'ASL Alphabet' layout), e.g."
  echo "  make demo ASL_DATA=~/datasets/asl_alphabet"
  if $PY -c "from asl_edge.runtime.model import DEFAULT_MODEL as m; raise SystemExit(not m.is_file())"; then
    speller_on_clip
  fi
  exit 0
fi

echo "== 1/5 train: EfficientNet-Lite0 (ImageNet, frozen) + linear head, $PER_CLASS images per class from $DATA/train"
# --force: the demo owns $OUT, so a second make demo trains it again instead of refusing
asl-train --data "$DATA/train" --arch efficientnet_lite0 --max-per-class "$PER_CLASS" --epochs 10 --out "$OUT/run" --force

echo "== 2/5 export: FP32 ONNX (verified against PyTorch) and INT8 (calibrated on real images)"
asl-export "$OUT/run/best.ckpt" --quantize int8

echo "== 3/5 bench: accuracy parity and latency, side by side"
# Kaggle's official test images when present; else (a sample of) the training folder
BENCH_DATA=("--data" "$DATA/train")
if [ -d "$DATA/test" ]; then BENCH_DATA=("--data" "$DATA/test"); fi
asl-bench --ckpt "$OUT/run/best.ckpt" --onnx "$OUT/run/best.onnx" --onnx "$OUT/run/best.int8.onnx" \
  "${BENCH_DATA[@]}" --threads 2 --runs 50 --out "$OUT/bench"

echo "== 4/5 run: the torch-free runtime on the images"
asl-run --model "$OUT/run/best.int8.onnx" "${BENCH_DATA[1]}" --threads 2 | tail -n 4
echo "== 5/5 spell: the camera loop on a real hand"
speller_on_clip
echo "Done. Models in $OUT/run, benchmark report in $OUT/bench/bench.md"
