#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang) in their own build directory and
# runs the bounded fuzz tests: each replays its regressions, then fuzzes for
# TRLMDB_FUZZ_SECONDS (default 20) from a copy of its corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${FUZZ_BUILD_DIR:-build-fuzz}
CC=clang CXX=clang++ cmake -S fuzz -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$dir" -j"$(nproc)"
ctest --test-dir "$dir" -L fuzz --output-on-failure -j"$(nproc)" "$@"
