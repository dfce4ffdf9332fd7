#!/usr/bin/python3
"""Chaos run: chaos.py --seed S [--nodes N] [--duration SEC] --node-bin ... --cli ...

Starts 3 to 5 chaos_node processes on loopback, every link through the
fault-injecting proxy (proxy.py), runs the random workload on every node at
once while a seeded schedule injects link faults (drop, delay, one-way and full
partitions, resets), SIGKILLs and restarts nodes, with some nodes' clocks
shifted within the skew bound. Then the faults stop, the workload stops, and
within --converge-timeout seconds every node must have the same `trlmdb
digest`, `trlmdb verify` must be clean on each, and every key on every node
must be what the oracle (chaos_common.expectations) says. Exit 0 only then.

The seed fixes the node count, the clock shifts, the fault schedule and every
node's workload; thread and network timing still vary from run to run, so a
replay reproduces the same scenario, not the same interleaving.
See README.md.
"""

import argparse
import os
import random
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import queue
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, ".."))
from chaos_common import check_nodes, parse_records, read_state, recover  # noqa: E402
from compat_common import clean_env  # noqa: E402
from proxy import Proxy  # noqa: E402

NAMES = "ABCDE"
WORK_DBS = ["d0", "d1", "dup0", "t0", "u0"]
SECRET = "chaos-test-secret"


class HarnessError(Exception):
    """The harness itself failed (a node did not start or answer)."""


class Run:
    def __init__(self, args):
        self.args = args
        self.t0 = time.monotonic()
        os.makedirs(args.workdir, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix="chaos.%d." % args.seed, dir=args.workdir)
        self.log_file = open(os.path.join(self.root, "driver.log"), "w")
        self.counts = {}

    def log(self, msg, always=False):
        line = "[%7.2f] %s" % (time.monotonic() - self.t0, msg)
        self.log_file.write(line + "\n")
        self.log_file.flush()
        if always or self.args.verbose:
            print(line, flush=True)

    def count(self, kind, n=1):
        self.counts[kind] = self.counts.get(kind, 0) + n


def _allow_core():
    # A crash leaves DIR/core (core_pattern permitting) for the report.
    try:
        resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))
    except (ValueError, OSError):
        pass


def core_report(run, node_dirs):
    """Backtraces of the cores the nodes left, into the log."""
    for d in node_dirs:
        for f in sorted(os.listdir(d)):
            if not f.startswith("core"):
                continue
            path = os.path.join(d, f)
            r = subprocess.run(["gdb", "-batch", "-ex", "bt", "-ex", "thread apply all bt",
                                run.args.node_bin, path], capture_output=True, timeout=120)
            out = r.stdout.decode(errors="replace")
            with open(path + ".txt", "w") as fo:
                fo.write(out)
            run.log("CORE %s:\n%s" % (path, out[:6000]), always=True)


class Node:
    def __init__(self, run, name, proxy, names, shift_ms, seed):
        self.run, self.name, self.proxy = run, name, proxy
        self.peers = [n for n in names if n != name]
        self.shift_ms = shift_ms
        self.seed = seed
        self.dir = os.path.join(run.root, name)
        os.makedirs(self.dir, exist_ok=True)
        self.env_dir = os.path.join(self.dir, "db")
        self.records = os.path.join(self.dir, "records.txt")
        self.log_path = os.path.join(run.root, name + ".stderr")
        self.proc = None
        self.lines = None
        self.incarnation = 0
        self.word = None

    def environ(self):
        a = self.run.args
        e = clean_env()
        e.update({
            "TRLMDB_LISTEN": "127.0.0.1:0",
            "TRLMDB_PEERS": ",".join("127.0.0.1:%d" % self.proxy.port(self.name, p)
                                     for p in self.peers),
            "TRLMDB_SECRET": SECRET,
            "TRLMDB_LOG": a.log_level,
            "TRLMDB_NODE": self.name,
            "TRLMDB_TIMEOUT": str(a.peer_timeout),
            "TRLMDB_MAX_SKEW_MS": str(a.max_skew_ms),
            "CHAOS_NAME": self.name.lower(),
            "CHAOS_INCARNATION": str(self.incarnation),
            "CHAOS_DROP_PERMILLE": str(a.drop_permille),
            "CHAOS_PAUSE_MS": str(a.pause_ms),
            "CHAOS_DROP_DELETE": "0" if a.no_drop_delete else "1",
        })
        if self.shift_ms:
            e["TRLMDB_TEST_CLOCK_SHIFT_MS"] = str(self.shift_ms)
        return e

    def start(self):
        self.incarnation += 1
        with open(self.log_path, "ab") as lf:
            lf.write(("==== start %s incarnation %d (%s)\n"
                      % (self.name, self.incarnation, time.strftime("%T"))).encode())
            lf.flush()
            self.proc = subprocess.Popen(
                [self.run.args.node_bin, self.env_dir, self.records,
                 str(self.seed * 1000 + self.incarnation)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=lf, env=self.environ(),
                cwd=self.dir, preexec_fn=_allow_core)
        self.lines = queue.Queue()
        threading.Thread(target=self._reader, args=(self.proc, self.lines), daemon=True).start()
        ready = self._line(20, "start")
        if not ready.startswith("READY "):
            raise HarnessError("%s did not start: %r" % (self.name, ready))
        self.word = ready.split()[1]
        deadline = time.monotonic() + 20
        while True:
            st = self.status()
            if st.get("running") == "1" and st.get("port", "0") != "0":
                break
            if time.monotonic() > deadline:
                raise HarnessError("%s: no listening port: %r" % (self.name, st))
            time.sleep(0.02)
        self.proxy.set_target(self.name, int(st["port"]))
        if self.cmd("start") != "STARTED":
            raise HarnessError("%s: start failed" % self.name)
        self.run.log("%s started (incarnation %d, port %s, node word %s)"
                     % (self.name, self.incarnation, st["port"], self.word))

    @staticmethod
    def _reader(proc, lines):
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)

    def _line(self, timeout, what):
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise HarnessError("%s: no answer to %r within %ds" % (self.name, what, timeout))
        if line is None:
            self.lines.put(None)
            raise HarnessError("%s exited (rc %s) while answering %r"
                               % (self.name, self.proc.wait(), what))
        return line

    def cmd(self, line, timeout=60):
        try:
            self.proc.stdin.write((line + "\n").encode())
            self.proc.stdin.flush()
        except OSError as e:
            raise HarnessError("%s: cannot send %r: %s" % (self.name, line, e))
        return self._line(timeout, line)

    def status(self):
        ans = self.cmd("status")
        return dict(kv.split("=", 1) for kv in ans.split() if "=" in kv)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def kill(self):
        self.proxy.set_target(self.name, None)
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.proc.stdin.close()
        rec = parse_records(self.name, self.records)
        n = recover(self.env_dir, rec, self.records)
        self.run.log("%s killed (SIGKILL)%s" % (
            self.name, "; %d unrecorded committed changes recovered from its environment" % n
            if n else ""))
        if n:
            self.run.count("recovered_changes", n)

    def stop_workload(self):
        ans = self.cmd("stop", timeout=60)
        if not ans.startswith("STOPPED"):
            raise HarnessError("%s: stop answered %r" % (self.name, ans))
        return ans

    def quit(self):
        ans = self.cmd("quit", timeout=30)
        rc = self.proc.wait(30)
        self.proc.stdin.close()
        if ans != "BYE" or rc != 0:
            raise HarnessError("%s: quit answered %r, status %s" % (self.name, ans, rc))

    def log_tail(self, n=20):
        try:
            with open(self.log_path, "rb") as f:
                lines = f.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return ""
        return "\n".join("    [%s] %s" % (self.name, l) for l in lines[-n:])


# --- the fault schedule ------------------------------------------------------------
def make_schedule(rng, names, duration, interval, kills, max_down):
    """[(time, action, args)] for the whole run, drawn from rng alone. Each
    fault has its end scheduled too; a direction (or node) is never given a
    second fault while one is active."""
    events = []
    busy = {}  # key -> until
    down = []  # (from, until)
    t = rng.uniform(0.5, 1.5)
    kinds = ["drop", "delay", "oneway", "partition", "reset", "kill"]
    weights = [14, 18, 16, 16, 16, 20 if kills else 0]
    while t < duration - 0.5:
        kind = rng.choices(kinds, weights)[0]
        x, y = rng.sample(names, 2)
        length = rng.uniform(0.3, 4.0)
        end = min(t + length, duration - 0.2)
        if kind == "kill":
            active = [d for d in down if d[0] <= t < d[1]]
            if len(active) < max_down and busy.get(x, 0) <= t:
                events.append((t, "kill", (x,)))
                events.append((end, "restart", (x,)))
                busy[x] = end + 0.5
                down.append((t, end))
        elif kind == "reset":
            events.append((t, "reset", (x, y)))
        else:
            dirs = [(x, y)] if kind in ("drop", "delay", "oneway") else [(x, y), (y, x)]
            if all(busy.get(d, 0) <= t for d in dirs):
                mode = {"drop": "drop", "delay": "delay", "oneway": "partition",
                        "partition": "partition"}[kind]
                delay = rng.randint(20, 800) if kind == "delay" else 0
                events.append((t, kind, (dirs, mode, delay)))
                events.append((end, "heal", (dirs, kind)))
                for d in dirs:
                    busy[d] = end + 0.1
        t += rng.expovariate(1.0 / interval)
    events.sort(key=lambda e: e[0])
    return events


def digests(run, nodes):
    out = []
    for n in nodes:
        r = subprocess.run([run.args.cli, "digest", n.env_dir], capture_output=True,
                           env=clean_env(), timeout=60)
        out.append(r.stdout.decode().strip() if r.returncode == 0
                   else "error %d %s" % (r.returncode, r.stderr.decode(errors="replace").strip()))
    return out


def replay_command(args):
    cmd = [sys.executable, os.path.abspath(__file__), "--seed", str(args.seed), "--nodes",
           str(args.nodes), "--duration", str(args.duration), "--node-bin", args.node_bin,
           "--cli", args.cli, "--workdir", args.workdir]
    for flag, default in (("drop_permille", 15), ("converge_timeout", 30.0),
                          ("fault_interval", 0.8), ("pause_ms", 40)):
        v = getattr(args, flag)
        if v != default:
            cmd += ["--" + flag.replace("_", "-"), str(v)]
    if args.no_kill:
        cmd.append("--no-kill")
    if args.no_drop_delete:
        cmd.append("--no-drop-delete")
    if args.no_skew:
        cmd.append("--no-skew")
    return " ".join(shlex.quote(c) for c in cmd)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=None, help="default: a random one (printed)")
    ap.add_argument("--nodes", type=int, default=0, help="3 to 5; default: from the seed")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds of faults and workload")
    ap.add_argument("--node-bin", required=True, help="chaos_node program")
    ap.add_argument("--cli", required=True, help="the trlmdb command")
    ap.add_argument("--workdir", default=tempfile.gettempdir())
    ap.add_argument("--converge-timeout", type=float, default=30.0,
                    help="bound on convergence once the faults stop (seconds)")
    ap.add_argument("--fault-interval", type=float, default=0.8,
                    help="mean seconds between fault injections")
    ap.add_argument("--drop-permille", type=int, default=15,
                    help="share of transactions that are an mdb_drop, per mille")
    ap.add_argument("--pause-ms", type=int, default=40, help="max pause between transactions")
    ap.add_argument("--peer-timeout", type=float, default=2.0, help="TRLMDB_TIMEOUT")
    ap.add_argument("--max-skew-ms", type=int, default=6000, help="TRLMDB_MAX_SKEW_MS")
    ap.add_argument("--no-drop-delete", action="store_true",
                    help="mdb_drop(…, 0) only, never mdb_drop(…, 1)")
    ap.add_argument("--no-kill", action="store_true", help="no SIGKILLs")
    ap.add_argument("--no-skew", action="store_true", help="no clock shifts")
    ap.add_argument("--log-level", default="debug", help="TRLMDB_LOG of the nodes")
    ap.add_argument("--keep", action="store_true", help="keep the directory even on success")
    ap.add_argument("--selftest", choices=["fake-write", "no-heal"],
                    help="break the run on purpose: the harness must then fail (fake-write: a "
                    "recorded write no node received; no-heal: one node stays partitioned)")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every event")
    args = ap.parse_args()
    args.node_bin, args.cli, args.workdir = (os.path.abspath(p) for p in (
        args.node_bin, args.cli, args.workdir))
    if args.seed is None:
        args.seed = random.SystemRandom().randrange(1, 2**31)
    rng = random.Random(args.seed)
    if not args.nodes:
        args.nodes = rng.randint(3, 5)
    else:
        rng.randint(3, 5)  # the same draws whether or not --nodes is given
    if not 2 <= args.nodes <= 5:
        ap.error("--nodes: 2 to 5")
    print("chaos seed %d (%d nodes, %.0fs)" % (args.seed, args.nodes, args.duration), flush=True)
    print("replay: %s" % replay_command(args), flush=True)
    run = Run(args)
    ok = False
    try:
        ok = chaos(run, rng)
    except HarnessError as e:
        run.log("HARNESS ERROR: %s" % e, always=True)
        time.sleep(0.5)
    if not ok:
        try:
            core_report(run, [os.path.join(run.root, n) for n in NAMES[:args.nodes]])
        except (OSError, subprocess.SubprocessError) as e:
            run.log("no core report: %s" % e, always=True)
    if ok and not args.keep:
        shutil.rmtree(run.root, ignore_errors=True)
    else:
        print("kept %s" % run.root, flush=True)
    print("RESULT %s seed %d" % ("PASS" if ok else "FAIL", args.seed), flush=True)
    return 0 if ok else 1


def chaos(run, rng):
    args = run.args
    names = list(NAMES[:args.nodes])
    bound3 = args.max_skew_ms // 3
    shifts = {n: (0 if args.no_skew else rng.choice([0, 0, bound3, -bound3])) for n in names}
    seeds = {n: rng.randrange(1, 2**31) for n in names}
    schedule = make_schedule(rng, names, args.duration, args.fault_interval,
                             not args.no_kill, 1 if args.nodes <= 3 else 2)
    for n in names:
        if shifts[n]:
            run.count("clock_skew")
    run.log("nodes %s, clock shifts %s" % (" ".join(names), shifts))
    proxy = Proxy(names, log=run.log)
    nodes = {}
    try:
        for n in names:
            nodes[n] = Node(run, n, proxy, names, shifts[n], seeds[n])
        for n in names:
            nodes[n].start()
        ok = drive(run, nodes, proxy, schedule)
    except HarnessError:
        for node in nodes.values():
            if node.alive():
                # A node that stopped answering: its threads' stacks first.
                try:
                    r = subprocess.run(["gdb", "-p", str(node.proc.pid), "-batch", "-ex",
                                        "thread apply all bt"], capture_output=True, timeout=60)
                    with open(os.path.join(node.dir, "stacks.txt"), "wb") as f:
                        f.write(r.stdout)
                    run.log("stacks of %s (still running) in %s/stacks.txt" % (
                        node.name, node.dir), always=True)
                except (OSError, subprocess.SubprocessError) as e:
                    run.log("no stacks of %s: %s" % (node.name, e), always=True)
                node.proc.kill()
                node.proc.wait()
        for node in nodes.values():
            r = subprocess.run([args.cli, "verify", node.env_dir], capture_output=True,
                               env=clean_env(), timeout=120)
            run.log("after the failure, trlmdb verify %s: rc %d %s" % (
                node.name, r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()
                [-1500:]), always=True)
        raise
    finally:
        for node in nodes.values():
            if node.alive():
                node.proc.kill()
                node.proc.wait()
        proxy.close()
    return ok


def drive(run, nodes, proxy, schedule):
    args = run.args
    start = time.monotonic()
    for t, action, a in schedule:
        now = time.monotonic() - start
        if t > now:
            time.sleep(t - now)
        for n in nodes.values():
            if n.proc is not None and not n.alive() and not getattr(n, "down", False):
                raise HarnessError("%s died on its own (rc %s)\n%s"
                                   % (n.name, n.proc.returncode, n.log_tail()))
        if action == "kill":
            node = nodes[a[0]]
            node.kill()
            node.down = True
            run.count("kill")
        elif action == "restart":
            node = nodes[a[0]]
            node.down = False
            node.start()
        elif action == "reset":
            proxy.reset(*a)
            run.count("reset")
        elif action == "heal":
            for x, y in a[0]:
                proxy.set_link(x, y, "pass")
        else:
            dirs, mode, delay = a
            for x, y in dirs:
                proxy.set_link(x, y, mode, delay)
            run.count({"oneway": "partition_oneway", "partition": "partition_full"}.get(action,
                                                                                      action))
    now = time.monotonic() - start
    if now < args.duration:
        time.sleep(args.duration - now)
    # The faults stop: links heal, dead nodes come back, the workload stops.
    proxy.heal_all()
    if args.selftest == "no-heal":
        last = sorted(nodes)[-1]
        for other in nodes:
            if other != last:
                proxy.set_link(last, other, "partition")
                proxy.set_link(other, last, "partition")
                proxy.reset(last, other)
    for n in nodes.values():
        if getattr(n, "down", False):
            n.down = False
            n.start()
    for n in nodes.values():
        if not n.alive():
            raise HarnessError("%s died on its own (rc %s)\n%s"
                               % (n.name, n.proc.returncode, n.log_tail()))
    stopped = {}
    for n in nodes.values():
        stopped[n.name] = n.stop_workload()
    run.log("faults and workload stopped: %s" % "; ".join(
        "%s %s" % (k, v) for k, v in sorted(stopped.items())))
    node_list = [nodes[k] for k in sorted(nodes)]
    t_conv = time.monotonic()
    converged = False
    while True:
        ds = digests(run, node_list)
        if len(set(ds)) == 1 and not ds[0].startswith("error"):
            converged = True
            break
        if time.monotonic() - t_conv > args.converge_timeout:
            break
        time.sleep(0.25)
    conv_s = time.monotonic() - t_conv
    problems = []
    if not converged:
        problems.append("no convergence within %.0fs" % args.converge_timeout)
        for n, d in zip(node_list, ds):
            run.log("  digest %s: %s; status %s" % (n.name, d, n.cmd("status")), always=True)
    else:
        run.log("converged in %.1fs: digest %s" % (conv_s, ds[0][:40]))
    for n in node_list:
        r = subprocess.run([args.cli, "verify", n.env_dir], capture_output=True, env=clean_env(),
                           timeout=120)
        if r.returncode != 0:
            problems.append("trlmdb verify %s failed" % n.name)
            run.log("VERIFY %s (rc %d):\n%s" % (n.name, r.returncode, (r.stdout + r.stderr).decode(
                errors="replace")[-3000:]), always=True)
    for n in node_list:
        n.quit()
    if converged:
        ds2 = digests(run, node_list)
        if len(set(ds2)) != 1 or ds2[0] != ds[0]:
            problems.append("digests changed after the nodes quit")
            run.log("digests after quit: %s" % ds2, always=True)
    # The oracle.
    if args.selftest == "fake-write":
        with open(node_list[0].records, "a") as f:
            f.write("C fake ffffffff00000000%s 1\nK d0 k00 ffffffff00000000%s fake.write\n"
                    "E fake\n" % (node_list[0].word[:6] + "01", node_list[0].word[:6] + "01"))
    records = [parse_records(n.name, n.records) for n in node_list]
    finals = {n.name: read_state(n.env_dir, WORK_DBS) for n in node_list}
    divergences, ambiguous, nkeys = check_nodes(
        records, finals, log=lambda m: run.log(m, always=True))
    bugs = 0
    for n in node_list:
        with open(n.log_path, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                if "BUG:" in line:
                    bugs += 1
                    if bugs <= 10:
                        run.log("%s: %s" % (n.name, line), always=True)
    if bugs:
        problems.append("%d BUG lines in the node logs" % bugs)
    c = run.counts
    faults = sum(v for k, v in c.items() if k in ("drop", "delay", "partition_oneway",
                                                  "partition_full", "reset", "kill"))
    summary = {
        "seed": args.seed, "nodes": len(node_list), "duration_s": args.duration,
        "faults": faults,
        "faults_by_kind": " ".join("%s=%d" % (k, c.get(k, 0)) for k in (
            "drop", "delay", "partition_oneway", "partition_full", "reset", "kill",
            "clock_skew")),
        "commits": sum(r.commits for r in records),
        "writes": sum(len(r.writes) for r in records),
        "drops_db": sum(len(r.drops) for r in records),
        "empties_db": sum(r.empties for r in records),
        "bug_lines": bugs,
        "aborted_txns": sum(r.aborts for r in records),
        "txn_errors": sum(r.errors for r in records),
        "commit_failures": sum(r.commit_failures for r in records),
        "superseded_at_commit": sum(r.superseded for r in records),
        "recovered_after_kill": sum(r.recovered for r in records),
        "keys_checked": nkeys, "ambiguous_keys": ambiguous,
        "proxy": " ".join("%s=%d" % kv for kv in sorted(proxy.stats.items())),
        "converged": converged, "convergence_s": round(conv_s, 1),
        "divergences": divergences + (0 if converged else 1),
    }
    print("SUMMARY " + " ".join("%s=%s" % (k, str(v).replace(" ", ",")) for k, v in
                                summary.items()), flush=True)
    if divergences:
        problems.append("%d divergences from the oracle" % divergences)
    if problems:
        run.log("FAILED: %s" % "; ".join(problems), always=True)
        for n in node_list:
            print(n.log_tail(8))
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
