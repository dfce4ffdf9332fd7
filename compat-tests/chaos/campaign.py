#!/usr/bin/python3
"""A chaos campaign: campaign.py --first 1 --count 200 --duration 60 [--jobs 2]
--node-bin ... --cli ... [-- extra chaos.py options]

Runs chaos.py for seeds first .. first+count-1 (--jobs at a time), keeps each
run's output in WORKDIR/campaign-<first>/<seed>.out, and prints the totals:
runs, nodes, faults by kind, commits, writes, divergences, failing seeds.
"""

import argparse
import concurrent.futures
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))

NUMERIC = ["nodes", "faults", "commits", "writes", "drops_db", "empties_db", "aborted_txns", "txn_errors",
           "superseded_at_commit", "recovered_after_kill", "keys_checked", "ambiguous_keys",
           "divergences"]
KINDS = ["drop", "delay", "partition_oneway", "partition_full", "reset", "kill", "clock_skew"]


def parse_summary(text):
    for line in text.splitlines():
        if line.startswith("SUMMARY "):
            return dict(kv.split("=", 1) for kv in line[8:].split(" ") if "=" in kv)
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--first", type=int, default=1)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--node-bin", required=True)
    ap.add_argument("--cli", required=True)
    ap.add_argument("--workdir", default="/tmp/chaos-campaign")
    ap.add_argument("extra", nargs="*", help="more chaos.py options (after --)")
    args = ap.parse_args()
    outdir = os.path.join(args.workdir, "campaign-%d" % args.first)
    os.makedirs(outdir, exist_ok=True)

    def one(seed):
        cmd = [sys.executable, os.path.join(HERE, "chaos.py"), "--seed", str(seed),
               "--duration", str(args.duration), "--node-bin", args.node_bin, "--cli", args.cli,
               "--workdir", args.workdir] + args.extra
        t = time.monotonic()
        r = subprocess.run(cmd, capture_output=True, timeout=args.duration + 600)
        out = (r.stdout + r.stderr).decode(errors="replace")
        with open(os.path.join(outdir, "%d.out" % seed), "w") as f:
            f.write(out)
        return seed, r.returncode, parse_summary(out), time.monotonic() - t, out

    totals = {k: 0 for k in NUMERIC}
    kinds = {k: 0 for k in KINDS}
    failed = []
    runs = 0
    conv_max = 0.0
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(args.jobs) as ex:
        for seed, rc, s, took, out in ex.map(one, range(args.first, args.first + args.count)):
            runs += 1
            if s:
                for k in NUMERIC:
                    totals[k] += int(s.get(k, 0)) if s.get(k, "0").isdigit() else 0
                for kv in s.get("faults_by_kind", "").split(","):
                    if "=" in kv:
                        k, v = kv.split("=")
                        kinds[k] = kinds.get(k, 0) + int(v)
                conv_max = max(conv_max, float(s.get("convergence_s", 0)))
            if rc != 0:
                why = [l for l in out.splitlines() if "HARNESS ERROR" in l or "FAILED" in l
                       or "BUG" in l][:2]
                failed.append((seed, " | ".join(w.strip() for w in why)[:300]))
            print("seed %d: %s in %.0fs%s" % (seed, "PASS" if rc == 0 else "FAIL", took,
                                              "" if s else " (no summary)"), flush=True)
    print("CAMPAIGN runs=%d duration_each=%.0fs wall=%.0fs nodes=%d faults=%d (%s) commits=%d "
          "writes=%d db_drops=%d db_empties=%d aborted=%d recovered_after_kill=%d keys_checked=%d "
          "max_convergence_s=%.1f divergences=%d failed_runs=%d" % (
              runs, args.duration, time.monotonic() - t0, totals["nodes"], totals["faults"],
              " ".join("%s=%d" % kv for kv in kinds.items()), totals["commits"], totals["writes"],
              totals["drops_db"], totals["empties_db"], totals["aborted_txns"], totals["recovered_after_kill"],
              totals["keys_checked"], conv_max, totals["divergences"], len(failed)), flush=True)
    for seed, why in failed:
        print("FAILED seed %d: %s" % (seed, why))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
