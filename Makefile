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

.PHONY: install lock test smoke test-slow lint format bench-env bench train clean distclean

install: $(STAMP)

# Re-runs whenever a requirements file, the lock or pyproject.toml changes. Versions are pinned
# by requirements-lock.txt (one set everywhere, CI included); the ranges allowed are in the
# requirements files. Then this project itself, editable (`import tetris_jax` from any folder;
# no dependencies: they are installed already). On a machine with an NVIDIA GPU
# (`nvidia-smi -L` succeeds) the CUDA 12 build of jax is installed as well.
$(STAMP): requirements.txt requirements-dev.txt requirements-cuda12.txt requirements-lock.txt \
		pyproject.toml
	test -x $(VPY) || $(PYTHON) -m venv $(VENV)
	$(VPY) -m pip install --upgrade pip
	$(VPY) -m pip install -r requirements-dev.txt -c requirements-lock.txt
	$(VPY) -m pip install --no-deps --no-build-isolation -e .
	if nvidia-smi -L >/dev/null 2>&1; then \
		$(VPY) -m pip install -r requirements-cuda12.txt -c requirements-lock.txt; \
	fi
	touch $@

# Regenerates requirements-lock.txt: the newest versions the requirements files allow, as a
# fresh venv of $(PYTHON) installs them (its comment lines are kept). Run the tests after.
LOCK_VENV := .lock-venv
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install -r requirements-dev.txt
	{ sed -n '/^#/!q;p' requirements-lock.txt; \
	  $(LOCK_VENV)/bin/python -m pip freeze --all --exclude pip; } > requirements-lock.txt.new
	mv requirements-lock.txt.new requirements-lock.txt
	rm -rf $(LOCK_VENV)

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
	rm -rf .pytest_cache .ruff_cache .hypothesis build dist $(LOCK_VENV)

distclean: clean
	rm -rf $(VENV)
