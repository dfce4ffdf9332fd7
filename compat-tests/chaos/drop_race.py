#!/usr/bin/python3
"""A deterministic case the chaos runs pointed at: a put older than a
concurrent mdb_drop(db, 1) must not survive it.

  drop_race.py --repl-node build/compat-tests/cluster/repl_node --cli ... [--order ...]

A and B (repl_node, compat-tests/cluster) are linked through the chaos proxy.
Both hold d1/k0. The link is cut (full partition and reset); A puts d1/k1
(stamp t1), then B drops d1 with mdb_drop(…, 1) (marker stamp M > t1). The link
heals. With --mode recreate, B also creates d1 again after its drop (puts
d1/k2), so its marker says created and forgets the drop, as in chaos.quick.1
(seed 1). By the documented semantics (README "Apply": mdb_drop(…, 1) deletes the
keys older than it), d1/k1 must end absent on both nodes, with equal digests,
within --timeout seconds. Exit 0 when it does.
"""

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "cluster"))
from cluster import Cluster, wait_for  # noqa: E402
from chaos_common import read_state  # noqa: E402
from proxy import Proxy  # noqa: E402


def k1(node):
    """d1/k1 as a fresh reader sees it (python3-lmdb: after a remote drop a
    program's own handle may be stale, cluster/README.md)."""
    state, stamps, _m = read_state(node.env_dir, ["d1"])
    return state.get(("d1", "k1"), "-")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repl-node", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--timeout", type=float, default=15)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the scenario (timing varies)")
    ap.add_argument("--mode", choices=["partition", "oneway", "recreate"], default="partition",
                    help="partition: both directions cut and reset, the nodes catch up by "
                    "reconciliation; oneway: only A->B stalls (no reset), so B's drop reaches "
                    "A at once and A's put reaches B afterwards on the live stream; recreate: "
                    "as partition, and B puts d1/k2 after its drop (d1 created again)")
    args = ap.parse_args()
    args.node, args.lib, args.utils_bin, args.python = args.repl_node, "", "", sys.executable
    failures = []
    for i in range(args.repeat):
        failures += scenario(args)
    for f in failures:
        print("FAIL " + f)
    return 1 if failures else 0


def scenario(args):
    proxy = Proxy(["A", "B"])
    failures = []
    try:
        with Cluster(args, "drop_race") as c:
            env = {"TRLMDB_TIMEOUT": "2"}
            a = c.node("A", peers=["127.0.0.1:%d" % proxy.port("A", "B")], env=env)
            proxy.set_target("A", a.port)
            b = c.node("B", peers=["127.0.0.1:%d" % proxy.port("B", "A")], env=env)
            proxy.set_target("B", b.port)
            c.wait_mesh([a, b])
            a.put("d1", "k0", "v0")
            c.wait_value(b, "d1", "k0", "v0")
            if args.mode in ("partition", "recreate"):
                for x, y in (("A", "B"), ("B", "A")):
                    proxy.set_link(x, y, "partition")
                proxy.reset("A", "B")
                wait_for(lambda: a.status()["connected"] == 0 and b.status()["connected"] == 0,
                         15, "the link to go down")
            else:
                proxy.set_link("A", "B", "partition")
            t1 = a.put("d1", "k1", "v1")
            m = b.ok("drop d1 1")
            if args.mode == "recreate":
                b.put("d1", "k2", "v2")
            if args.mode == "oneway":
                wait_for(lambda: k1(a) == "-", 15, "B's drop to reach A")
            print("A put d1/k1 at %s; B dropped d1 at %s (newer: %s)" % (t1, m, m > t1))
            for x, y in (("A", "B"), ("B", "A")):
                proxy.set_link(x, y, "pass")
            c.wait_mesh([a, b])
            deadline = time.monotonic() + args.timeout
            while True:
                da, db = c.digest(a.env_dir), c.digest(b.env_dir)
                ga, gb = k1(a), k1(b)
                recreated = args.mode != "recreate" or all(
                    read_state(n.env_dir, ["d1"])[0].get(("d1", "k2")) == "v2" for n in (a, b))
                if da == db and ga == "-" and gb == "-" and recreated:
                    print("converged: d1/k1 absent on both")
                    break
                if time.monotonic() > deadline:
                    failures.append("after %.0fs: A d1/k1=%r digest %s; B d1/k1=%r digest %s%s"
                                    % (args.timeout, ga, da[:16], gb, db[:16],
                                       "" if recreated else "; d1/k2 missing"))
                    break
                time.sleep(0.2)
            for n in (a, b):
                rc, out = c.verify(n.env_dir)
                if rc:
                    failures.append("verify %s: %s" % (n.name, out[-500:]))
            if failures:
                c.keep = True
    finally:
        proxy.close()
    return failures


if __name__ == "__main__":
    sys.exit(main())
