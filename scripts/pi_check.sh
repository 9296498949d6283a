#!/usr/bin/env bash
# make pi-check: the torch-free runtime on an emulated Raspberry Pi (Debian 12 "bookworm" arm64, the
# userland of Raspberry Pi OS 64-bit, under qemu-user), compared image by image with this x86 machine.
#
#   bash scripts/pi_check.sh IMAGES_DIR [IMAGES_DIR ...]       (as root, on x86-64 Debian/Ubuntu)
#
# Builds the arm64 root once with mmdebstrap (15-50 min, cached in $PI_DIR), pip-installs the runtime
# there (aarch64 wheels of onnxruntime, numpy, opencv-python-headless, click; never torch), runs
# `asl-run --json` with every model in MODELS on both sides and writes $PI_DIR/results/compare.txt:
# top-1 agreement and probability differences of each arm64 run against the same file on x86 and
# against the x86 run of the last model in MODELS (the reference: put the FP32 file last). Emulated speed means nothing (~1.8 s per image).
#
# Environment: PI_DIR (/var/tmp/asl-pi), MODELS ("default runs/default/best.onnx": "default" is the
# shipped INT8 model; missing files are skipped), PI_CPU (cortex-a76 = Pi 5; cortex-a72 = Pi 4, no
# dot product), EVERY (take every N-th image, 5), THREADS (2), ROI (full, or hand), REBUILD=1 (new root), REINSTALL=1,
# LOOP=0 (skip the camera loop), LOOP_VIDEO (the demo clip), LOOP_FRAMES (120), LOOP_HANDS ("full-int8 full"),
# ENROLL=0 (skip asl-enroll, which needs 4+ images with a hand per letter in the first folder), ENROLL_CLASSES (A,B,C,D,E),
# ASL_EDGE_RUN_LIMIT_S (asl-run's 120 s guard on one inference: raise it when the machine is busy, qemu is slow).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)
die() { echo "error: pi-check: $*" >&2; exit 2; }
log() { echo "[pi-check $(date +%H:%M:%S)] $*" >&2; }

[[ $# -ge 1 ]] || die "usage: $0 IMAGES_DIR [IMAGES_DIR ...]"
[[ $(id -u) -eq 0 ]] || die "run as root (mmdebstrap, chroot and mounts need it)"
PI_DIR=${PI_DIR:-/var/tmp/asl-pi}
ROOT=$PI_DIR/rootfs
OUT=$PI_DIR/results
MODELS=${MODELS:-"default runs/default/best.onnx"}
PI_CPU=${PI_CPU:-cortex-a76}
EVERY=${EVERY:-5}
THREADS=${THREADS:-2}
ROI=${ROI:-full}  # hand: the hand finder too (slower emulated), so a landmark model gets landmarks
X86_PY=${X86_PY:-$REPO/.venv/bin/python}
[[ -x $X86_PY ]] || X86_PY=$(command -v python3)
"$X86_PY" -c "import asl_edge.runtime" 2>/dev/null || die "asl-edge is not installed for $X86_PY (run make setup-runtime)"
mkdir -p "$OUT"

# --- tools and binfmt: arm64 ELF files run through qemu-aarch64-static ---
if ! command -v mmdebstrap >/dev/null || ! command -v qemu-aarch64-static >/dev/null; then
  log "installing mmdebstrap qemu-user-static binfmt-support (apt)"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q mmdebstrap qemu-user-static binfmt-support >/dev/null \
    || die "apt-get install mmdebstrap qemu-user-static binfmt-support failed"
fi
[[ -e /proc/sys/fs/binfmt_misc/register ]] || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc \
  || die "cannot mount binfmt_misc (in a container, run with --privileged)"
[[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] || update-binfmts --enable qemu-aarch64 \
  || die "cannot register qemu-aarch64 with binfmt_misc"

# --- the arm64 root, once ---
if [[ ! -x $ROOT/usr/bin/python3 || ${REBUILD:-0} == 1 ]]; then
  # the same Debian mirror this host's apt uses (no address is stored here)
  MIRROR=$({ cat /etc/apt/sources.list 2>/dev/null; cat /etc/apt/sources.list.d/* 2>/dev/null; } \
    | grep -oE 'https?://[^ ]+/debian/?( |$)' | head -1 | tr -d ' ')
  [[ -n $MIRROR ]] || die "no Debian mirror in /etc/apt/sources.list*"
  log "building the arm64 root in $ROOT from $MIRROR (15-50 min, once)"
  rm -rf "$ROOT"; mkdir -p "$PI_DIR"
  nice mmdebstrap --arch=arm64 --variant=apt --include=python3,python3-venv,python3-pip,ca-certificates \
    bookworm "$ROOT" "deb $MIRROR bookworm main" > "$OUT/mmdebstrap.log" 2>&1 \
    || { tail -20 "$OUT/mmdebstrap.log" >&2; die "mmdebstrap failed (log: $OUT/mmdebstrap.log)"; }
fi

MOUNTS=()
cleanup() { local i; for ((i=${#MOUNTS[@]}-1; i>=0; i--)); do umount "${MOUNTS[i]}" 2>/dev/null || umount -l "${MOUNTS[i]}" || true; done; }
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM
# /proc and /dev only: with /sys too, onnxruntime's cpuinfo reads the host's x86 /proc/cpuinfo
# through qemu and segfaults on import; without it the CPU features come from the emulated CPU.
mount -t proc proc "$ROOT/proc" && MOUNTS+=("$ROOT/proc")
mount --bind /dev "$ROOT/dev" && MOUNTS+=("$ROOT/dev")
cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf"
[[ -f /etc/pip.conf ]] && cp /etc/pip.conf "$ROOT/etc/pip.conf"
if [[ -d /etc/xdg/pip ]]; then mkdir -p "$ROOT/etc/xdg"; rm -rf "$ROOT/etc/xdg/pip"; cp -r /etc/xdg/pip "$ROOT/etc/xdg/"; fi
[[ -f /etc/ssl/certs/ca-certificates.crt ]] && cp /etc/ssl/certs/ca-certificates.crt "$ROOT/etc/ssl/certs/"
in_root() { nice chroot "$ROOT" /usr/bin/env -i HOME=/root LANG=C.UTF-8 QEMU_CPU="$PI_CPU" \
  PATH=/opt/venv/bin:/usr/bin:/bin PIP_DISABLE_PIP_VERSION_CHECK=1 /bin/bash -c "$*"; }

# --- the runtime, as a Pi user installs it: a venv (PEP 668) and `pip install .` ---
rm -rf "$ROOT/opt/asl-edge"; mkdir -p "$ROOT/opt/asl-edge" "$ROOT/opt/models"
git ls-files -z | tar --null -T - -cf - | tar -C "$ROOT/opt/asl-edge" -xf -
if [[ ! -x $ROOT/opt/venv/bin/asl-run || ${REINSTALL:-0} == 1 ]]; then
  log "pip install of the runtime in the arm64 root (4-6 min)"
  rm -rf "$ROOT/opt/venv"
  in_root "python3 -m venv /opt/venv && pip install /opt/asl-edge" > "$OUT/pip.log" 2>&1 \
    || { tail -20 "$OUT/pip.log" >&2; die "pip install in the arm64 root failed (log: $OUT/pip.log)"; }
else
  in_root "pip install --no-deps --force-reinstall /opt/asl-edge" > "$OUT/pip.log" 2>&1 || die "pip reinstall failed"
fi
in_root "python -c 'import torch'" 2>/dev/null && die "torch is importable in the runtime venv: it must not be"
in_root "python -c 'from asl_edge.common.cpu import int8_isa; import onnxruntime as o; print(int8_isa(), o.__version__)'" \
  2>/dev/null | tee "$OUT/arm_cpu.txt" >&2

# --- images: every EVERY-th file, class folders kept, the same copies for both sides ---
rm -rf "$ROOT/data"; mkdir -p "$ROOT/data"
for dir in "$@"; do
  [[ -d $dir ]] || die "images folder not found: $dir"
  name=$(basename "$(realpath "$dir")")
  mkdir -p "$ROOT/data/$name"
  (cd "$dir" && find -L . -type f | LC_ALL=C sort | awk -v e="$EVERY" '(NR-1)%e==0' | tar -h -cf - -T -) \
    | tar -C "$ROOT/data/$name" -xf -
done
log "images: $(find "$ROOT/data" -type f | wc -l) files"

# --- runs: every model on both sides, region as ROI says, every class's probability ---
ARGS="--json --threads $THREADS --top-k 1000 --roi $ROI"
names=()
for model in $MODELS; do
  if [[ $model == default ]]; then src=$("$X86_PY" -c "from asl_edge.runtime.model import DEFAULT_MODEL as m; print(m)")
  else src=$model; fi
  [[ -f $src ]] || { log "skipping $model (not found)"; continue; }
  tag=$(basename "$src" .onnx); names+=("$tag")
  cp "$src" "$ROOT/opt/models/$tag.onnx"
  log "arm64 ($PI_CPU, emulated): $tag"
  in_root "cd /data && asl-run /data --model /opt/models/$tag.onnx $ARGS" > "$OUT/arm_$tag.jsonl" 2> "$OUT/arm_$tag.log" \
    || { tail -5 "$OUT/arm_$tag.log" >&2; die "asl-run failed on arm64 for $tag"; }
  log "x86: $tag"
  (cd "$ROOT/data" && "$X86_PY" -m asl_edge.runtime.cli "$ROOT/data" --model "$ROOT/opt/models/$tag.onnx" $ARGS) \
    > "$OUT/x86_$tag.jsonl" 2> "$OUT/x86_$tag.log" || die "asl-run failed on x86 for $tag"
done
[[ ${#names[@]} -gt 0 ]] || die "no model to check"
"$X86_PY" scripts/compare_runs.py "$OUT" "${names[@]}" | tee "$OUT/compare.txt"

# --- enrollment on the device: asl-enroll from the first images folder, then asl-run --profile ---
# (ENROLL=0 skips it; ENROLL_CLASSES bounds the emulated time.) Both sides enroll from the same copies;
# the profiles' prototypes and the profiled runs are compared like the models above.
if [[ ${ENROLL:-1} == 1 && " ${names[*]} " == *" default "* ]]; then
  first=$(basename "$(realpath "$1")")
  CLASSES=${ENROLL_CLASSES:-A,B,C,D,E}
  EARGS="--data /data/$first --classes $CLASSES --model /opt/models/default.onnx"
  log "arm64: asl-enroll ($CLASSES) and asl-run --profile"
  in_root "asl-enroll $EARGS --out /opt/models/me.npz" > "$OUT/arm_enroll.log" 2>&1 \
    || { tail -5 "$OUT/arm_enroll.log" >&2; die "asl-enroll failed on arm64 (ENROLL=0 skips this step)"; }
  # the profile applies on frames with a hand only: this run finds the hand whatever ROI says
  PARGS="--json --threads $THREADS --top-k 1000 --roi hand"
  in_root "cd /data && asl-run /data/$first --model /opt/models/default.onnx --profile /opt/models/me.npz $PARGS" \
    > "$OUT/arm_profile.jsonl" 2> "$OUT/arm_profile.log" || die "asl-run --profile failed on arm64"
  log "x86: asl-enroll and asl-run --profile"
  "$X86_PY" -m asl_edge.runtime.enroll --data "$ROOT/data/$first" --classes "$CLASSES" \
    --model "$ROOT/opt/models/default.onnx" --out "$OUT/x86_me.npz" > "$OUT/x86_enroll.log" 2>&1 \
    || die "asl-enroll failed on x86"
  (cd "$ROOT/data" && "$X86_PY" -m asl_edge.runtime.cli "$ROOT/data/$first" --model "$ROOT/opt/models/default.onnx" \
    --profile "$OUT/x86_me.npz" $PARGS) > "$OUT/x86_profile.jsonl" 2> "$OUT/x86_profile.log" || die "asl-run --profile failed on x86"
  cp "$ROOT/opt/models/me.npz" "$OUT/arm_me.npz"
  "$X86_PY" - "$OUT" <<'PY' | tee -a "$OUT/compare.txt"
import sys
from pathlib import Path
import numpy as np
from asl_edge.runtime.profile import Profile
out = Path(sys.argv[1])
a, b = Profile.load(out / "arm_me.npz"), Profile.load(out / "x86_me.npz")
ta, tb = a.check["temperature"], b.check["temperature"]  # chosen on a few check frames: a near tie may go either way
same = a.weights.shape == b.weights.shape
print(f"profiles: classes {a.classes == b.classes}, frames per class arm {a.counts} x86 {b.counts}, "
      f"temperature {ta:g} / {tb:g}, base weight {a.base_weight} / {b.base_weight}, max |prototype diff| "
      f"{np.abs(a.weights / ta - b.weights / tb).max() if same else 'shapes differ'}")
PY
  "$X86_PY" scripts/compare_runs.py "$OUT" profile | tee -a "$OUT/compare.txt"
fi

# --- the camera loop: asl-run --camera on a video, the shipped model, each hand landmark model in LOOP_HANDS,
# overlapped (the hand finder of frame t+1 beside the classifier of frame t), and the first hand model also
# taking turns with the classifier on 2 threads (a live camera's way), on both sides: the same letters and
# the same typed text, frame by frame.
if [[ ${LOOP:-1} == 1 && " ${names[*]} " == *" default "* ]]; then
  video=${LOOP_VIDEO:-scripts/demo_clip/hello_lolzorus.mp4}
  [[ -f $video ]] || die "LOOP_VIDEO not found: $video"
  cp "$video" "$ROOT/opt/models/loop.${video##*.}"
  hand_list=(${LOOP_HANDS:-full-int8 full})
  runs=()
  for hands in "${hand_list[@]}"; do runs+=("$hands:overlapped"); done
  runs+=("${hand_list[0]}:taking-turns")
  for run in "${runs[@]}"; do
    hands=${run%%:*} mode=${run#*:}
    if [[ $mode == overlapped ]]; then margs="--overlap --threads 1"; else margs="--no-overlap --threads 2"; fi
    LARGS="--no-display --json $margs --max-frames ${LOOP_FRAMES:-120}"
    log "camera loop, hand model $hands, $mode: arm64 (emulated), then x86"
    in_root "asl-run --camera /opt/models/loop.${video##*.} --model /opt/models/default.onnx --hand-model $hands $LARGS" \
      > "$OUT/arm_loop_${hands}_$mode.jsonl" 2> "$OUT/arm_loop_${hands}_$mode.log" \
      || { tail -5 "$OUT/arm_loop_${hands}_$mode.log" >&2; die "asl-run --camera failed on arm64 ($hands, $mode)"; }
    "$X86_PY" -m asl_edge.runtime.cli --camera "$ROOT/opt/models/loop.${video##*.}" --model "$ROOT/opt/models/default.onnx" \
      --hand-model "$hands" $LARGS > "$OUT/x86_loop_${hands}_$mode.jsonl" 2> "$OUT/x86_loop_${hands}_$mode.log" \
      || die "asl-run --camera failed on x86 ($hands, $mode)"
    "$X86_PY" - "$OUT" "${hands}_$mode" <<'PY' | tee -a "$OUT/compare.txt"
import json, sys
from pathlib import Path
out, run = Path(sys.argv[1]), sys.argv[2]
arm, x86 = ([json.loads(l) for l in (out / f"{side}_loop_{run}.jsonl").read_text().splitlines() if l.startswith("{")]
            for side in ("arm", "x86"))
n = min(len(arm), len(x86))
same = sum(a["label"] == b["label"] for a, b in zip(arm, x86))
found = sum((a.get("hand") is not None) == (b.get("hand") is not None) for a, b in zip(arm, x86))
print(f"camera loop ({run}): {len(arm)} arm64 / {len(x86)} x86 frames; top-1 the same on {same}/{n}, "
      f"hand found on both or neither {found}/{n}; typed arm64 {arm[-1]['text']!r}, x86 {x86[-1]['text']!r}")
PY
  done
fi
