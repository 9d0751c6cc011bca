# The two commands of the README: `make demo` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export GRADIO_ANALYTICS_ENABLED := False
export TOKENIZERS_PARALLELISM := false

.PHONY: install demo test lint browser

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -U pip
	# torch first, pinned: an open torch requirement would pull the CUDA build.
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# make demo: the whole chain on the bundled sample (train the tiny models, generate, report; a rerun reuses
# what is done), then the app on http://127.0.0.1:$(PORT). make demo SERVE=0: the chain only.
# make demo BASE=micro: the generator on the ~1M-parameter LM pretrained here (output in runs/quickstart-micro).
SERVE ?= 1
PORT ?= 7860
# the generator's base: gemma-270m (Gemma 3 270M from PyPI with the shipped LoRA adapter) or micro
BASE ?= gemma-270m
DEMO_OUT ?= runs/quickstart$(if $(filter-out gemma-270m,$(BASE)),-$(BASE))
demo: $(STAMP)
	$(BIN)/hllm-creator quickstart --base $(BASE) --out $(DEMO_OUT) --no-serve
ifneq ($(SERVE),0)
	$(BIN)/hllm-creator demo --artifacts $(DEMO_OUT)/artifacts --no-train --host 127.0.0.1 --port $(PORT)
endif

browser:
	@scripts/install_browser.sh

test: $(STAMP) browser
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check .
