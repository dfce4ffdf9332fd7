#!/usr/bin/env bash
# Bounded fuzz run, as CI does it (ctest -L fuzz):
#   run_fuzz.sh <fuzz binary> <corpus dir> <regressions dir> <seconds> [libFuzzer options...]
# Replays every reproducer in <regressions dir>, then fuzzes for <seconds> from
# a copy of <corpus dir> (the repository is never written). Fails on any
# crash, leak, timeout or violated property; the input that caused it is
# kept in ./fuzz-artifacts/ (the ctest's working directory: the build dir).
set -euo pipefail
if (($# < 4)); then
  echo "usage: $0 <fuzz binary> <corpus dir> <regressions dir> <seconds> [libFuzzer options...]" >&2
  exit 2
fi
bin=$1 corpus=$2 regressions=$3 seconds=$4
shift 4
name=$(basename "$bin")
work=$(mktemp -d "${TMPDIR:-/tmp}/trlmdb-$name-XXXXXX")
trap 'rm -rf "$work"' EXIT
artifacts="$PWD/fuzz-artifacts/$name"
mkdir -p "$work/corpus" "$artifacts"

# Symbolized stacks; every UBSan report is fatal (the build already makes it so).
export ASAN_OPTIONS=${ASAN_OPTIONS:-abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

if [ -d "$regressions" ]; then
  mapfile -t repros < <(find "$regressions" -type f ! -name '.*' ! -name '*.md' | sort)
  if ((${#repros[@]})); then
    echo "$name: replaying ${#repros[@]} reproducer(s) from $regressions"
    "$bin" -runs=1 "${repros[@]}"
  fi
fi

[ -d "$corpus" ] && cp -r "$corpus/." "$work/corpus/"
echo "$name: fuzzing for ${seconds}s from $(find "$work/corpus" -type f | wc -l) seed(s)"
status=0
"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=8192 \
  -print_final_stats=1 -artifact_prefix="$work/" "$@" "$work/corpus" || status=$?
if ((status != 0)); then
  shopt -s nullglob
  for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
    cp "$f" "$artifacts/"
    echo "$name: failing input kept as $artifacts/$(basename "$f")" >&2
  done
  echo "$name: FAILED (exit $status); reproduce with: $bin <that file>" >&2
  exit 1
fi
