# The two commands of the README: `make demo` and `make test`. Each sets itself up.
PY ?= python3
# Where the demo finds images (Kaggle "ASL Alphabet" layout: train/<CLASS>/, test/<CLASS>/).
ASL_DATA ?= $(firstword $(wildcard ../shared/data/asl_alphabet) )
DEMO_OUT ?= demo_out

.PHONY: setup demo test

setup:
	$(PY) -m pip install -q -e ".[train,test,plots]"

demo: setup
	ASL_DATA="$(ASL_DATA)" DEMO_OUT="$(DEMO_OUT)" PY="$(PY)" bash scripts/demo.sh

test: setup
	$(PY) -m pytest -q
