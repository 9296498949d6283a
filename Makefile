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

# The shipped default model (runtime/models/default.onnx): four sources (Kaggle's signer, Roboflow's many
# people, two more signers), each cropped to the hand asl-run's hand finder finds, up to 100 images per
# class and source, weighted so each source counts about the same; EfficientNet-Lite0 with its last 5
# blocks fine-tuned on cached augmented views, plus the hand's landmarks and direction (late fusion, --landmarks); INT8
# with pair-safe weights. Needs the four data sets (see runtime/models/MODEL_CARD.md). About 15 minutes
# on 2 idle CPU cores (hand finder ~6 min the first time, views 3 min, 6 epochs of ~1 min, export 3 min).
SHARED ?= ../shared/data
DEFAULT_SOURCES = --data $(SHARED)/asl_alphabet/train --data $(SHARED)/roboflow_asl_letters/train \
	  --data $(SHARED)/t32rahman_closeup --data $(SHARED)/longhongvo23_handcrops
default-model: setup
	asl-train $(DEFAULT_SOURCES) --source-weights 1,2,3,2 --max-per-class 100 --arch efficientnet_lite0 \
	  --augment default --unfreeze 5 --epochs 6 --seed 0 --landmarks --out runs/default
	asl-export runs/default/best.ckpt --quantize int8 --calib-count 300
	cp runs/default/best.int8.onnx runtime/models/default.onnx
	# temperature fitted on signers it never saw (leave-one-source-out folds runs/lopo/zoom-loK; the model card)
	$(VPY) -m asl_edge.export.temperature runtime/models/default.onnx 2.78

# Emulated Raspberry Pi (Debian 12 arm64 under qemu): the runtime's aarch64 wheels on real images,
# compared with this machine. Needs root and apt; the arm64 root takes 15-50 min once (50 measured on busy cores), each run ~1 s per image and model; not part of CI.
PI_IMAGES ?= $(SHARED)/roboflow_asl_letters/train
pi-check:
	bash scripts/pi_check.sh $(PI_IMAGES)
