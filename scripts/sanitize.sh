#!/usr/bin/env bash
# Sanitizer runs (issue 4): builds the project with a sanitizer and runs the
# unit and multi-node tests (ctest labels unit and cluster) under it.
#
#   scripts/sanitize.sh address [ctest args...]   ASan + UBSan + LSan, in build-asan
#   scripts/sanitize.sh thread  [ctest args...]   TSan, in build-tsan
#
# SANITIZE_BUILD_DIR overrides the build directory. Only the targets those
# tests run are built (the whole project under a sanitizer would double CI's time).
#
# Every sanitizer report goes to a file in $BUILD_DIR/sanitizer-logs (log_path),
# not only to the failing process's stderr: a report from a process whose exit
# status no test looks at (a `trlmdb digest` polled by cluster.py, a node
# killed later, a forked child) still fails the run, and is printed at the end.
#
# Not run under sanitizers (see EXCLUDE below for the reasons):
#   cluster.lmdb_utils_and_python   python3 with the shim in LD_PRELOAD
#   cluster.memory_bound            measures RssAnon
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

mode=${1:-}
case "$mode" in
  address) default_dir=build-asan ;;
  thread) default_dir=build-tsan ;;
  *)
    echo "usage: $0 address|thread [ctest args...]" >&2
    exit 2
    ;;
esac
shift
BUILD_DIR=${SANITIZE_BUILD_DIR:-$default_dir}
case "$BUILD_DIR" in /*) ;; *) BUILD_DIR=$root/$BUILD_DIR ;; esac

# What the unit and cluster tests execute: the test programs, libtrlmdb.so,
# repl_node, the trlmdb command, and the dynamically linked mdb_load/mdb_dump
# of compat-tests/programs (cluster --utils-bin). Checked below against the
# commands ctest will run, so a new test whose program is missing here fails
# loudly instead of running a stale or absent binary.
targets=(
  trlmdb trlmdb_cli repl_node prog_mdb_load_real prog_mdb_dump_real
  format_test clock_test meta_test pending_test cursor_layout_test
  abi_bookkeeping_test abi_transparency_test abi_clock_test
  abi_bookkeeping_baseline abi_transparency_baseline
  repl_config_test reconcile_test repl_store_test repl_wire_test repl_handshake_test
)
labels='^(unit|cluster)$'

# Why each excluded test cannot run under a sanitizer.
exclude=(
  # python3 (not instrumented) with libtrlmdb.so (instrumented) in
  # LD_PRELOAD: the sanitizer runtime, a dependency of the shim, would come
  # after libc in the lookup order, so malloc & co. are not intercepted; ASan
  # refuses to start ("runtime does not come first"), TSan misses or
  # misreports. The shim's paths it drives are the ones repl_node drives in
  # the other cluster tests. (mdb_load/mdb_dump under LD_PRELOAD, as in
  # cluster.serve_and_conf_file, do run: they are built here with the
  # sanitizer, so its runtime is their first DT_NEEDED and precedes libc.)
  cluster.lmdb_utils_and_python
  # Compares RssAnon peaks with a 64 MiB bound: ASan's quarantine (256 MiB)
  # and shadow memory, TSan's shadow memory, make that figure meaningless.
  # Catch-up itself runs in cluster.catch_up and cluster.kill_restart.
  cluster.memory_bound
)
exclude_re="^($(IFS='|'; echo "${exclude[*]}" | sed 's/\./\\./g'))\$"

bash scripts/setup-debian.sh
start=$(date +%s)
cmake -S . -B "$BUILD_DIR" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTRLMDB_SANITIZE="$mode" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target "${targets[@]}"
built=$(date +%s)

# Every program a selected test runs must have been built by the targets above.
missing=$(ctest --test-dir "$BUILD_DIR" -N -L "$labels" -E "$exclude_re" --show-only=json-v1 |
  /usr/bin/python3 -c '
import json, os, sys
for t in json.load(sys.stdin)["tests"]:
    cmd = t.get("command") or []
    paths = [cmd[0]] if cmd and not cmd[0].endswith("python3") else []
    # cluster tests: the programs handed to test_cluster.py
    for flag in ("--node", "--lib", "--cli"):
        if flag in cmd:
            paths.append(cmd[cmd.index(flag) + 1])
    if "--utils-bin" in cmd:
        d = cmd[cmd.index("--utils-bin") + 1]
        paths += [os.path.join(d, "mdb_load"), os.path.join(d, "mdb_dump")]
    for p in paths:
        if not os.path.exists(p):
            print("%s: %s" % (t["name"], p))
')
if [ -n "$missing" ]; then
  echo "sanitize.sh: programs of selected tests were not built (add their targets):" >&2
  echo "$missing" >&2
  exit 1
fi

logs=$BUILD_DIR/sanitizer-logs
rm -rf "$logs"
mkdir -p "$logs"
# Suppressions (sanitizers/*.supp) are for code that is not ours only; each
# one says why.
supp() { [ -f "$root/sanitizers/$1.supp" ] && echo "$2suppressions=$root/sanitizers/$1.supp"; true; }
# verify_asan_link_order=0: in an instrumented program with the shim in
# LD_PRELOAD (cluster.serve_and_conf_file), the preloaded shim comes before
# libasan in the library list, which trips ASan's start-up check; libasan is
# still the program's first DT_NEEDED, so it precedes libc and intercepts.
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:verify_asan_link_order=0"
ASAN_OPTIONS+=":log_path=$logs/asan$(supp asan :)"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$logs/ubsan$(supp ubsan :)"
export LSAN_OPTIONS="$(supp lsan '')"
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 log_path=$logs/tsan$(supp tsan ' ')"
# The system Python: python3-lmdb is a Debian package.
export PATH=/usr/bin:$PATH

status=0
ctest --test-dir "$BUILD_DIR" --output-on-failure -j"$(nproc)" -L "$labels" -E "$exclude_re" \
  "$@" || status=$?
end=$(date +%s)

# A file that holds only the "Suppressions used" statistics (a suppressed
# report, see sanitizers/) is shown but fails nothing; so is LSan's warning
# that a thread was not suspended, written at exit by the children of
# cluster.fork_child: a child of a multithreaded program still has the
# parent's threads in ASan's registry, though they do not exist in it (any
# leak would still be reported in the same file, and fail). Anything else fails.
benign='-+|Suppressions used:|  count +bytes +template| +[0-9]+ +[0-9]+ +[^ ]+|'
benign+='==[0-9]+==Running thread [0-9]+ was not suspended\. False leaks are possible\.'
for f in $(find "$logs" -type f | sort); do
  if grep -vqE "^($benign|)\$" "$f"; then
    echo "==== sanitizer report ($mode): $f"
    status=1
  else
    echo "==== no finding ($mode), suppressed or benign: $f"
  fi
  cat "$f"
done
echo "sanitize.sh $mode: build $((built - start)) s, tests $((end - built)) s, status $status"
exit $status
