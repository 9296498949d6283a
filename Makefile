# The two commands of the README: `make demo` and `make test`. Each sets itself up.
#
# Setup installs into a project virtual environment, .venv, unless one is already active:
# Debian 12, Ubuntu 24.04 and Raspberry Pi OS refuse `pip install` into the system Python
# (PEP 668, "externally-managed-environment"). The venv sees the system's site-packages, so what
# is already installed there (torch on a dev machine; python3-picamera2 from apt on a Pi) is
# reused, not downloaded again. PY is the Python that creates it.
PY ?= python3
ifneq ($(VIRTUAL_ENV),)
  VENV := $(VIRTUAL_ENV)
else
  VENV := $(CURDIR)/.venv
endif
VPY := $(VENV)/bin/python
export PATH := $(VENV)/bin:$(PATH)
# Where the demo finds images (Kaggle "ASL Alphabet" layout: train/<CLASS>/, test/<CLASS>/).
ASL_DATA ?= $(firstword $(wildcard ../shared/data/asl_alphabet) )
DEMO_OUT ?= demo_out
EXTRAS ?= train,test,plots

.PHONY: venv setup setup-runtime demo test default-model pi-check

# `python3 -m venv` needs Debian's python3-venv package; say so instead of failing obscurely.
$(VPY):
	@$(PY) -c "import venv, ensurepip" 2>/dev/null || { echo "error: $(PY) cannot create a virtual environment: \
	install it with 'sudo apt install python3-venv' (Debian, Ubuntu, Raspberry Pi OS), then run make again" >&2; exit 2; }
	$(PY) -m venv --system-site-packages $(VENV)

venv: $(VPY)

setup: $(VPY)
	$(VPY) -m pip install -q -e ".[$(EXTRAS)]"

# The runtime alone (onnxruntime, numpy, OpenCV, click): what a Raspberry Pi needs.
setup-runtime: $(VPY)
	$(VPY) -m pip install -q -e .

demo: setup
	ASL_DATA="$(ASL_DATA)" DEMO_OUT="$(DEMO_OUT)" PY="$(VPY)" bash scripts/demo.sh

test: setup
	$(VPY) -m pytest -q

# The shipped default model (runtime/models/default.onnx): seven image sources (Kaggle's signer, Roboflow's many
# people, two close-up signers, three people at a laptop webcam as videos) plus one more person's hand landmark rows,
# each image cropped to the hand asl-run's hand finder finds, up to 100 images (or frames, or rows) per class and
# source, weighted; EfficientNet-Lite0 with its last 5 blocks fine-tuned on cached augmented views (the scene's
# background, light and a far hand's resolution among them), plus the hand's landmarks and direction (late fusion,
# --landmarks); INT8 with pair-safe weights. Needs the data sets of
# ../shared/data (see runtime/models/MODEL_CARD.md). About 30 minutes on 2 idle CPU cores the first time (hand finder
# ~15 min, views 7 min, 6 epochs of ~2 min, export 3 min).
SHARED ?= ../shared/data
WEBCAM = $(SHARED)/webcam_recordings
DEFAULT_SOURCES = --data $(SHARED)/asl_alphabet/train --data $(SHARED)/roboflow_asl_letters/train \
	  --data $(SHARED)/t32rahman_closeup --data $(SHARED)/longhongvo23_handcrops \
	  --data $(WEBCAM)/gunsai75 --data $(WEBCAM)/lolzorus --data $(WEBCAM)/meyyappan --source-weights 1,2,3,2,2,2,2 \
	  --landmark-data $(SHARED)/borisgraudt_landmarks/landmarks.csv --landmark-weight 1
default-model: setup
	asl-train $(DEFAULT_SOURCES) --max-per-class 100 --arch efficientnet_lite0 \
	  --augment default,background,light,lowres --unfreeze 5 --epochs 6 --seed 0 --landmarks --landmark-geometry \
	  --out runs/default --force
	asl-export runs/default/best.ckpt --quantize int8 --calib-count 300
	cp runs/default/best.int8.onnx runtime/models/default.onnx
	# temperature fitted on signers it never saw (benchmarks/RESULTS.md, "The stranger speller")
	$(VPY) -m asl_edge.export.temperature runtime/models/default.onnx 2.78

# Emulated Raspberry Pi (Debian 12 arm64 under qemu): the runtime's aarch64 wheels on real images,
# compared with this machine. Needs root and apt; the arm64 root takes 15-50 min once (50 measured on busy cores), each run ~1 s per image and model; not part of CI.
PI_IMAGES ?= $(SHARED)/roboflow_asl_letters/train
pi-check:
	bash scripts/pi_check.sh $(PI_IMAGES)
