"""Driver for multi-node replication tests: repl_node processes on loopback.

A Cluster owns a temporary directory and the nodes started in it. Every node
runs compat-tests/cluster/repl_node (linked with libtrlmdb) on its own
environment ROOT/<node name>/db: the same basename everywhere, because
environments are matched across nodes by the last component of their path.
Replication is configured by TRLMDB_* variables; ports are 0 (ephemeral)
unless a node is restarted on the port it had.
"""

import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compat_common import clean_env  # noqa: E402

DEFAULT_SECRET = "cluster-test-secret"


class ClusterError(AssertionError):
    """A check of the cluster failed (the test fails)."""


class NodeError(ClusterError):
    """A node did not answer, answered an error, or died."""


class ConvergeError(ClusterError):
    """Nodes did not reach the same digest in time, or verify failed."""


class WaitError(ClusterError):
    """A condition polled for did not hold in time."""


def wait_for(pred, timeout, what, interval=0.02):
    """Polls pred() until it returns a true value; returns it. WaitError
    (naming `what` and the last value) after timeout seconds."""
    deadline = time.monotonic() + timeout
    last = None
    while True:
        last = pred()
        if last:
            return last
        if time.monotonic() >= deadline:
            raise WaitError("timed out after %.1fs waiting for %s" % (timeout, what))
        time.sleep(interval)


def wait_eq(fn, want, timeout, what, interval=0.02):
    """Polls fn() until it returns want; WaitError with the last value seen."""
    seen = []

    def pred():
        seen[:] = [fn()]
        return seen[0] == want
    try:
        wait_for(pred, timeout, what, interval)
    except WaitError as e:
        raise WaitError("%s: last %r, want %r" % (e, seen[0] if seen else None, want)) from None


def parse_status(line):
    """'running=1 port=P ...' -> {'running': 1, 'port': P, ...}."""
    out = {}
    for field in line.split():
        k, _, v = field.partition("=")
        if not v:
            raise NodeError("malformed status line: %r" % line)
        out[k] = int(v)
    return out


def enc(b):
    """A bytes or str key/value in repl_node's token encoding."""
    if isinstance(b, str):
        b = b.encode()
    literal = (len(b) > 0 and not b.startswith(b"hex:")
               and all(0x20 < c < 0x7F for c in b))
    return b.decode() if literal else "hex:" + b.hex()


class Commands:
    """repl_node commands on one environment; needs cmd(line, timeout),
    name and log_tail() (Node: its first environment; EnvView: another)."""

    def ok(self, line, timeout=60):
        """A command that must succeed; returns the rest of the OK line (the
        commit's ts in hex for writes)."""
        ans = self.cmd(line, timeout)
        if not (ans == "OK" or ans.startswith("OK ")):
            raise NodeError("%s: %r answered %r" % (self.name, line[:80], ans))
        return ans[3:]

    def put(self, db, key, value):
        return self.ok("put %s %s %s" % (db, enc(key), enc(value)))

    def putdup(self, db, key, value):
        return self.ok("putdup %s %s %s" % (db, enc(key), enc(value)))

    def delete(self, db, key):
        return self.ok("del %s %s" % (db, enc(key)))

    def get(self, db, key):
        """The value (str, hex: form for binary) or None."""
        ans = self.cmd("get %s %s" % (db, enc(key)))
        if ans.startswith("ERR"):
            raise NodeError("%s: get %s %r: %s" % (self.name, db, key, ans))
        return None if ans == "NOTFOUND" else ans

    def getdups(self, db, key):
        ans = self.cmd("getdups %s %s" % (db, enc(key)))
        if ans.startswith("ERR"):
            raise NodeError("%s: getdups %s %r: %s" % (self.name, db, key, ans))
        return None if ans == "NOTFOUND" else ans.split(" ")

    def simple(self, line):
        """A read command whose answer is a word or NOTFOUND (count, flags, sum)."""
        ans = self.cmd(line)
        if ans.startswith("ERR"):
            raise NodeError("%s: %s: %s" % (self.name, line, ans))
        return None if ans == "NOTFOUND" else ans

    def status(self):
        ans = self.cmd("status")
        if ans.startswith("ERR"):
            raise NodeError("%s: status: %s" % (self.name, ans))
        return parse_status(ans)

    def sync(self, ms=5000):
        return int(self.cmd("sync %d" % ms, timeout=ms / 1000 + 30))

    def wait_connected(self, n, timeout=20):
        try:
            return wait_for(lambda: self.status()["connected"] >= n, timeout,
                            "%s to have %d connected peer(s)" % (self.name, n))
        except WaitError as e:
            raise WaitError("%s; status %s\n%s"
                            % (e, self.cmd("status"), self.log_tail())) from None


class Node(Commands):
    """One repl_node process on the environment ROOT/<name>/db.

    peers: Nodes (their current port is used) or "host:port" strings.
    env: extra environment variables (TRLMDB_*, REPL_NODE_MAPSIZE); a value
    of None removes the variable."""

    def __init__(self, cluster, name, peers=(), secret=DEFAULT_SECRET, env=None,
                 listen="127.0.0.1:0", dbname="db", env_dir=None, replicating=True):
        self.cluster = cluster
        self.name = name
        self.peers = list(peers)
        self.secret = secret
        self.extra_env = dict(env or {})
        self.listen = listen
        # env_dir: another path than ROOT/<name>/<dbname> (a second process
        # on a node's environment); replicating=False: the process is not
        # expected to run the replicator (start() does not wait for a port).
        self.env_dir = env_dir or os.path.join(cluster.root, name, dbname)
        self.replicating = replicating
        self.on_spawn = None  # called with the pid right after each start's fork
        self.log_path = os.path.join(cluster.root, name + ".stderr")
        self.proc = None
        self._port = 0
        self._lines = None
        self._log = None

    # --- process control -------------------------------------------------
    def environ(self):
        """The TRLMDB_* configuration this node runs with (also handed to
        other programs writing its environment)."""
        e = clean_env()
        e["TRLMDB_LISTEN"] = self.listen
        peers = [p if isinstance(p, str) else "127.0.0.1:%d" % p.port for p in self.peers]
        if peers:
            e["TRLMDB_PEERS"] = ",".join(peers)
        if self.secret is not None:
            e["TRLMDB_SECRET"] = self.secret
        e["TRLMDB_LOG"] = "debug"
        e["TRLMDB_NODE"] = self.name
        for k, v in self.extra_env.items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = str(v)
        return e

    def start(self, timeout=20):
        os.makedirs(os.path.dirname(self.env_dir), exist_ok=True)
        self._log = open(self.log_path, "ab")
        stamp = "==== start %s (%s)\n" % (self.name, time.strftime("%T"))
        self._log.write(stamp.encode())
        self._log.flush()
        self.proc = subprocess.Popen([self.cluster.node_bin, self.env_dir], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._log,
                                     env=self.environ())
        if self.on_spawn:
            self.on_spawn(self.proc.pid)
        self._lines = queue.Queue()
        threading.Thread(target=self._reader, args=(self.proc, self._lines), daemon=True).start()
        first = self._next_line(timeout, "start")
        if first != "READY":
            raise NodeError("%s did not start: %s\n%s" % (self.name, first, self.log_tail()))
        self._port = 0
        if self.replicating:
            self.wait_port(timeout)
        return self

    @staticmethod
    def _reader(proc, lines):
        for raw in proc.stdout:
            lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        lines.put(None)

    def _next_line(self, timeout, what):
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            raise NodeError("%s: no answer to %r within %.0fs\n%s"
                            % (self.name, what, timeout, self.log_tail())) from None
        if line is None:
            self._lines.put(None)
            rc = self.proc.wait()
            raise NodeError("%s exited (rc %s) while answering %r\n%s"
                            % (self.name, rc, what, self.log_tail()))
        return line

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout=15):
        """quit: closes the environment (bounded flush); the exit must be clean."""
        if not self.alive():
            return
        self.send_lines(["quit"])
        bye = self._next_line(timeout, "quit")
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise NodeError("%s did not exit after quit within %ds" % (self.name, timeout))
        self._close_files()
        if bye != "BYE" or rc != 0:
            raise NodeError("%s: quit answered %r, exit status %s\n%s"
                            % (self.name, bye, rc, self.log_tail()))

    def kill(self):
        """SIGKILL: no mdb_env_close, no flush."""
        if self.alive():
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._close_files()

    def exit_noclose(self, timeout=15):
        """exit(0) without mdb_env_close. Returns (exit status as Popen gives
        it: negative for a signal, seconds the exit took after the answer)."""
        ans = self.cmd("exitnoclose")
        t0 = time.monotonic()
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise NodeError("%s still running %ds after exit(0) without mdb_env_close\n%s"
                            % (self.name, timeout, self.log_tail()))
        took = time.monotonic() - t0
        self._close_files()
        if ans != "EXITING":
            raise NodeError("%s: exitnoclose answered %r" % (self.name, ans))
        return rc, took

    def open_env(self, env_dir):
        """Opens one more environment in this process; an EnvView on it."""
        os.makedirs(os.path.dirname(env_dir), exist_ok=True)
        ans = self.cmd("open %s" % env_dir)
        if not ans.startswith("OK "):
            raise NodeError("%s: open %s: %s\n%s" % (self.name, env_dir, ans, self.log_tail()))
        return EnvView(self, int(ans[3:]), env_dir)

    def _close_files(self):
        if self.proc and self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self._log:
            self._log.close()
            self._log = None

    def restart(self, keep_port=True, **changes):
        """Starts again on the same environment. keep_port: listen on the
        port it had, so peers configured with it find it again. changes:
        new values for secret, env (merged), peers, listen."""
        if self.alive():
            raise NodeError("%s: restart while running" % self.name)
        if keep_port and self._port and "listen" not in changes:
            self.listen = "127.0.0.1:%d" % self._port
        for k, v in changes.items():
            if k == "env":
                self.extra_env.update(v)
            else:
                setattr(self, k, v)
        return self.start()

    # --- commands ----------------------------------------------------------
    def send_lines(self, lines):
        """Writes commands without reading the answers (see answers())."""
        try:
            self.proc.stdin.write("".join(l + "\n" for l in lines).encode())
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as e:
            raise NodeError("%s: cannot send %r: %s\n%s"
                            % (self.name, lines[:1], e, self.log_tail())) from None

    def answers(self, n, timeout=60, what="pipelined commands"):
        return [self._next_line(timeout, what) for _ in range(n)]

    def cmd(self, line, timeout=60):
        self.send_lines([line])
        return self._next_line(timeout, line[:80])

    @property
    def port(self):
        if not self._port:
            raise NodeError("%s has no port yet" % self.name)
        return self._port

    def wait_port(self, timeout=20):
        def bound():
            st = self.status()
            return st["running"] == 1 and st["port"] != 0 and st["port"]
        try:
            self._port = wait_for(bound, timeout, "%s to listen" % self.name, 0.02)
        except WaitError as e:
            raise NodeError("%s: %s; status %s\n%s"
                            % (self.name, e, self.cmd("status"), self.log_tail())) from None
        return self._port

    # --- logs ----------------------------------------------------------------
    def log_text(self, since=0):
        """The node's stderr (all starts), from byte offset `since` on."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(since)
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_mark(self):
        """An offset for log_text(since=...): what is logged from now on."""
        try:
            return os.path.getsize(self.log_path)
        except FileNotFoundError:
            return 0

    def log_tail(self, n=25):
        lines = self.log_text().splitlines()
        return "\n".join("    [%s] %s" % (self.name, l) for l in lines[-n:])


class EnvView(Commands):
    """One more environment opened in a Node's process (repl_node `open`):
    the same commands, prefixed "@<index> " on the node's stdin."""

    def __init__(self, node, index, env_dir):
        self.node = node
        self.index = index
        self.env_dir = env_dir
        self.name = "%s@%d" % (node.name, index)

    def alive(self):
        return self.node.alive()

    def send_lines(self, lines):
        self.node.send_lines(["@%d %s" % (self.index, l) for l in lines])

    def answers(self, n, timeout=60, what="pipelined commands"):
        return self.node.answers(n, timeout, what)

    def cmd(self, line, timeout=60):
        return self.node.cmd("@%d %s" % (self.index, line), timeout)

    def log_tail(self, n=25):
        return self.node.log_tail(n)


def rss_anon_kib(pid):
    """RssAnon of a process in KiB (/proc/PID/status), None once it is gone."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1])
    except (FileNotFoundError, ProcessLookupError):
        return None
    return None


class RssSampler:
    """Samples RssAnon of some processes every `interval` seconds on a
    thread, keeping each one's peak (KiB) and the sample count."""

    def __init__(self, pids=(), interval=0.05):
        self.interval = interval
        self.peak = {}
        self.samples = 0
        self._mu = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        for p in pids:
            self.add(p)

    def add(self, pid):
        """Samples pid too from now on (a Node's on_spawn)."""
        v = rss_anon_kib(pid)
        with self._mu:
            self.peak[pid] = max(self.peak.get(pid, 0), v or 0)

    def _run(self):
        while not self._stop.is_set():
            with self._mu:
                pids = list(self.peak)
            for p in pids:
                v = rss_anon_kib(p)
                with self._mu:
                    if v is not None and v > self.peak[p]:
                        self.peak[p] = v
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        return False


class Cluster:
    """Paths of the programs, the temporary root, the nodes; a context manager
    that stops every node (and removes the root when the test passed)."""

    def __init__(self, args, label):
        self.node_bin = args.node
        self.lib = args.lib
        self.cli = args.cli
        self.utils_bin = args.utils_bin
        self.python = args.python
        os.makedirs(args.workdir, exist_ok=True)
        self.root = tempfile.mkdtemp(prefix=label + ".", dir=args.workdir)
        self.nodes = []
        self.keep = bool(os.environ.get("CLUSTER_KEEP"))

    def node(self, name, peers=(), start=True, **kw):
        n = Node(self, name, peers=peers, **kw)
        self.nodes.append(n)
        return n.start() if start else n

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for n in self.nodes:
            if n.alive():
                try:
                    n.stop(timeout=10) if exc_type is None else n.kill()
                except ClusterError:
                    n.kill()
                    if exc_type is None:
                        raise
        if exc_type is None and not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)
        else:
            print("kept %s" % self.root)
        return False

    # --- the trlmdb command --------------------------------------------------
    def run_cli(self, *args, timeout=60):
        return subprocess.run([self.cli] + list(args), capture_output=True, env=clean_env(),
                              timeout=timeout)

    def digest(self, env_dir):
        r = self.run_cli("digest", env_dir)
        if r.returncode != 0:
            return "error rc %d: %s" % (r.returncode, r.stderr.decode(errors="replace").strip())
        return r.stdout.decode().strip()

    def verify(self, env_dir):
        r = self.run_cli("verify", env_dir)
        return r.returncode, (r.stdout + r.stderr).decode(errors="replace").strip()

    # --- convergence -----------------------------------------------------------
    def wait_converged(self, nodes, timeout=30):
        """Waits until every node's environment has the same `trlmdb digest`
        (the digest reads concurrently with the writers, as any LMDB reader
        may), then requires `trlmdb verify` to pass on each. nodes: Nodes or
        environment paths. Running nodes are first asked to sync (wait for
        their peers' acknowledgements), which only shortens the wait."""
        envs = [n.env_dir if isinstance(n, Commands) else n for n in nodes]
        running = [n for n in nodes if isinstance(n, Commands) and n.alive()]
        for n in running:
            n.send_lines(["sync %d" % int(min(timeout, 10) * 1000)])
        for n in running:
            n.answers(1, timeout=min(timeout, 10) + 30, what="sync")
        deadline = time.monotonic() + timeout
        while True:
            digests = [self.digest(e) for e in envs]
            if len(set(digests)) == 1 and not digests[0].startswith("error"):
                break
            if time.monotonic() >= deadline:
                detail = "\n".join("  %s: %s" % (e, d) for e, d in zip(envs, digests))
                for n in running:
                    detail += "\n  %s status: %s" % (n.name, n.cmd("status"))
                for n in running:
                    detail += "\n" + n.log_tail(15)
                raise ConvergeError("no convergence within %ds:\n%s" % (timeout, detail))
            time.sleep(0.1)
        for e in envs:
            rc, out = self.verify(e)
            if rc != 0:
                raise ConvergeError("trlmdb verify %s failed (rc %d):\n%s" % (e, rc, out[-3000:]))
        return digests[0]

    def wait_value(self, node, db, key, want, timeout=15):
        """Polls node's `get` until it equals want (None: absent)."""
        want_s = None if want is None else enc(want)
        seen = []

        def check():
            v = node.get(db, key)
            seen[:] = [v]
            return v == want_s
        try:
            wait_for(check, timeout, "%s: %s/%r == %r" % (node.name, db, key, want_s))
        except WaitError as e:
            raise WaitError("%s (last %r); status %s\n%s"
                            % (e, seen[0] if seen else None, node.cmd("status"),
                               node.log_tail(15))) from None

    def mesh(self, names=("A", "B", "C"), **kw):
        """Nodes each peering with every node started before it (connections
        are bidirectional: a full mesh), all connected. kw: Node options
        shared by every node."""
        nodes = []
        for name in names:
            nodes.append(self.node(name, peers=list(nodes), **kw))
        return self.wait_mesh(nodes)

    def wait_mesh(self, nodes, timeout=20):
        """Waits until each node has a session with every other one (after
        a start or restart that mesh() does not cover); returns nodes."""
        for n in nodes:
            n.wait_connected(len(nodes) - 1, timeout)
        return nodes
