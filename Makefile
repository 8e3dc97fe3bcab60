# Two commands on a fresh machine (Python 3 and make, nothing else):
#   make demo   - the main job, offline, no API key
#   make test   - every test, plus ruff and mypy
# Both create and fill .venv themselves, and do nothing more when it is already current.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint typecheck unit venv clean bench

venv: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m qwen_ocr.demo
	$(BIN)/python -m langchain_qwen_ocr.demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest
	env -u DASHSCOPE_API_KEY $(BIN)/python -m pytest --nbmake --nbmake-timeout=300 notebooks/

test: lint typecheck unit

# Not part of `make test`: about 15 minutes of measurements (old and new code side by side), written to
# benchmarks/PERFORMANCE.md; `python benchmarks/bench_performance.py --sections 1,2 --update` re-runs some of them.
bench: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[all,dev,bench]"
	$(BIN)/python benchmarks/bench_performance.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
