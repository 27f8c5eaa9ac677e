# Two commands do all the set-up: `make demo` (the main job) and `make test` (the whole test suite).
# Both create .venv/ and install stanlib with its dev extras on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: demo test test-unit test-notebooks install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/stanlib demo

test: $(STAMP)
	$(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider --durations=15

test-unit: $(STAMP)
	$(BIN)/python -m pytest tests -q

test-notebooks: $(STAMP)
	$(BIN)/python -m pytest notebooks --nbval-lax --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg

clean:
	rm -rf $(VENV) runs .pytest_cache
