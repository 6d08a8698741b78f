# Two commands: `make demo` runs the pipeline on a synthetic plate, `make test` runs the tests.
# Both create .venv on first use. torch is installed first, pinned, so that pip does not pull
# a multi-GB CUDA build on a CPU machine (override TORCH_SPEC on a GPU machine).

PYTHON ?= python3
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CONFIG ?= configs/demo.yaml

.PHONY: demo test lint format venv clean-demo image

venv: $(STAMP)

$(STAMP): setup.cfg pyproject.toml scripts/install.sh
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	scripts/install.sh $(BIN)/python --torch "$(TORCH_SPEC)" --extras all,dev --editable
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python jobs/submit.py --config $(CONFIG) --stage all

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

image: $(STAMP)
	containers/build-image.sh $(BIN)/python

clean-demo:
	rm -rf results/demo
