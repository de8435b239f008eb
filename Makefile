# Two commands on a fresh machine:  `make demo`  and  `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
EXTRAS := train,jax,notebooks,dev
# The demo needs less (no JAX, pytest or ruff): `make demo` on a fresh clone installs only that,
# and `make test` adds the rest to the same venv.
DEMO_STAMP := $(VENV)/.installed-demo
DEMO_EXTRAS := train,notebooks

.PHONY: demo test lint format venv clean-venv gpu-venv

venv: $(STAMP)

# The venv (created when missing) with aslfr and the extras $(1).
# --no-compile: Python compiles what it imports on first use; compiling every file of
# TensorFlow up front adds about 8 s to a fresh install and nothing to a run.
define install
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e ".[$(1)]"
endef

$(STAMP): pyproject.toml
	$(call install,$(EXTRAS))
	touch $(STAMP) $(DEMO_STAMP)

$(DEMO_STAMP): pyproject.toml
	$(call install,$(DEMO_EXTRAS))
	touch $(DEMO_STAMP)

# Synthetic dataset (data/synthetic-demo, written again only when configs/demo.yaml's synth
# settings change) + notebooks 01 -> 02 -> 03 (outputs/demo).
demo: $(DEMO_STAMP)
	$(BIN)/aslfr demo --config configs/demo.yaml

test: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	KERAS_BACKEND=tensorflow $(BIN)/python -m pytest -q --durations=10

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean-venv:
	rm -rf $(VENV)

# A machine with an NVIDIA GPU: the same venv with JAX's CUDA build (train with --backend jax).
gpu-venv: $(STAMP)
	$(BIN)/python -m pip install -q -e ".[train,gpu,notebooks,dev]"
	$(BIN)/aslfr doctor

# The oldest TensorFlow, Keras and JAX aslfr supports (.ci/oldest-supported.txt), for .ci/oldest.
OLDEST_VENV := .venv-oldest
OLDEST_STAMP := $(OLDEST_VENV)/.installed

.PHONY: oldest-venv

oldest-venv: $(OLDEST_STAMP)

$(OLDEST_STAMP): pyproject.toml .ci/oldest-supported.txt
	test -x $(OLDEST_VENV)/bin/python || $(PYTHON) -m venv $(OLDEST_VENV)
	$(OLDEST_VENV)/bin/python -m pip install -q --upgrade pip
	$(OLDEST_VENV)/bin/python -m pip install -q -e ".[$(EXTRAS)]" -c .ci/oldest-supported.txt
	touch $(OLDEST_STAMP)

# MediaPipe's video environment (`aslfr extract`, `aslfr predict VIDEO`): its own venv, because
# mediapipe 0.10.21 pins numpy<2 and protobuf<5 while TensorFlow 2.21 needs protobuf>=6.31.
# requirements-video.txt pins every package, so it installs with --no-deps (see its header);
# --no-compile because byte-compiling all of matplotlib, pandas and mediapipe doubles the time.
VIDEO_VENV := .venv-video
VIDEO_STAMP := $(VIDEO_VENV)/.installed

.PHONY: video-env

video-env: $(VIDEO_STAMP)

$(VIDEO_STAMP): requirements-video.txt pyproject.toml
	test -x $(VIDEO_VENV)/bin/python || $(PYTHON) -m venv $(VIDEO_VENV)
	$(VIDEO_VENV)/bin/python -m pip install -q --no-deps --no-compile -r requirements-video.txt
	$(VIDEO_VENV)/bin/python -m pip install -q --no-deps -e .
	touch $(VIDEO_STAMP)
