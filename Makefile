# Thin wrapper: the two set-up commands of the README, plus the checks they are built from.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
PORT   ?= 8000
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: run test lint install bench

# Create the virtualenv with the pinned uv, then install exactly what uv.lock says, compiled to bytecode as
# pip would do (uv does not by default): each process then starts without compiling what it imports, which
# the first `make run` or `make test` would otherwise do in every process at once (about 5 s of CPU each).
$(VENV)/.synced: pyproject.toml uv.lock
	@test -x $(VENV)/bin/uv || ($(PYTHON) -m venv $(VENV) && $(VENV)/bin/pip install -q uv==0.13.9)
	$(VENV)/bin/uv sync --frozen --quiet --compile-bytecode
	@touch $@

install: $(VENV)/.synced

run: $(VENV)/.synced
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_superuser
	PORT=$(PORT) $(PY) -m trustview.run

# The tests that use the database on PostgreSQL + Redis started for the run (one process), beside the whole
# suite on SQLite (three pytest-xdist workers), side by side (scripts/test.sh); fails when either fails.
# `make test PYTEST_ARGS="-k readyz"` passes arguments to both pytest runs; TEST_WORKERS=0 runs in one process.
test: $(VENV)/.synced
	@scripts/system-packages.sh
	@scripts/test.sh $(PY) $(PYTEST_ARGS)

lint: $(VENV)/.synced
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports
	$(PY) manage.py makemigrations --check --dry-run

# The portal at BENCH_CERTIFICATES (default 100,000) on a throw-away PostgreSQL: a table of ratios against
# an empty page, and var/bench/*.json (docs/performance.md). A benchmark, not a test.
bench: $(VENV)/.synced
	@scripts/system-packages.sh
	$(PY) -m bench
