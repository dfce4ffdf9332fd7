#!/usr/bin/env bash
# The main job: sets up a Debian machine, builds trlmdb, runs unmodified LMDB
# programs writing through the shim in its three modes, and shows the
# bookkeeping with `trlmdb stat`, `trlmdb verify` and `trlmdb digest`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-debian.sh
bash scripts/build.sh
B=$(pwd)/${BUILD_DIR:-build}
TRLMDB=$B/tools/cli/trlmdb
SHIM=$B/shim/libtrlmdb.so
DROPIN=$B/dropin
UTILS=$B/compat-tests/programs
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/env"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "python3-lmdb (Debian's package, unmodified) with LD_PRELOAD=libtrlmdb.so"
LD_PRELOAD=$SHIM /usr/bin/python3 - "$work/env" <<'PY'
import lmdb, sys
env = lmdb.open(sys.argv[1], max_dbs=4)
people = env.open_db(b'people')
tags = env.open_db(b'tags', dupsort=True)
with env.begin(write=True) as txn:
    txn.put(b'ada', b'Lovelace', db=people)
    txn.put(b'alan', b'Turing', db=people)
    txn.put(b'grace', b'Hopper', db=people)
    for t in (b'math', b'code'):
        txn.put(b'ada', t, db=tags)
with env.begin(write=True) as txn:
    txn.delete(b'alan', db=people)
with env.begin() as txn:
    print("databases seen by the program:", [k.decode() for k, _ in txn.cursor()])
    print("people:", [(k.decode(), v.decode()) for k, v in txn.cursor(db=people)])
PY

REAL_UTILS=$UTILS/lmdb-utils-real          # Debian's lmdb-utils, linked against liblmdb.so.0
RELINKED_UTILS=$UTILS/lmdb-utils-relinked  # the same programs relinked against libtrlmdb
say "Debian's mdb_load finds the drop-in liblmdb.so.0 on its library path"
printf 'VERSION=3\nformat=print\ntype=btree\nHEADER=END\n linus\n Torvalds\n margaret\n Hamilton\nDATA=END\n' |
  LD_LIBRARY_PATH=$DROPIN "$REAL_UTILS/mdb_load" -s people "$work/env"

say "Debian's mdb_dump -a, relinked against libtrlmdb: the reserved databases are invisible"
"$RELINKED_UTILS/mdb_dump" -a -p "$work/env"

say "The same mdb_dump on the real LMDB shows the bookkeeping it hides"
"$REAL_UTILS/mdb_dump" -a "$work/env" | grep '^database=' || true

say "trlmdb stat"
"$TRLMDB" stat "$work/env"
say "trlmdb verify"
"$TRLMDB" verify "$work/env"
say "trlmdb digest"
"$TRLMDB" digest "$work/env"
