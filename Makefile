# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv with the pinned packages first.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-out

.PHONY: install demo test lint typecheck pytest bench bench-engine bench-import bench-export bench-analyze bench-live bench-inbox bench-api bench-web clean

$(STAMP): pyproject.toml tests/oracles.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed (set PYTHON=/path/to/python3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,postgres]'
	$(BIN)/pip install --quiet --no-deps -r tests/oracles.txt
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/herald demo --out $(DEMO_OUT)
	$(BIN)/herald demo --channel whatsapp --out $(DEMO_OUT)/whatsapp

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest

test: lint typecheck pytest

# Figures, not tests: each script prints its figure next to the reference it is compared with.
bench: bench-engine bench-import bench-export bench-analyze bench-live bench-inbox bench-api

bench-engine: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py

bench-import: $(STAMP)
	$(BIN)/python benchmarks/bench_import.py

bench-export: $(STAMP)
	$(BIN)/python benchmarks/bench_export.py

bench-analyze: $(STAMP)
	$(BIN)/python benchmarks/bench_analyze.py

# The live system as real processes on 127.0.0.1 (herald serve, workers, the fake agent); needs the PostgreSQL
# server of the tests (HERALD_BENCH_POSTGRES_URL, default postgres@127.0.0.1:5432).
bench-live: $(STAMP)
	$(BIN)/python benchmarks/bench_live.py

bench-inbox: $(STAMP)
	$(BIN)/python benchmarks/bench_inbox.py

bench-api: $(STAMP)
	$(BIN)/python benchmarks/bench_api.py

# Render time of the console's campaign list and campaign tabs with 100,000 contacts (p50/p99 over 50 loads).
bench-web: $(STAMP)
	$(BIN)/python benchmarks/bench_web.py

clean:
	rm -rf $(VENV) $(DEMO_OUT) .pytest_cache .mypy_cache .ruff_cache
