# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PY ?= python3
# Where the demo finds images (Kaggle "ASL Alphabet" layout: train/<CLASS>/, test/<CLASS>/).
ASL_DATA ?= $(firstword $(wildcard ../shared/data/asl_alphabet) )
DEMO_OUT ?= demo_out

.PHONY: setup demo test default-model

setup:
	$(PY) -m pip install -q -e ".[train,test,plots]"

demo: setup
	ASL_DATA="$(ASL_DATA)" DEMO_OUT="$(DEMO_OUT)" PY="$(PY)" bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q

# The shipped default model (runtime/models/default.onnx): Kaggle + Roboflow hands, EfficientNet-Lite0
# with its last 5 blocks fine-tuned on cached augmented views, INT8. Needs both data sets (see
# runtime/models/MODEL_CARD.md). About 20 minutes on 2 CPU cores.
SHARED ?= ../shared/data
default-model: setup
	asl-train --data $(SHARED)/asl_alphabet/train --data $(SHARED)/roboflow_asl_letters/train \
	  --source-weights 1,4 --arch efficientnet_lite0 --augment default --unfreeze 5 --epochs 12 --seed 0 \
	  --out runs/default
	asl-export runs/default/best.ckpt --quantize int8 --calib-count 300
	cp runs/default/best.int8.onnx runtime/models/default.onnx
