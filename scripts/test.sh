#!/usr/bin/env bash
# `make test`: first the tests that use the database (`-m database`, marked in tests/conftest.py) on
# PostgreSQL + Redis started for the run on loopback (tests/support/processes.py), then the whole suite on
# the embedded defaults (SQLite, no server). What does not touch the database (the simulator, parsing,
# browser and process tests) behaves the same on both, so it runs once, in the second run. Both runs
# always happen and print their slowest tests; the last line gives each one's result and time, and the
# exit status is non-zero when either failed.
# usage: scripts/test.sh PYTHON [PYTEST-ARGUMENTS...]
set -uo pipefail
cd "$(dirname "$0")/.."
python=${1:?usage: scripts/test.sh PYTHON [PYTEST-ARGUMENTS...]}
shift
# Two workers (pytest-xdist): much of a test's time is spent waiting for a process or the network.
workers=(-n "${TEST_WORKERS:-2}")
durations=(--durations=15 --durations-min=1)

outcome() { [ "$1" -eq 0 ] && echo "passed" || echo "FAILED (exit status $1)"; }

echo "=== make test: the tests that use the database, on PostgreSQL + Redis ==="
start=$SECONDS
"$python" -m tests.support.processes -- "$python" -m pytest -m database "${workers[@]}" "${durations[@]}" "$@"
postgres_status=$? postgres_seconds=$((SECONDS - start))

echo "=== make test: the whole suite on SQLite ==="
start=$SECONDS
# The embedded default: nothing from the shell may point the run elsewhere.
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL "$python" -m pytest "${workers[@]}" "${durations[@]}" "$@"
sqlite_status=$? sqlite_seconds=$((SECONDS - start))

echo "=== make test: PostgreSQL + Redis $(outcome $postgres_status) in ${postgres_seconds} s;" \
  "SQLite $(outcome $sqlite_status) in ${sqlite_seconds} s;" \
  "$((postgres_seconds + sqlite_seconds)) s in all ==="
[ "$postgres_status" -eq 0 ] && [ "$sqlite_status" -eq 0 ]
