# Set-up and the two main jobs. Everything a fresh machine needs is installed here.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# torch: installed only when none is importable; override with TORCH_SPEC (e.g. "torch==2.14.1"
# for a CUDA build) or TORCH_SPEC=skip to leave it alone.
TORCH_SPEC ?= torch==2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup test lint demo serve clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel versioneer
	@if [ "$(TORCH_SPEC)" != "skip" ] && ! $(BIN)/python -c "import torch" 2>/dev/null; then \
		echo "installing $(TORCH_SPEC)"; $(BIN)/python -m pip install -q "$(TORCH_SPEC)"; fi
	$(BIN)/python -m pip install -q numpy
	@# pyradiomics ships only an sdist that fails under build isolation on Python >= 3.10
	$(BIN)/python -c "import radiomics" 2>/dev/null || \
		$(BIN)/python -m pip install -q --no-build-isolation "pyradiomics>=3.0.1"
	$(BIN)/python -m pip install -q -e ".[dev,postgres,ray]"
	@touch $(STAMP)

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .  # the tree is kept in ruff's format (`ruff format .` fixes it)
	$(BIN)/python -m mypy  # packages listed in [tool.mypy] files

# Modules that touch the database (marked `postgres` in tests/conftest.py) run a second time
# against a real PostgreSQL server.

test: setup lint
	@bash scripts/system-deps.sh
	$(BIN)/python -m pytest -q
	@url=$$(bash scripts/postgres-test-server.sh) || { echo "PostgreSQL test server unavailable"; \
		[ -z "$$CI" ] || exit 1; exit 0; }; \
	echo "== database tests against PostgreSQL ($$url) =="; \
	TURINGCT_TEST_POSTGRES_URL=$$url $(BIN)/python -m pytest -q \
		-m "postgres and not browser and not slow"

demo: setup
	$(BIN)/turingct demo

serve: setup
	$(BIN)/turingct serve

clean:
	rm -rf $(VENV) .pytest_cache
