#!/usr/bin/env bash
# `make test`: two pytest runs at the same time, each printing its slowest tests:
# - the tests whose outcome can depend on the database (`-m database`, marked in tests/conftest.py) on
#   PostgreSQL + Redis
#   started for the run on loopback (tests/support/processes.py), in the background, its output kept in
#   var/test-postgresql.log and printed when it ends;
# - the whole suite on the embedded defaults (SQLite, no server), in the foreground.
# What does not touch the database (the simulator, parsing, browser and process tests), or touches it only
# in passing (tests/conftest.py lists those modules), behaves the same on both, so it runs once, in the
# SQLite run. The two overlap because much of the SQLite run waits for
# processes it started (a portal, a worker, the simulator), which leaves a core free for the other.
# The last line gives each run's result and time; the exit status is non-zero when either failed.
# usage: scripts/test.sh PYTHON [PYTEST-ARGUMENTS...]
set -uo pipefail
cd "$(dirname "$0")/.."
# Bytecode is cached (__pycache__, ignored by git) even where the environment says not to: otherwise
# every pytest process rewrites and compiles all the test modules again (11 s of CPU against 4 s) and
# every process a test starts compiles what it imports.
unset PYTHONDONTWRITEBYTECODE
python=${1:?usage: scripts/test.sh PYTHON [PYTEST-ARGUMENTS...]}
shift
# pytest-xdist workers: the SQLite run has the long process tests, the PostgreSQL run has only short ones.
# Three workers on two cores: the process tests spend much of their time waiting for the processes they
# started, and a third worker fills those waits (measured on the same clone, idle machine: 244 s with
# three, 246 s with four, where the two cores are already busy all the time; 343 s with two, a run that
# also made the migrated templates, about 15 s).
sqlite_workers=(-n "${TEST_WORKERS:-3}")
# The PostgreSQL run in one process (no pytest-xdist controller, which would load Django for nothing): its
# tests mostly wait for PostgreSQL, so it uses about half a core beside the SQLite run.
postgres_workers=(-n "${TEST_POSTGRES_WORKERS:-0}")
durations=(--durations=15 --durations-min=1)
mkdir -p var
postgres_log=var/test-postgresql.log

outcome() { [ "$1" -eq 0 ] && echo "passed" || echo "FAILED (exit status $1)"; }

start=$SECONDS
# A fresh clone has no cached test modules yet: two processes make them first (pytest's assertion rewriting
# and compiling, each its half), rather than all four of the runs' pytest processes each doing it all.
if [ ! -d tests/__pycache__ ]; then
  collect=(env -u DATABASE_URL -u REDIS_URL "$python" -m pytest -q -p no:cacheprovider --collect-only)
  "${collect[@]}" tests/test_[a-l]*.py tests/e2e tests/mitid >/dev/null 2>&1 &
  "${collect[@]}" tests/test_[m-z]*.py tests/simulator >/dev/null 2>&1
  wait
fi
(
  "$python" -m tests.support.processes -- \
    "$python" -m pytest -m database "${postgres_workers[@]}" "${durations[@]}" "$@"
  echo "exit status $? after $((SECONDS - start)) s"
) >"$postgres_log" 2>&1 &
postgres_pid=$!
# Ctrl-C or a CI time-out stops the background run too (it stops its PostgreSQL and Redis on SIGTERM).
trap 'pkill -TERM -P $postgres_pid; kill $postgres_pid 2>/dev/null' EXIT

echo "=== make test: the tests that use the database run on PostgreSQL + Redis in the background ($postgres_log) ==="
echo "=== make test: the whole suite on SQLite ==="
# The embedded default: nothing from the shell may point the run elsewhere.
env -u DATABASE_URL -u REDIS_URL -u CELERY_BROKER_URL "$python" -m pytest "${sqlite_workers[@]}" "${durations[@]}" "$@"
sqlite_status=$? sqlite_seconds=$((SECONDS - start))

wait $postgres_pid
trap - EXIT
echo "=== make test: the tests that use the database, on PostgreSQL + Redis ($postgres_log) ==="
cat "$postgres_log"
last=$(tail -n 1 "$postgres_log")
postgres_status=${last#exit status } postgres_status=${postgres_status%% *}
[[ $postgres_status =~ ^[0-9]+$ ]] || postgres_status=1
# Arguments that select only tests which do not use the database leave the PostgreSQL run nothing to do
# (pytest's exit status 5); without arguments that would be a fault in the marking, so it fails.
[ "$postgres_status" -eq 5 ] && [ $# -gt 0 ] && postgres_status=0
postgres_seconds=${last##* after } postgres_seconds=${postgres_seconds%% *}

echo "=== make test: PostgreSQL + Redis $(outcome "$postgres_status") in ${postgres_seconds} s;" \
  "SQLite $(outcome $sqlite_status) in ${sqlite_seconds} s; side by side, $((SECONDS - start)) s in all ==="
[ "$postgres_status" -eq 0 ] && [ "$sqlite_status" -eq 0 ]
