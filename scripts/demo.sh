#!/usr/bin/env bash
# The main job: sets up a Debian machine, builds trlmdb, and starts a local
# three-node cluster on loopback: three environments, each with `trlmdb serve`
# running its replicator. Unmodified LMDB programs under LD_PRELOAD=libtrlmdb.so
# then write on one node and read on the others: mdb_load on node 1, mdb_dump
# on node 2 and a python3-lmdb script on node 3, then a python3-lmdb write on
# node 3 read on node 1. `trlmdb stat`, `digest` and `verify` show the result;
# the cluster is stopped with SIGTERM and every node must exit 0.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh
B=$(pwd)/${BUILD_DIR:-build}
TRLMDB=$B/tools/cli/trlmdb
SHIM=$B/shim/libtrlmdb.so
# Debian's /usr/bin/mdb_* are linked statically against LMDB: no LD_PRELOAD
# reaches them. The build compiles the same programs from Debian's source
# package, linked against the system's liblmdb.so.0 (compat-tests/programs).
UTILS=$B/compat-tests/programs/lmdb-utils-real
PY=/usr/bin/python3 # Debian's python3-lmdb: the system interpreter
WAIT_S=15           # bound for anything that should take milliseconds

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
work=$(mktemp -d /tmp/trlmdb-demo.XXXXXX)
declare -A serve_pid=()
die() {
  printf '\n\033[1;31mdemo failed: %s\033[0m\n' "$*" >&2
  for n in 1 2 3; do
    [ -s "$work/serve$n.err" ] && { echo "--- stderr of node $n's trlmdb serve:" >&2; tail -n 20 "$work/serve$n.err" >&2; }
  done
  exit 1
}
cleanup() {
  for n in "${!serve_pid[@]}"; do kill -KILL "${serve_pid[$n]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for f in "$TRLMDB" "$SHIM" "$UTILS/mdb_load" "$UTILS/mdb_dump"; do
  [ -e "$f" ] || die "$f is missing: did scripts/build.sh succeed?"
done

now_ns() { date +%s%N; }
ms_since() { echo $((($(now_ns) - $1) / 1000000)); }
ms_between() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", (b - a) / 1e6 }'; }

# The commit time of a write, from its own trlmdb timestamp (DESIGN.md
# section 1: u64be(seconds << 32 | fraction) || u32be(node word)) in
# _trlmdb_time, which the real liblmdb shows (no LD_PRELOAD here).
cat >"$work/stamp.py" <<'PY'
import struct, sys, lmdb
env = lmdb.open(sys.argv[1], readonly=True, max_dbs=8)
with env.begin() as txn:
    ts = txn.get(sys.argv[2].encode() + b"\0" + sys.argv[3].encode(),
                 db=env.open_db(b"_trlmdb_time", txn=txn, create=False))
t = struct.unpack(">Q", ts[:8])[0]
print((t >> 32) * 10**9 + ((t & 0xffffffff) * 10**9 >> 32))
PY
stamp_ns() { "$PY" "$work/stamp.py" "${node[$1]}" "$2" "$3" || die "no timestamp for $3 on node $1"; }

# A python3-lmdb reader, run under the shim: prints "ready" once it has the
# environment open, then the wall time (ns) at which DB holds KEY = VALUE.
cat >"$work/watch.py" <<'PY'
import sys, time, lmdb
path, db, key, value, timeout = sys.argv[1], *(a.encode() for a in sys.argv[2:5]), float(sys.argv[5])
env = lmdb.open(path, readonly=True, max_dbs=4)
print("ready", flush=True)
deadline, handle = time.monotonic() + timeout, None
while time.monotonic() < deadline:
    try:
        handle = handle or env.open_db(db, create=False)
        with env.begin(db=handle) as txn:
            if txn.get(key) == value:
                print(time.time_ns(), flush=True)
                sys.exit(0)
    except lmdb.NotFoundError:
        pass  # the database has not arrived yet
    time.sleep(0.001)
sys.exit("%s: %s = %s did not appear within %s s" % (path, key, value, timeout))
PY

# watch N DB KEY VALUE: starts watch.py on node N in the background; its
# output goes to $work/watch.out.
watch() {
  LD_PRELOAD=$SHIM "$PY" "$work/watch.py" "${node[$1]}" "$2" "$3" "$4" "$WAIT_S" \
    >"$work/watch.out" 2>"$work/watch.err" &
  watch_pid=$!
  for _ in $(seq 200); do
    grep -q '^ready$' "$work/watch.out" && return 0
    kill -0 "$watch_pid" 2>/dev/null || break
    sleep 0.05
  done
  die "the python3-lmdb watcher on node $1 did not start"
}
# watched: waits for the watcher; sets `seen` to the time (ns) it saw the key.
watched() {
  wait "$watch_pid" || die "the python3-lmdb watcher: $(tail -n 3 "$work/watch.err")"
  seen=$(sed -n 2p "$work/watch.out")
}

# The cluster: every node's settings in its environment's trlmdb.conf, which
# the writers read too (they then wake their node's replicator after each
# commit); the secret, shared by all, in the environment. Environments are
# matched across nodes by name: all three directories are called "demo".
export TRLMDB_SECRET
TRLMDB_SECRET=$(od -An -tx1 -N24 /dev/urandom | tr -d ' \n')
declare -A node=() port=()
start_node() { # start_node N PEER_PORT...
  local n=$1
  shift
  node[$n]=$work/node$n/demo
  mkdir -p "${node[$n]}"
  {
    echo "# node $n of the demo cluster"
    echo "listen = 127.0.0.1:0"
    for p in "$@"; do echo "peers = 127.0.0.1:$p"; done
  } >"${node[$n]}/trlmdb.conf"
  "$TRLMDB" serve "${node[$n]}" >"$work/serve$n.out" 2>"$work/serve$n.err" &
  serve_pid[$n]=$!
  for _ in $(seq 200); do
    [ -s "$work/serve$n.out" ] && break
    kill -0 "${serve_pid[$n]}" 2>/dev/null || die "trlmdb serve of node $n exited"
    sleep 0.05
  done
  local line
  line=$(head -n 1 "$work/serve$n.out")
  port[$n]=$(sed -n 's/.*, listening on 127\.0\.0\.1:\([0-9]*\)$/\1/p' <<<"$line")
  [ -n "${port[$n]}" ] || die "node $n did not start serving"
  printf '%s/trlmdb.conf:\n' "${node[$n]}"
  sed 's/^/    /' "${node[$n]}/trlmdb.conf"
  printf '  trlmdb serve: %s\n' "$line"
}
# connected N: how many sessions node N's replicator reports as connected.
connected() { "$TRLMDB" stat "${node[$1]}" | grep -cE '^  \S+ +(in|out) +connected ' || true; }

say "Three nodes on loopback, each an environment served by trlmdb serve"
start_node 1
start_node 2 "${port[1]}"
start_node 3 "${port[1]}" "${port[2]}"
t0=$(now_ns)
until [ "$(connected 1)" -eq 2 ] && [ "$(connected 2)" -eq 2 ] && [ "$(connected 3)" -eq 2 ]; do
  [ "$(ms_since "$t0")" -lt $((WAIT_S * 1000)) ] || die "the three nodes did not connect"
  sleep 0.05
done
echo "full mesh after $(ms_since "$t0") ms (authenticated, encrypted sessions)"

say "mdb_load on node 1 (Debian's mdb_load, unmodified, LD_PRELOAD=libtrlmdb.so)"
watch 3 people grace Hopper
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n ada\n Lovelace\n alan\n Turing\n grace\n Hopper\nDATA=END\n' |
  LD_PRELOAD=$SHIM "$UTILS/mdb_load" -s people "${node[1]}" || die "mdb_load failed"
t0=$(now_ns)
echo "loaded 3 keys into database \"people\" of node 1"

say "mdb_dump on node 2 (Debian's mdb_dump, unmodified, LD_PRELOAD=libtrlmdb.so)"
until dump=$(LD_PRELOAD=$SHIM "$UTILS/mdb_dump" -p -s people "${node[2]}" 2>/dev/null) &&
  grep -q '^ grace$' <<<"$dump"; do
  [ "$(ms_since "$t0")" -lt $((WAIT_S * 1000)) ] || die "the keys did not reach node 2"
done
seen=$(now_ns)
committed=$(stamp_ns 1 people grace)
echo "$dump"
echo "-> in mdb_dump's output on node 2 $(ms_between "$committed" "$seen") ms after the commit on node 1"
echo "   (this includes running mdb_dump: it was started again until the keys were there)"

say "python3-lmdb on node 3 (Debian's python3-lmdb, unmodified, LD_PRELOAD=libtrlmdb.so)"
watched
echo "-> a python3-lmdb reader polling node 3 saw grace = Hopper $(ms_between "$committed" "$seen") ms after the commit on node 1"

say "A write on node 3 (python3-lmdb) appears on node 1"
watch 1 people margaret Hamilton
LD_PRELOAD=$SHIM "$PY" - "${node[3]}" <<'PY' || die "the python3-lmdb writer failed"
import lmdb, sys
env = lmdb.open(sys.argv[1], max_dbs=4)
people = env.open_db(b'people')
with env.begin(write=True) as txn:
    txn.put(b'margaret', b'Hamilton', db=people)
    txn.delete(b'alan', db=people)
with env.begin() as txn:
    print("node 3 now holds:", [(k.decode(), v.decode()) for k, v in txn.cursor(db=people)])
env.close()
PY
t0=$(now_ns)
watched
committed=$(stamp_ns 3 people margaret)
echo "-> a python3-lmdb reader polling node 1 saw margaret = Hamilton $(ms_between "$committed" "$seen") ms after the commit on node 3"

say "trlmdb digest: the same data on every node"
until [ "$("$TRLMDB" digest "${node[1]}")" = "$("$TRLMDB" digest "${node[2]}")" ] &&
  [ "$("$TRLMDB" digest "${node[1]}")" = "$("$TRLMDB" digest "${node[3]}")" ]; do
  [ "$(ms_since "$t0")" -lt $((WAIT_S * 1000)) ] || die "the digests differ"
  sleep 0.02
done
for n in 1 2 3; do printf 'node %s  %s\n' "$n" "$("$TRLMDB" digest "${node[$n]}")"; done

# Every change acknowledged by every peer: nothing left in _trlmdb_recent.
backlog() { "$TRLMDB" stat "${node[$1]}" | sed -n 's/^backlog: *\([0-9]*\) .*/\1/p'; }
until [ "$(backlog 1)" = 0 ] && [ "$(backlog 2)" = 0 ] && [ "$(backlog 3)" = 0 ]; do
  [ "$(ms_since "$t0")" -lt $((WAIT_S * 1000)) ] || die "changes stay unacknowledged"
  sleep 0.05
done

say "trlmdb verify: the bookkeeping of every node is consistent"
for n in 1 2 3; do
  printf 'node %s  ' "$n"
  "$TRLMDB" verify "${node[$n]}" || die "trlmdb verify failed on node $n"
done

say "trlmdb stat of node 2 (its replicator: one peer it dialled, one that dialled it)"
"$TRLMDB" stat "${node[2]}" || die "trlmdb stat failed"

say "Stopping the cluster (SIGTERM: each node flushes and closes its environment)"
for n in 1 2 3; do kill -TERM "${serve_pid[$n]}"; done
for n in 1 2 3; do
  rc=0
  wait "${serve_pid[$n]}" || rc=$?
  unset 'serve_pid[$n]'
  [ "$rc" -eq 0 ] || die "trlmdb serve of node $n exited with status $rc"
  echo "node $n: trlmdb serve exited with status 0"
done
"$TRLMDB" stat "${node[1]}" | grep '^replicator:'

say "Demo complete"
