#!/usr/bin/env bash
# Install the system programs the test suite uses, when missing, from Debian's packages:
# Chromium (browser tests, driven by Playwright), OpenSSL (an independent judge of certificates) and
# Redis (the broker the scheduler tests run real worker and beat processes against).
set -euo pipefail
declare -A package_of=([chromium]=chromium [openssl]=openssl [redis-server]=redis-server)
missing=()
for program in "${!package_of[@]}"; do
  command -v "$program" >/dev/null 2>&1 || missing+=("${package_of[$program]}")
done
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
