#!/usr/bin/python3
"""Crash consistency: crash.py --seed S [--iterations 50] --node-bin ... --cli ...

Runs chaos_node in crash mode (big random transactions of puts, overwrites,
deletes and DUPSORT changes through the shim, one after another) on one
environment, SIGKILLs it at a seeded random moment, and checks, every time:
  - `trlmdb verify` is clean (no user data without its bookkeeping);
  - the environment opens (python3-lmdb here, the shim at the next start);
  - every acknowledged commit is there: each key holds the state of the
    newest recorded write to it (a commit the writer made but had no time to
    record is recovered from the environment, as in chaos.py).
Odd iterations run with replication configured (a listening replicator, no
peers), even ones without. Exit 0 only if all iterations pass. See README.md.
"""

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from chaos_common import parse_records, read_state, recover, ts_str  # noqa: E402
from compat_common import clean_env  # noqa: E402


def tamper(env_dir, how):
    """Changes the environment behind the shim's back (the real liblmdb)."""
    import lmdb
    env = lmdb.open(env_dir, max_dbs=64)
    with env.begin(write=True) as txn:
        dbh = env.open_db(b"c0", txn=txn, create=False)
        cur = txn.cursor(dbh)
        if not cur.first():
            raise SystemExit("selftest: nothing to tamper with")
        key = cur.key()
        if how == "tamper":
            txn.put(key, b"tampered", db=dbh)
        else:
            txn.delete(key, db=dbh)
    env.close()
    print("selftest: %s c0/%s" % (how, key.decode()), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--max-run", type=float, default=0.8,
                    help="longest a writer runs before its SIGKILL (seconds)")
    ap.add_argument("--node-bin", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--keep", action="store_true")
    ap.add_argument("--selftest", choices=["tamper", "orphan"],
                    help="after the 2nd kill, change a committed value (tamper) or delete a "
                    "key without its bookkeeping (orphan) with python3-lmdb: must then fail")
    args = ap.parse_args()
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(args.seed)
    print("crash seed %d, %d iterations" % (args.seed, args.iterations), flush=True)
    os.makedirs(args.workdir, exist_ok=True)
    root = tempfile.mkdtemp(prefix="crash.%d." % args.seed, dir=args.workdir)
    env_dir = os.path.join(root, "db")
    records = os.path.join(root, "records.txt")
    log_path = os.path.join(root, "writer.stderr")
    rec = None
    expected = {}  # (db, key) -> Write: the newest recorded write
    failures = []
    kills_mid = recovered_total = 0
    t_start = time.monotonic()
    for i in range(1, args.iterations + 1):
        repl = i % 2 == 1
        e = clean_env()
        e.update({"CHAOS_MODE": "crash", "CHAOS_AUTOSTART": "1", "CHAOS_INCARNATION": str(i),
                  "CHAOS_NAME": "w"})
        if repl:
            e.update({"TRLMDB_LISTEN": "127.0.0.1:0", "TRLMDB_LOG": "warn"})
        with open(log_path, "ab") as lf:
            lf.write(("==== iteration %d (%s)\n" % (i, "replicating" if repl else "no replication"))
                     .encode())
            lf.flush()
            proc = subprocess.Popen([args.node_bin, env_dir, records, str(args.seed * 100 + i)],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=lf,
                                    env=e)
        ready = proc.stdout.readline().decode().strip()
        if not ready.startswith("READY"):
            proc.kill()
            proc.wait()
            failures.append("iteration %d: the environment did not open: %r" % (i, ready))
            break
        time.sleep(rng.uniform(0.02, args.max_run))
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdin.close()
        proc.stdout.close()
        if args.selftest == "orphan" and i == 2:
            tamper(env_dir, args.selftest)
        r = subprocess.run([args.cli, "verify", env_dir], capture_output=True, env=clean_env(),
                           timeout=120)
        if r.returncode != 0:
            failures.append("iteration %d: trlmdb verify (rc %d):\n%s" % (
                i, r.returncode, (r.stdout + r.stderr).decode(errors="replace")[-2000:]))
            break
        rec = parse_records("W", records, rec.offset if rec else 0, rec)
        before = rec.recovered
        n = recover(env_dir, rec, records)
        if n:
            kills_mid += 1
            recovered_total += n
        rec = parse_records("W", records, rec.offset, rec)
        if rec.recovered != before + (1 if n else 0):
            failures.append("iteration %d: the recovered commit was not read back" % i)
        for w in rec.writes:
            old = expected.get((w.db, w.key))
            if old is None or w.hi > old.hi:
                expected[(w.db, w.key)] = w
        rec.writes = []  # already folded into expected
        if args.selftest == "tamper" and i == 2:
            tamper(env_dir, args.selftest)
        try:
            state, stamps, _markers = read_state(env_dir, ["c0", "c1"])
        except Exception as ex:  # noqa: BLE001 - any failure to open is the finding
            failures.append("iteration %d: python3-lmdb cannot read the environment: %s" % (i, ex))
            break
        bad = []
        for key in sorted(set(expected) | set(state)):
            w = expected.get(key)
            want = w.state if w else "-"
            got = state.get(key, "-")
            if got != want:
                bad.append("%s/%s holds %s (stamp %s), the newest acknowledged write is %s" % (
                    key[0], key[1], got, ts_str(stamps.get(key)),
                    w.describe() if w else "none"))
            elif w is not None and stamps.get(key) != w.hi:
                bad.append("%s/%s stamp %s, the newest acknowledged write has %s" % (
                    key[0], key[1], ts_str(stamps.get(key)), ts_str(w.hi)))
        if bad:
            failures.append("iteration %d: %d keys differ from the acknowledged commits:\n  %s"
                            % (i, len(bad), "\n  ".join(bad[:20])))
            break
        print("iteration %2d (%s): killed after %d commits in all, verify clean, %d keys as "
              "committed%s" % (i, "repl" if repl else "solo", rec.commits, len(expected),
                               ", %d unrecorded changes recovered" % n if n else ""), flush=True)
    took = time.monotonic() - t_start
    print("SUMMARY seed=%d iterations=%d commits=%d aborted=%d keys=%d "
          "kills_after_unrecorded_commit=%d recovered_changes=%d seconds=%.1f failures=%d"
          % (args.seed, args.iterations, rec.commits if rec else 0, rec.aborts if rec else 0,
             len(expected), kills_mid, recovered_total, took, len(failures)), flush=True)
    for f in failures:
        print("FAIL " + f, flush=True)
    if failures or args.keep:
        print("kept %s" % root)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
