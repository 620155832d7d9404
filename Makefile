# One set of entry points, used by people and by CI alike (.ci/run calls `make test`).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test lint protos check-protos bench clean

# Create the virtual environment and install FaceShield with its development tools.
$(STAMP): pyproject.toml clients/pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)

# The main job: protect the bundled sample portrait with the embedded default models.
demo: $(STAMP)
	mkdir -p out
	$(BIN)/faceshield protect assets/astronaut.png -o out/astronaut-protected.png

# The test suite (CPU only, no downloads).
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .

# Regenerate the gRPC stubs from protos/ (committed; a test fails when they drift).
protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py

check-protos: $(STAMP)
	$(BIN)/python scripts/gen_protos.py --check

bench: $(STAMP)
	$(BIN)/python benchmarks/engine_bench.py

clean:
	rm -rf $(VENV) out .pytest_cache
