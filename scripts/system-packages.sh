#!/usr/bin/env bash
# Install the system programs the test suite uses, when missing, from Debian's packages:
# Chromium (browser tests, driven by Playwright), OpenSSL (an independent judge of certificates),
# Redis (the broker of the PostgreSQL + Redis run and of the scheduler tests' worker and beat processes)
# and PostgreSQL (the database of that run; tests/support/processes.py starts a throw-away cluster of its
# own, so the package's own cluster is not used).
set -euo pipefail
declare -A package_of=([chromium]=chromium [openssl]=openssl [redis-server]=redis-server)
missing=()
for program in "${!package_of[@]}"; do
  command -v "$program" >/dev/null 2>&1 || missing+=("${package_of[$program]}")
done
# Debian keeps PostgreSQL's server programs off PATH, in /usr/lib/postgresql/VERSION/bin.
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null && ! command -v initdb >/dev/null 2>&1; then
  missing+=(postgresql)
fi
[ ${#missing[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null 2>&1; then
  echo "Install these first (no apt-get here): ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing ${missing[*]} with apt-get..."
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
