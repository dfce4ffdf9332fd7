#!/usr/bin/env bash
# Sets up a Debian machine, builds, and runs every test: the ctest suite, the
# bounded fuzz runs (scripts/fuzz.sh), then the unit and multi-node tests
# under ASan+UBSan and under TSan (scripts/sanitize.sh). FUZZ=0 skips the
# fuzzing, SANITIZE= (or a subset such as SANITIZE=address) the sanitizers.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh
BUILD_DIR=${BUILD_DIR:-build}
# Use the system Python: python3-lmdb is a Debian package.
export PATH=/usr/bin:$PATH
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" "$@"
if [ "${FUZZ:-1}" != 0 ]; then
  bash scripts/fuzz.sh
fi
for mode in ${SANITIZE-address thread}; do
  bash scripts/sanitize.sh "$mode"
done
