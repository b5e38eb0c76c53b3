#!/usr/bin/env bash
# `make test`: the whole suite twice, first on PostgreSQL + Redis started for the run on loopback
# (tests/services.py), then on the embedded defaults (SQLite, no server). Both runs always happen; the
# last line gives each one's result and time, and the exit status is non-zero when either failed.
# usage: scripts/test.sh PYTHON [PYTEST-ARGUMENTS...]
set -uo pipefail
cd "$(dirname "$0")/.."
python=${1:?usage: scripts/test.sh PYTHON [PYTEST-ARGUMENTS...]}
shift

outcome() { [ "$1" -eq 0 ] && echo "passed" || echo "FAILED (exit status $1)"; }

echo "=== make test: the suite on PostgreSQL + Redis ==="
start=$SECONDS
"$python" -m tests.services -- "$python" -m pytest "$@"
postgres_status=$? postgres_seconds=$((SECONDS - start))

echo "=== make test: the suite on SQLite ==="
start=$SECONDS
# The embedded default: nothing from the shell may point the run elsewhere.
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL "$python" -m pytest "$@"
sqlite_status=$? sqlite_seconds=$((SECONDS - start))

echo "=== make test: PostgreSQL + Redis $(outcome $postgres_status) in ${postgres_seconds} s;" \
  "SQLite $(outcome $sqlite_status) in ${sqlite_seconds} s ==="
[ "$postgres_status" -eq 0 ] && [ "$sqlite_status" -eq 0 ]
