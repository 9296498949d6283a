#!/usr/bin/env bash
# The GPU check: CUDA training, export, and the CUDA execution provider (FP32, INT8, FP16), each
# compared with the CPU on the same machine and the same images. For a machine with an NVIDIA GPU,
# PyTorch with CUDA and onnxruntime-gpu; about 5 minutes there.
#
#   bash scripts/gpu_check.sh TRAIN_DIR [TRAIN_DIR ...] -- TEST_DIR [TEST_DIR ...]
#
# TRAIN_DIRs: small by-class folders (a few images per class and source is enough: this checks that
# the CUDA paths run and agree with the CPU, not accuracy). TEST_DIRs: labelled by-class folders.
# Writes $RESULTS (runs/gpu): log.txt, compare.txt (asl-run on cuda vs cpu, per model), bench.md
# (asl-bench --providers cpu,cuda), summary.txt (one PASS/FAIL line per step); exits 1 if any failed.
#
# Environment: WEIGHTS (--weights for asl-train: imagenet, none or a state dict file; imagenet),
# EPOCHS (3), DEV (cuda; cpu for a dry run), RESULTS (runs/gpu), PY (python3: must have torch with CUDA; the package is installed
# into it with pip --no-deps unless it imports already).
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
RESULTS=${RESULTS:-runs/gpu}
WEIGHTS=${WEIGHTS:-imagenet}
EPOCHS=${EPOCHS:-3}
DEV=${DEV:-cuda}  # DEV=cpu: a dry run of the script itself on a machine without a GPU
train=(); test=(); side=train
for a in "$@"; do
  if [[ $a == -- ]]; then side=test; elif [[ $side == train ]]; then train+=(--data "$a"); else test+=("$a"); fi
done
[[ ${#train[@]} -gt 0 && ${#test[@]} -gt 0 ]] || { echo "usage: $0 TRAIN_DIR... -- TEST_DIR..." >&2; exit 2; }
mkdir -p "$RESULTS"; rm -f "$RESULTS"/summary.txt
LOG=$RESULTS/log.txt; : > "$LOG"
log() { echo "[gpu-check $(date +%H:%M:%S)] $*" | tee -a "$LOG" >&2; }
# step NAME CMD...: run it, its output into the log, and one PASS/FAIL line with its time
step() {
  local name=$1 t0=$SECONDS rc; shift
  log "== $name: $*"
  "$@" >> "$LOG" 2>&1; rc=$?
  echo "$( ((rc == 0)) && echo PASS || echo "FAIL (rc $rc)")  $name  $((SECONDS - t0)) s" | tee -a "$RESULTS/summary.txt" >&2
  return $rc
}

$PY -c "import asl_edge.runtime" 2>/dev/null \
  || $PY -m pip install -q --no-deps --no-build-isolation -e . >> "$LOG" 2>&1 || { log "cannot install asl-edge"; exit 2; }
BIN=$(dirname "$($PY -c 'import sys; print(sys.executable)')")
export PATH=$BIN:$PATH PYTHONUNBUFFERED=1
nvidia-smi -L >> "$LOG" 2>&1
step environment $PY -c "
import torch, onnxruntime as ort
print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpu', torch.cuda.get_device_name(0))
print('onnxruntime', ort.__version__, ort.get_available_providers())
assert torch.cuda.is_available() and 'CUDAExecutionProvider' in ort.get_available_providers()"

# --- training on the GPU: the cached-views path (frozen prefix on CUDA) and the whole network per step ---
RUN=$RESULTS/run
step "train cuda (views cache, unfreeze 5, landmarks)" asl-train "${train[@]}" --arch efficientnet_lite0 \
  --weights "$WEIGHTS" --augment default --unfreeze 5 --landmarks --epochs "$EPOCHS" --seed 0 --device "$DEV" \
  --out "$RUN" --force
step "train cuda (views 0: whole network each step)" asl-train "${train[@]}" --arch efficientnet_lite0 \
  --weights "$WEIGHTS" --augment default --unfreeze all --views 0 --epochs 2 --seed 0 --device "$DEV" \
  --out "$RESULTS/run_views0" --force
grep -E "epoch [0-9]+/|best|landmark" "$LOG" | tail -12 >&2

# --- export from the GPU-trained checkpoint: FP32, INT8, FP16 ---
step "export fp32+int8+fp16" asl-export "$RUN/best.ckpt" --quantize int8 --quantize fp16 --calib-count 100

# --- asl-run: every model on the CUDA provider and on the CPU, same images, every class's probability ---
models=(default "$RUN/best.int8.onnx" "$RUN/best.fp16.onnx" "$RUN/best.onnx")
tags=()
for m in "${models[@]}"; do
  src=$m; [[ $m == default ]] && src=$($PY -c "from asl_edge.runtime.model import DEFAULT_MODEL as m; print(m)")
  [[ -f $src ]] || { log "skipping $m (not found)"; continue; }
  tag=$(basename "$src" .onnx); tag=${tag//./_}; tags+=("$tag")
  for prov in cuda cpu; do
    step "asl-run $tag on $prov" bash -c "asl-run ${test[*]} --model '$src' --provider $prov --json --top-k 1000 \
      > '$RESULTS/${prov}_$tag.jsonl' 2> '$RESULTS/${prov}_$tag.log'"
    grep -h "on .*ExecutionProvider" "$RESULTS/${prov}_$tag.log" | head -1 >&2
  done
  grep -q "on CUDAExecutionProvider" "$RESULTS/cuda_$tag.log" \
    || echo "FAIL  $tag did not run on CUDAExecutionProvider" | tee -a "$RESULTS/summary.txt" >&2
done
# --provider auto (the default): an INT8 file stays on the CPU, the hand finder goes to CUDA
step "asl-run default on auto (INT8 stays on the CPU)" bash -c "asl-run ${test[*]} --json > '$RESULTS/auto_default.jsonl' \
  2> '$RESULTS/auto_default.log' && grep -q 'on CPUExecutionProvider' '$RESULTS/auto_default.log'"
grep -h "^model\|^hands" "$RESULTS/auto_default.log" >&2
$PY scripts/compare_runs.py --sides cuda,cpu "$RESULTS" "${tags[@]}" > "$RESULTS/compare.txt" 2>> "$LOG" \
  || echo "FAIL  compare_runs" >> "$RESULTS/summary.txt"
cat "$RESULTS/compare.txt" >&2

# --- the hand finder's models on CUDA vs CPU (asl-run keeps it on the CPU; this measures what CUDA would give) ---
step "hand finder cuda vs cpu" $PY - "${test[@]}" <<'EOF'
import sys, time
from pathlib import Path
import cv2, numpy as np
from asl_edge.runtime.hands import HandTracker
files = sorted(p for d in sys.argv[1:] for p in Path(d).rglob("*.jpg"))[:60]
images = [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in files]
found = {}
for prov in ("cpu", "cuda"):
    tracker = HandTracker("full", video=False, provider=prov)
    tracker.process(images[0])
    t0 = time.perf_counter()
    found[prov] = [tracker.process(im) for im in images]
    print(f"{prov} ({tracker._palm.get_providers()[0]}): {1000 * (time.perf_counter() - t0) / len(images):.1f} ms "
          f"per image, {sum(h is not None for h in found[prov])}/{len(images)} hands")
both = [(a, b) for a, b in zip(found["cpu"], found["cuda"]) if a is not None and b is not None]
same = sum((a is None) == (b is None) for a, b in zip(found["cpu"], found["cuda"]))
diff = max((float(np.abs(a.landmarks[:, :2] - b.landmarks[:, :2]).max()) for a, b in both), default=0.0)
print(f"found/not found agree on {same}/{len(images)}; max landmark difference {diff:.2f} px")
assert same >= len(images) - 1 and diff < 3.0
EOF

# --- asl-bench: PyTorch and the three files, CPU and CUDA rows side by side ---
step "asl-bench cpu,cuda" asl-bench --ckpt "$RUN/best.ckpt" --onnx "$RUN/best.onnx" --onnx "$RUN/best.int8.onnx" \
  --onnx "$RUN/best.fp16.onnx" $(printf -- "--data %s " "${test[@]}") --providers cpu,cuda --runs 50 \
  --out "$RESULTS/bench" --no-plots
cp "$RESULTS/bench/bench.md" "$RESULTS/bench.md" 2>/dev/null

echo >&2; cat "$RESULTS/summary.txt" >&2
! grep -q "^FAIL" "$RESULTS/summary.txt"
