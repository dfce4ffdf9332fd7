#!/usr/bin/env bash
# Sets up a Debian machine, builds, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
# Use the system Python: python3-lmdb is a Debian package.
export PATH=/usr/bin:$PATH
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
