# Build, test and run entry points. `make test` creates .venv and installs everything itself.

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Two xdist workers: CI has 2 cores. A fixed count (not -n auto) also keeps a many-core GPU
# machine from starting one JAX process per core, each compiling and reserving GPU memory.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?=
ARGS ?=

.PHONY: install test smoke test-slow lint format bench-env bench train clean distclean

install: $(STAMP)

# Re-runs whenever a requirements file changes. On a machine with an NVIDIA GPU
# (`nvidia-smi -L` succeeds) the CUDA 12 build of jax is installed as well.
$(STAMP): requirements.txt requirements-dev.txt requirements-cuda12.txt
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -r requirements-dev.txt
	if nvidia-smi -L >/dev/null 2>&1; then \
		$(VPY) -m pip install -r requirements-cuda12.txt; \
	fi
	touch $@

# --dist loadfile: each test file runs in one worker, so its cached compiled env functions are
# compiled once (XLA compiles dominate the suite on a CPU).
# pytest's exit code is passed through unchanged (5 = no tests collected is a failure).
test: $(STAMP)
	$(VPY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile --durations=15 $(PYTEST_ARGS)

# The debug config end to end (about a minute on 2 cores): train experiments/debug.py into
# runs/smoke from scratch, then evaluate a few games (cap 30 pieces, as its checkpoint
# evaluations, so the random baseline shows on runs/smoke/dashboard.png).
smoke: $(STAMP)
	rm -rf runs/smoke
	$(VPY) -m experiments.train --config=experiments/debug.py --workdir=runs/smoke
	$(VPY) -m experiments.evaluate --workdir=runs/smoke --episodes=8 --max_pieces=30 \
		--baselines=random --gif_frames=40

test-slow: $(STAMP)
	$(VPY) -m pytest -n $(PYTEST_WORKERS) --dist loadfile -m slow $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: $(STAMP)
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-env: $(STAMP)
	$(VPY) -m experiments.benchmark --what=env

bench: $(STAMP)
	$(VPY) -m experiments.benchmark

train: $(STAMP)
	$(VPY) -m experiments.train --config=experiments/lines_only.py $(ARGS)

clean:
	find . -path ./$(VENV) -prune -o -type d \
		\( -name __pycache__ -o -name '*.egg-info' \) -print0 | xargs -0 rm -rf
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist

distclean: clean
	rm -rf $(VENV)
