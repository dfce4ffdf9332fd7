#!/usr/bin/python3
"""Multi-node replication tests (issue 3, "Tests"): test_cluster.py CASE ...

Each case starts repl_node processes on loopback (port 0) in its own
temporary directory, exercises one aspect of replication, and ends, wherever
the nodes are meant to converge, with `trlmdb digest` equal on every node and
`trlmdb verify` clean on each (Cluster.wait_converged). Exit status 0 when
the case holds, 1 with the reason (and the nodes' stderr tails) when not.
Node stderr (TRLMDB_LOG=debug) is kept in the case's directory on failure.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import traceback

from cluster import (DEFAULT_SECRET, Cluster, ClusterError, ConvergeError, RssSampler,
                     WaitError, enc, rss_anon_kib, wait_eq, wait_for)

CASES = {}


def case(fn):
    CASES[fn.__name__] = fn
    return fn


def check(cond, msg):
    if not cond:
        raise ClusterError(msg)


def ts_of(ok_rest):
    """The ts hex a write's OK answer carries, or None if the node had none."""
    return None if ok_rest in ("", "-") else ok_rest


def ts_seconds(ts_hex):
    """Wall-clock seconds of an extended ts (DESIGN.md section 1)."""
    b = bytes.fromhex(ts_hex)
    return struct.unpack(">I", b[:4])[0] + struct.unpack(">I", b[4:8])[0] / 2.0 ** 32


def check_shifted(node, seconds):
    """node's clock must run `seconds` off: its first write (nothing received
    yet) carries a ts that far from the real time. Guards the skew cases
    against a TRLMDB_TEST_CLOCK_SHIFT_MS that does nothing."""
    ts = ts_of(node.put("-", "clock-probe-" + node.name, "1"))
    check(ts is not None, "%s: no ts for its write" % node.name)
    off = ts_seconds(ts) - time.time()
    check(abs(off - seconds) < 1.5, "%s: clock shifted by %+.1fs, want %+.1fs"
          % (node.name, off, seconds))


# --------------------------------------------------------------------------
@case
def two_nodes(c):
    a, b = c.mesh(("A", "B"))

    a.put("-", "ka1", "va1")
    a.put("t", "k1", "from-a")
    b.put("-", "kb1", "vb1")
    b.put("t", "k2", "from-b")
    a.put("-", b"\x00\xff\x10", b"\x00\x01\x02 \x03")  # binary key and value
    c.wait_value(b, "-", "ka1", "va1")
    c.wait_value(b, "t", "k1", "from-a")
    c.wait_value(b, "-", b"\x00\xff\x10", b"\x00\x01\x02 \x03")
    c.wait_value(a, "-", "kb1", "vb1")
    c.wait_value(a, "t", "k2", "from-b")

    # Deletes both ways, of keys written on the other side.
    a.delete("-", "kb1")
    b.delete("t", "k1")
    c.wait_value(b, "-", "kb1", None)
    c.wait_value(a, "t", "k1", None)

    # Overwrites both ways.
    b.put("-", "ka1", "va1-by-b")
    c.wait_value(a, "-", "ka1", "va1-by-b")
    a.put("t", "k2", "k2-by-a")
    c.wait_value(b, "t", "k2", "k2-by-a")

    # A few thousand changes in both directions at once.
    a.send_lines(["bulk bulk_a 3000 a"])
    b.send_lines(["bulk bulk_b 3000 b"])
    check(a.answers(1) == ["OK"] and b.answers(1) == ["OK"], "bulk failed")
    wait_eq(lambda: b.simple("count bulk_a"), "3000", 20, "B to hold A's 3000 keys")
    wait_eq(lambda: a.simple("count bulk_b"), "3000", 20, "A to hold B's 3000 keys")
    check(b.get("bulk_a", "a00002999") == "a-v2999", "last bulk key of A wrong on B")

    c.wait_converged([a, b])
    sa, sb = a.status(), b.status()
    check(sa["applied"] >= 3000 and sb["applied"] >= 3000,
          "changes_applied too small: A %s, B %s" % (sa, sb))
    check(sa["sent"] > 0 and sa["received"] > 0 and sb["sent"] > 0 and sb["received"] > 0,
          "byte counters not counting: A %s, B %s" % (sa, sb))


@case
def mesh3(c):
    a, b, cc = c.mesh()
    nodes = [a, b, cc]
    for n in nodes:
        for i in range(20):
            n.put("-", "%s-main-%02d" % (n.name, i), "v%d-%s" % (i, n.name))
            n.put("shared", "k%02d" % i, "from-%s" % n.name if i % 3 == ord(n.name) % 3 else "x")
    cc.ok("bulk bulk_c 3000 c")
    for n in nodes:
        for m in nodes:
            if m is not n:
                c.wait_value(m, "-", "%s-main-19" % n.name, "v19-%s" % n.name)
    for n in (a, b):
        wait_eq(lambda: n.simple("count bulk_c"), "3000", 20,
                 "%s to hold C's 3000 keys" % n.name)
    c.wait_converged(nodes)
    for n in nodes:
        check(n.simple("count -") is not None, "main db count")
        check(n.status()["connected"] == 2, "%s lost a peer: %s" % (n.name, n.status()))


@case
def chain(c):
    a = c.node("A")
    b = c.node("B", peers=[a])
    cc = c.node("C", peers=[b])
    b.wait_connected(2)
    a.wait_connected(1)
    cc.wait_connected(1)

    a.put("-", "from-a", "1")
    c.wait_value(cc, "-", "from-a", "1")  # through B
    cc.put("t", "from-c", "2")
    c.wait_value(a, "t", "from-c", "2")
    a.delete("t", "from-c")
    c.wait_value(cc, "t", "from-c", None)
    cc.put("-", "from-a", "overwritten-by-c")
    c.wait_value(a, "-", "from-a", "overwritten-by-c")
    a.ok("bulk bulk_a 2000 a")
    wait_eq(lambda: cc.simple("count bulk_a"), "2000", 20, "C to hold A's 2000 keys")
    c.wait_converged([a, b, cc])
    check(a.status()["connected"] == 1 and cc.status()["connected"] == 1,
          "A and C must only see B: A %s, C %s" % (a.status(), cc.status()))


@case
def concurrent_same_key(c):
    nodes = c.mesh()
    # Round 1: each node writes every key once, all at about the same time.
    keys = ["k%02d" % i for i in range(20)]
    for n in nodes:
        n.send_lines(["put - %s from-%s" % (k, n.name) for k in keys])
    written = {k: {} for k in keys}  # key -> {value: ts}
    for n in nodes:
        for k, ans in zip(keys, n.answers(len(keys))):
            check(ans.startswith("OK"), "%s: put %s: %s" % (n.name, k, ans))
            written[k]["from-" + n.name] = ts_of(ans[3:])
    # Round 2: a burst of 50 writes of one hot key from every node.
    for n in nodes:
        n.send_lines(["put - hot %s-%d" % (n.name, i) for i in range(50)])
    written["hot"] = {}
    for n in nodes:
        for i, ans in enumerate(n.answers(50)):
            check(ans.startswith("OK"), "%s: put hot: %s" % (n.name, ans))
            written["hot"]["%s-%d" % (n.name, i)] = ts_of(ans[3:])

    c.wait_converged(nodes)
    for k, by_value in written.items():
        finals = {n.name: n.get("-", k) for n in nodes}
        check(len(set(finals.values())) == 1, "%s differs across nodes: %s" % (k, finals))
        final = finals["A"]
        check(final in by_value, "%s: final %r was never written" % (k, final))
        if all(by_value.values()):
            tss = sorted(by_value.values())
            check(len(set(tss)) == len(tss), "%s: two writes got the same ts: %s" % (k, by_value))
            newest = max(by_value, key=lambda v: by_value[v])
            check(final == newest, "%s: converged to %r (ts %s), but the newest write is %r "
                  "(ts %s)" % (k, final, by_value[final], newest, by_value[newest]))


@case
def put_vs_delete(c):
    a, b = c.mesh(("A", "B"))

    # Causal: a put, a delete after seeing it, a put after seeing the delete.
    a.put("-", "k", "v1")
    c.wait_value(b, "-", "k", "v1")
    b.delete("-", "k")
    c.wait_value(a, "-", "k", None)
    a.put("-", "k", "v2")
    c.wait_value(b, "-", "k", "v2")

    # Concurrent: 20 keys present on both; one side deletes while the other
    # overwrites. The newer ts wins (delete ts has LSB 0, put ts LSB 1).
    keys = ["c%02d" % i for i in range(20)]
    a.send_lines(["put - %s base" % k for k in keys])
    check(all(x.startswith("OK") for x in a.answers(len(keys))), "base puts")
    for k in keys:
        c.wait_value(b, "-", k, "base")
    dels, puts = {}, {}
    for i, k in enumerate(keys):
        deleter, putter = (a, b) if i % 2 == 0 else (b, a)
        deleter.send_lines(["del - %s" % k])
        putter.send_lines(["put - %s new-%s" % (k, putter.name)])
        dels[k] = deleter
        puts[k] = putter
    expect = {}
    # Every node answers in order; collect per node.
    per_node = {a.name: [], b.name: []}
    for i, k in enumerate(keys):
        per_node[dels[k].name].append(("del", k))
        per_node[puts[k].name].append(("put", k))
    ts = {}
    for n in (a, b):
        for (op, k), ans in zip(per_node[n.name], n.answers(len(per_node[n.name]))):
            check(ans.startswith("OK"), "%s: %s %s: %s" % (n.name, op, k, ans))
            ts[(op, k)] = ts_of(ans[3:])
    for k in keys:
        if ts[("del", k)] and ts[("put", k)]:
            expect[k] = None if ts[("del", k)] > ts[("put", k)] else "new-" + puts[k].name
    # Both sides delete the same key.
    a.put("-", "both", "x")
    c.wait_value(b, "-", "both", "x")
    a.send_lines(["del - both"])
    b.send_lines(["del - both"])
    a.answers(1)
    b.answers(1)

    c.wait_converged([a, b])
    for k in keys:
        va, vb = a.get("-", k), b.get("-", k)
        check(va == vb, "%s: A has %r, B has %r" % (k, va, vb))
        check(va in (None, "new-" + puts[k].name), "%s: unexpected %r" % (k, va))
        if k in expect:
            check(va == expect[k], "%s: converged to %r, but the newer op was %s (del ts %s, "
                  "put ts %s)" % (k, va, "del" if expect[k] is None else "put",
                                  ts[("del", k)], ts[("put", k)]))
    check(a.get("-", "both") is None and b.get("-", "both") is None, "double delete")
    check(a.get("-", "k") == "v2", "causal put after delete lost")


@case
def clock_skew_within_bound(c):
    a = c.node("A", env={"TRLMDB_MAX_SKEW_MS": 10000})
    b = c.node("B", peers=[a], env={"TRLMDB_MAX_SKEW_MS": 10000,
                                    "TRLMDB_TEST_CLOCK_SHIFT_MS": -3000})
    c.wait_mesh([a, b])
    check_shifted(b, -3.0)
    for i in range(5):
        ta = ts_of(a.put("-", "k", "a-%d" % i))
        c.wait_value(b, "-", "k", "a-%d" % i, timeout=10)
        # B's wall clock is 3 s behind: only the hybrid clock, advanced by
        # what B received, makes this causal overwrite newer than A's write.
        tb = ts_of(b.put("-", "k", "b-%d" % i))
        if ta and tb:
            check(tb > ta, "B's overwrite got ts %s, not newer than A's %s" % (tb, ta))
        c.wait_value(a, "-", "k", "b-%d" % i, timeout=10)
    # The other direction needs no help, but must hold too.
    b.put("-", "j", "b")
    c.wait_value(a, "-", "j", "b")
    a.put("-", "j", "a")
    c.wait_value(b, "-", "j", "a")
    c.wait_converged([a, b])
    for n in (a, b):
        check(n.get("-", "k") == "b-4" and n.get("-", "j") == "a",
              "%s: k=%r j=%r" % (n.name, n.get("-", "k"), n.get("-", "j")))


def expect_refused(c, a, b, seconds, pattern, what, marks=None):
    """A and B must stay unconnected for `seconds`, apply nothing from each
    other, and both logs (from `marks`, offsets of log_mark()) must have a
    line matching pattern (paths left out: the case directory's name would
    match)."""
    marks = marks or {}
    a.put("-", "from-a", "1")
    b.put("-", "from-b", "1")
    rx = re.compile(pattern, re.I)
    applied0 = {n.name: n.status()["applied"] for n in (a, b)}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for n in (a, b):
            st = n.status()
            check(st["connected"] == 0 and st["applied"] == applied0[n.name],
                  "%s: %s has a session or applied changes: %s" % (what, n.name, st))
        time.sleep(0.2)
    check(b.get("-", "from-a") is None and a.get("-", "from-b") is None,
          "%s: data crossed" % what)
    for n in (a, b):
        text = n.log_text(marks.get(n.name, 0)).replace(c.root, "<dir>")
        lines = [l for l in text.splitlines() if rx.search(l)]
        check(lines, "%s: %s's stderr says nothing matching /%s/:\n%s"
              % (what, n.name, pattern, n.log_tail(15)))
        print("  %s log: %s" % (n.name, lines[0][:200]))
    for n in (a, b):
        rc, out = c.verify(n.env_dir)
        check(rc == 0, "verify %s: %s" % (n.name, out))


def expect_joined(c, a, b):
    """Once the cause of expect_refused is gone (B restarted without it): B
    connects to A, the writes expect_refused made cross, and both converge."""
    b.wait_connected(1)
    c.wait_value(a, "-", "from-b", "1")
    c.wait_value(b, "-", "from-a", "1")
    c.wait_converged([a, b])


@case
def skew_beyond_bound(c):
    a = c.node("A", env={"TRLMDB_MAX_SKEW_MS": 60000})
    b = c.node("B", peers=[a], env={"TRLMDB_MAX_SKEW_MS": 60000,
                                    "TRLMDB_TEST_CLOCK_SHIFT_MS": 120000})
    check_shifted(b, 120.0)
    expect_refused(c, a, b, 4, r"clock|skew", "clock 120 s ahead, bound 60 s")
    # The refusal was the clock's doing: without the shift they converge.
    b.stop()
    b.restart(env={"TRLMDB_TEST_CLOCK_SHIFT_MS": None})
    expect_joined(c, a, b)


@case
def wrong_secret(c):
    a = c.node("A", secret="alpha-secret")
    b = c.node("B", peers=[a], secret="beta-secret")
    expect_refused(c, a, b, 3, r"auth|secret", "wrong secret")
    b.stop()
    marks = {"A": a.log_mark(), "B": b.log_mark()}
    b.restart(secret=None)
    expect_refused(c, a, b, 2, r"auth|secret", "no secret against a secret", marks)
    b.stop()
    b.restart(secret="alpha-secret")
    expect_joined(c, a, b)



class RecordingProxy:
    """Forwards one TCP port to a node's port and keeps every byte the node
    sends, as an eavesdropper on the path would see it."""

    def __init__(self, target_port):
        self.target = target_port
        self.seen = bytearray()
        self.lock = threading.Lock()
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", 0))
        self.srv.listen(8)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.srv.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            threading.Thread(target=self._pipe, args=(client, upstream, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, True), daemon=True).start()

    def _pipe(self, src, dst, record):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if record:
                    with self.lock:
                        self.seen += data
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def bytes_seen(self):
        with self.lock:
            return bytes(self.seen)


@case
def eavesdropper(c):
    """A peer with the wrong secret never learns a key or a value, and what a
    peer with the right one gets on the wire is encrypted."""
    key, value = b"secret-key-4711", b"TOP-SECRET-VALUE-0815"
    a = c.node("A", secret="alpha-secret")
    a.put("-", key.decode(), value.decode())
    wrong = RecordingProxy(a.port)
    b = c.node("B", peers=["127.0.0.1:%d" % wrong.port], secret="beta-secret")
    wait_eq(lambda: bool(re.search(r"auth|secret", b.log_text())), True, 15,
            "B to log the refusal")
    a.put("-", key.decode() + "-2", value.decode() + "-2")
    time.sleep(0.5)  # B keeps redialling: more chances to leak
    seen = wrong.bytes_seen()
    check(len(seen) > 0, "the proxy saw nothing: the test proves nothing")
    check(key not in seen and value not in seen,
          "A sent a key or value to a peer with the wrong secret")
    check(a.status()["applied"] == 0 and b.get("-", key.decode()) is None,
          "data crossed despite the wrong secret")

    right = RecordingProxy(a.port)
    cc = c.node("C", peers=["127.0.0.1:%d" % right.port], secret="alpha-secret")
    c.wait_value(cc, "-", key.decode(), value.decode())
    c.wait_value(cc, "-", key.decode() + "-2", value.decode() + "-2")
    seen = right.bytes_seen()
    check(len(seen) > len(value), "the proxy saw no traffic")
    check(key not in seen and value not in seen, "plaintext key or value on the wire")
    c.wait_converged([a, cc])

# --- garbage frames ---------------------------------------------------------
def varint(n):
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def frame(body):
    return struct.pack(">I", len(body)) + body


def hello(version=1, cluster=b"trlmdb", env=b"db", node=0x5A5A5A00, wall=None, kx=None):
    """A HELLO frame body as replicator/handshake.cc lays it out."""
    if wall is None:
        wall = int(time.time() * (1 << 32))
    kx = os.urandom(32) if kx is None else kx
    return (b"H" + b"TRLM" + struct.pack("<H", version) + varint(len(cluster)) + cluster
            + varint(len(env)) + env + struct.pack("<IQ", node, wall) + kx + os.urandom(32))


def expect_closed(port, payload, what, timeout=8):
    """Connects, sends payload; the node must close the connection. Returns
    what it sent before closing, and our end's port (to find its log line)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    mine = s.getsockname()[1]
    try:
        try:
            s.sendall(payload)
        except (BrokenPipeError, ConnectionResetError):
            return b"", mine
        s.settimeout(timeout)
        got = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    return got, mine
                got += chunk
        except ConnectionResetError:
            return got, mine
        except socket.timeout:
            raise ClusterError("%s: the node kept the connection open %ds" % (what, timeout))
    finally:
        s.close()


@case
def garbage_frames(c):
    a, b = c.mesh(("A", "B"))
    port = a.port
    rnd = random.Random(3)

    idle = socket.create_connection(("127.0.0.1", port))  # never says anything
    half = socket.create_connection(("127.0.0.1", port))  # half a frame, then silence
    half.sendall(b"\x00\x00\x01\x00" + b"H" * 10)

    bad = {}  # our port -> what we sent

    def garbage(payload, what):
        got, mine = expect_closed(port, payload, what)
        bad[mine] = what
        return got

    junk = bytes([0x80]) + bytes(rnd.getrandbits(8) for _ in range(65535))
    garbage(junk, "64 KiB of random bytes")
    small = bytes(rnd.getrandbits(8) for _ in range(200))
    garbage(frame(b"Z" + small), "a small frame of random bytes")
    garbage(b"\xff\xff\xff\xf0" + b"x" * 64, "announced length 4 GiB")
    garbage(struct.pack(">I", 40 << 20) + b"x" * 64, "announced length 40 MiB")
    garbage(struct.pack(">I", 4097) + b"H" * 64, "handshake frame over 4096")
    garbage(b"\x00\x00\x00\x00", "an empty frame")
    got = garbage(frame(hello(version=99)), "HELLO of protocol version 99")
    check(len(got) >= 5 and got[4:5] == b"E",
          "protocol version 99 refused without an ERROR frame to the peer (got %r)" % got[:40])
    print("  version 99 answer: %r" % got[5:200])
    garbage(frame(hello(cluster=b"other-cluster")), "HELLO of another cluster")
    garbage(frame(hello(env=b"no-such-env")), "HELLO for an unknown environment")
    # The acceptor may only use the peer's key once AUTH arrives: send one.
    garbage(frame(hello(kx=bytes(32))) + frame(b"A" + os.urandom(56)),
            "HELLO with an all-zero key")
    garbage(frame(hello()[:-7]), "truncated HELLO")
    garbage(frame(hello() + b"trailing"), "HELLO with trailing bytes")
    garbage(frame(hello()) + frame(b"A" + os.urandom(32 + 24)), "HELLO then a forged AUTH")
    garbage(frame(hello()) + frame(b"A" + os.urandom(5)), "HELLO then a short AUTH")
    # Each refusal is logged, with the address it came from.
    def unlogged():
        text = [l for l in a.log_text().splitlines() if "closed by the peer" not in l]
        return [w for p, w in bad.items()
                if not any("127.0.0.1:%d" % p in l for l in text)]
    try:
        wait_for(lambda: not unlogged(), 5, "A to log every bad connection")
    except WaitError:
        raise ClusterError("A's stderr has no line about: %s" % "; ".join(unlogged())) from None
    for _ in range(30):  # connections opened and dropped at once
        socket.create_connection(("127.0.0.1", port)).close()

    check(a.alive(), "A died")
    a.put("-", "after-garbage", "a")
    c.wait_value(b, "-", "after-garbage", "a")
    b.put("-", "after-garbage-b", "b")
    c.wait_value(a, "-", "after-garbage-b", "b")
    check(a.status()["connected"] == 1, "A lost its real peer: %s" % a.status())
    idle.close()
    half.close()
    check(a.alive(), "A died")
    c.wait_converged([a, b])


@case
def mesh_origin_dies(c):
    """In a mesh a node does not relay a change to a peer that has its own
    session with the change's origin. If the origin dies while streaming,
    the survivors must still end up equal: whoever loses its session with
    the origin re-synchronises with the others."""
    a, b, cc = c.mesh()
    for rnd in range(3):
        a.send_lines(["fill f%d 30000 100 %d" % (rnd, rnd + 7)])
        time.sleep(0.15 + 0.1 * rnd)
        a.kill()
        c.wait_converged([b, cc])
        nb, nc = b.simple("count f%d" % rnd), cc.simple("count f%d" % rnd)
        check(nb == nc, "round %d: B has %s keys of A's, C has %s" % (rnd, nb, nc))
        a.restart()
        c.wait_mesh([a, b, cc])
        c.wait_converged([a, b, cc])
    logs = b.log_text() + cc.log_text()
    check("re-synchronising" in logs, "B and C never re-synchronised after losing A")


@case
def bad_config(c):
    """A typo in the replication settings turns replication off with one clear
    line on stderr; the program itself works as with LMDB, bookkeeping
    included."""
    cases = [
        ({"TRLMDB_PEERS": "localhost:x"}, r"TRLMDB_PEERS.*not host:port"),
        ({"TRLMDB_LISTEN": "0.0.0.0:0", "TRLMDB_SECRET": None}, r"needs a cluster secret"),
        ({"TRLMDB_LOG": "loud"}, r"TRLMDB_LOG"),
    ]
    for i, (env, pattern) in enumerate(cases):
        n = c.node("bad%d" % i, env=env, replicating=False)
        n.put("-", "k", "v%d" % i)
        check(n.get("-", "k") == "v%d" % i, "case %d: the program's write failed" % i)
        st = n.status()
        check(st["running"] == 0, "case %d: a replicator runs despite %s: %s" % (i, env, st))
        log = n.log_text()
        lines = [l for l in log.splitlines() if "replication is off" in l]
        check(len(lines) == 1 and re.search(pattern, lines[0]),
              "case %d: expected one clear line matching %r, got:\n%s" % (i, pattern, log))
        n.stop()
        c.verify(n.env_dir)


@case
def kill_restart(c):
    a, b, cc = c.mesh()
    nodes = [a, b, cc]
    a.ok("bulk bulk_a 1000 a")
    b.ok("bulk bulk_b 1000 b")
    c.wait_converged(nodes)

    # B commits and dies at once: its last commit may not have left; catch-up
    # after the restart must still deliver it.
    b.put("-", "b-last-words", "1")
    b.ok("bulk bulk_b2 500 b2")
    b.kill()
    a.ok("bulk bulk_a2 2000 a2")
    for i in range(0, 1000, 7):
        a.delete("bulk_a", "a%08d" % i)
    cc.put("-", "c-while-b-dead", "1")
    cc.ok("drop bulk_b 1")
    b.restart()
    c.wait_mesh(nodes)
    c.wait_value(b, "-", "c-while-b-dead", "1")
    c.wait_value(a, "-", "b-last-words", "1")
    wait_eq(lambda: b.simple("count bulk_a2"), "2000", 30, "B to catch up A's 2000 keys")
    wait_eq(lambda: a.simple("count bulk_b2"), "500", 30, "A to catch up B's last 500 keys")
    c.wait_converged(nodes)
    check(b.simple("count bulk_b") is None, "drop of bulk_b did not reach the restarted B")

    # A, the node nobody's TRLMDB_PEERS lists last, dies: B and C reconnect to it.
    a.kill()
    b.put("-", "b-while-a-dead", "1")
    cc.ok("bulk bulk_c 1000 c")
    a.restart()
    a.wait_connected(2)
    c.wait_value(a, "-", "b-while-a-dead", "1")
    c.wait_converged(nodes)


@case
def catch_up(c):
    # Two nodes that wrote apart (neither ever connected) meet: reconciliation
    # alone must bring both to the newest of everything, tombstones included.
    a = c.node("A")
    b = c.node("B")  # no peers yet
    b.put("-", "t", "b-old")  # older than A's put and delete of t
    b.put("-", "shared", "b-old")
    a.ok("bulk bulk_a 300 a")
    for i in range(0, 300, 10):
        a.delete("bulk_a", "a%08d" % i)
    a.put("-", "t", "a")
    a.delete("-", "t")
    a.put("-", "shared", "a-new")
    b.ok("bulk bulk_b 300 b")
    b.put("-", "b-newest", "1")
    b.stop()
    b.restart(peers=[a])
    c.wait_mesh([a, b])
    c.wait_converged([a, b])
    for n in (a, b):
        check(n.get("-", "t") is None,
              "%s: t=%r, A's tombstone is newer" % (n.name, n.get("-", "t")))
        check(n.get("-", "shared") == "a-new", "%s: shared=%r" % (n.name, n.get("-", "shared")))
        check(n.simple("count bulk_a") == "270" and n.simple("count bulk_b") == "300",
              "%s: bulk_a %s, bulk_b %s" % (n.name, n.simple("count bulk_a"),
                                           n.simple("count bulk_b")))
        check(n.get("-", "b-newest") == "1", "%s: b-newest" % n.name)


@case
def dupsort_drop_flags(c):
    a, b = c.mesh(("A", "B"))
    u64 = lambda n: struct.pack("<Q", n)  # noqa: E731
    u32 = lambda n: struct.pack("<I", n)  # noqa: E731

    a.ok("create dups DUPSORT")
    for v in ("v1", "v2", "v3", "v4", "v5"):
        a.putdup("dups", "k1", v)
    for v in ("x1", "x2"):
        a.putdup("dups", "k2", v)
    a.ok("create ints INTEGERKEY")
    for n in (1, 2, 300, 70000):
        a.put("ints", u64(n), "n%d" % n)
    a.ok("create idup DUPSORT|DUPFIXED|INTEGERDUP")
    for n in (5, 1, 9):
        a.putdup("idup", "k", u32(n))
    a.ok("create rev REVERSEKEY")
    a.put("rev", "abc", "1")
    a.put("rev", "xyz", "2")
    a.ok("create emptyrd DUPSORT|REVERSEDUP")  # a database with no data at all

    expected = {"dups": "DUPSORT", "ints": "INTEGERKEY", "idup": "DUPSORT|DUPFIXED|INTEGERDUP",
                "rev": "REVERSEKEY", "emptyrd": "DUPSORT|REVERSEDUP"}
    for db, fl in expected.items():
        wait_for(lambda: b.simple("flags " + db) is not None, 15, "B to have database " + db)
        check(b.simple("flags " + db) == fl,
              "B created %s with flags %s, A has %s" % (db, b.simple("flags " + db), fl))
    wait_eq(lambda: b.getdups("dups", "k1"), ["v1", "v2", "v3", "v4", "v5"], 15,
             "B to hold dups/k1's five duplicates")
    wait_eq(lambda: b.getdups("dups", "k2"), ["x1", "x2"], 15, "B dups/k2")
    wait_eq(lambda: b.simple("count ints"), "4", 15, "B ints")
    check(b.get("ints", u64(70000)) == "n70000", "ints 70000 on B")
    wait_eq(lambda: b.getdups("idup", "k"), [enc(u32(n)) for n in (1, 5, 9)], 15,
             "B idup/k in integer order")
    wait_eq(lambda: b.simple("count rev"), "2", 15, "B rev")
    check(b.simple("count emptyrd") == "0", "emptyrd on B")
    # The same flags read without the shim: python3-lmdb (whose flags() has
    # no reverse_dup) and the header of a real mdb_dump.
    py_flags = python_db_flags(c, b.env_dir, list(expected))
    want_py = {"dups": {"dupsort"}, "ints": {"integerkey"},
               "idup": {"dupsort", "dupfixed", "integerdup"}, "rev": {"reverse_key"},
               "emptyrd": {"dupsort"}}
    check(py_flags == {k: sorted(v) for k, v in want_py.items()},
          "python3-lmdb reads B's flags as %s" % py_flags)
    for db, fl in expected.items():
        got = dump_flags(c, b.env_dir, db)
        want = sorted(f.lower() for f in fl.split("|"))
        check(got == want, "mdb_dump -s %s on B: flags %s, want %s" % (db, got, want))

    # Duplicates changed on B travel back as the whole set.
    b.ok("deldup dups k1 v3")
    b.putdup("dups", "k1", "v9")
    wait_eq(lambda: a.getdups("dups", "k1"), ["v1", "v2", "v4", "v5", "v9"], 15,
             "A dups/k1 after B's deldup and putdup")
    b.delete("dups", "k2")  # all duplicates of a key
    c.wait_value(a, "dups", "k2", None)

    # drop(…, 0) empties and keeps the database and its flags; drop(…, 1) deletes it.
    a.ok("drop ints 0")
    wait_eq(lambda: b.simple("count ints"), "0", 15, "B ints emptied")
    check(b.simple("flags ints") == "INTEGERKEY", "ints flags after drop 0")
    # A's program holds a handle on idup when B deletes it. LMDB closes a
    # dropped database's handle at once, env-wide, so A's replicator empties
    # idup and leaves it in place (its marker a deletion: digest and verify
    # count it as dropped) until A's program closes the handle.
    b.ok("drop idup 1")
    wait_eq(lambda: a.simple("count idup"), "0", 15, "idup emptied on A")
    c.wait_converged([a, b])
    check(a.simple("count idup") == "0", "A's handle on idup stopped working")
    check(python_db_flags(c, a.env_dir, ["idup"])["idup"] is not None,
          "idup dropped under A's program's handle")
    a.ok("dbiclose idup")
    wait_eq(lambda: python_db_flags(c, a.env_dir, ["idup"])["idup"], None, 15,
            "idup deleted in A's environment once its handle was closed (python3-lmdb)")
    # Re-created with other flags on B: A's replicator, in a process that still
    # has the old handle, must create it anew with the new flags.
    b.ok("create idup 0")
    b.put("idup", "plain", "p")
    wait_eq(lambda: python_db_flags(c, a.env_dir, ["idup"], items=True)["idup"],
            [[], [["plain", "p"]]], 15, "idup re-created plain with plain=p in A's environment")
    check(dump_flags(c, a.env_dir, "idup") == [], "mdb_dump -s idup on A: flags %s"
          % dump_flags(c, a.env_dir, "idup"))
    a.put("ints", u64(7), "seven")
    c.wait_value(b, "ints", u64(7), "seven")
    c.wait_converged([a, b])


PY_FLAGS = r"""
import json, sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=32, readonly=True, lock=True)
items = sys.argv[2] == "1"
out = {}
with env.begin() as txn:
    for name in sys.argv[3:]:
        try:
            db = env.open_db(name.encode(), txn=txn, create=False)
        except lmdb.NotFoundError:
            out[name] = None
            continue
        flags = sorted(k for k, v in db.flags(txn).items() if v)
        if items:
            kv = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in txn.cursor(db=db)]
            out[name] = [flags, kv]
        else:
            out[name] = flags
print(json.dumps(out))
"""


def dump_flags(c, env_dir, db):
    """Database flags in the header of the real (unshimmed) mdb_dump."""
    from compat_common import clean_env
    r = subprocess.run([os.path.join(c.utils_bin, "mdb_dump"), "-s", db, env_dir],
                       capture_output=True, env=clean_env(), timeout=60)
    check(r.returncode == 0, "mdb_dump -s %s: %s" % (db, r.stderr.decode(errors="replace")))
    header = r.stdout.decode(errors="replace").split("HEADER=END")[0].splitlines()
    names = ("reversekey", "dupsort", "integerkey", "dupfixed", "integerdup", "reversedup")
    return sorted(l.split("=")[0] for l in header if l.split("=")[0] in names and
                  l.endswith("=1"))


def python_db_flags(c, env_dir, names, items=False):
    """{name: flags} as python3-lmdb (real liblmdb, no shim) reads them, None
    for a missing database; items: {name: [flags, [[key, value], ...]]}."""
    from compat_common import clean_env
    r = subprocess.run([c.python, "-c", PY_FLAGS, env_dir, "1" if items else "0"] + names,
                       capture_output=True,
                       env=clean_env(), timeout=60)
    check(r.returncode == 0, "python3-lmdb flags: %s" % r.stderr.decode(errors="replace"))
    return json.loads(r.stdout)


# --- unmodified programs --------------------------------------------------
PY_READ_WRITE = r"""
import json, sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=8, map_size=256 << 20)
people = env.open_db(b"people")
with env.begin(write=True) as txn:
    for kv in sys.argv[2:]:
        k, _, v = kv.partition("=")
        txn.put(k.encode(), v.encode(), db=people)
with env.begin() as txn:
    print(json.dumps({k.decode(): v.decode() for k, v in txn.cursor(db=people)}))
env.close()
"""


def dump_pairs(text):
    """Key/value pairs of `mdb_dump -p` output."""
    lines = text.splitlines()
    body = lines[lines.index("HEADER=END") + 1:lines.index("DATA=END")]
    return {body[i].strip(): body[i + 1].strip() for i in range(0, len(body), 2)}


@case
def lmdb_utils_and_python(c):
    a, b, cc = c.mesh()
    utils = c.utils_bin
    for t in ("mdb_load", "mdb_dump"):
        check(os.access(os.path.join(utils, t), os.X_OK), "no %s in %s" % (t, utils))

    def program(node, argv, stdin=None):
        # The program runs beside the node's repl_node (which holds the
        # replicator lock) with the same TRLMDB_* settings, under LD_PRELOAD:
        # it writes, stamps, and wakes the node's replicator.
        e = node.environ()
        e["LD_PRELOAD"] = c.lib
        r = subprocess.run(argv, input=stdin, capture_output=True, env=e, timeout=60)
        check(r.returncode == 0, "%s on %s: rc %d\n%s" % (os.path.basename(argv[0]), node.name,
                                                          r.returncode,
                                                          r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    # mdb_load on A (plain text input: key line, value line).
    program(a, [os.path.join(utils, "mdb_load"), "-T", "-s", "people", a.env_dir],
            stdin=b"alice\n30\nbob\n41\n")
    c.wait_value(b, "people", "alice", "30")
    c.wait_value(cc, "people", "bob", "41")
    dump_b = dump_pairs(program(b, [os.path.join(utils, "mdb_dump"), "-p", "-s", "people",
                                    b.env_dir]))
    check(dump_b == {"alice": "30", "bob": "41"}, "mdb_dump on B: %s" % dump_b)

    # python3-lmdb on C reads A's data and writes its own.
    seen_c = json.loads(program(cc, [c.python, "-c", PY_READ_WRITE, cc.env_dir, "carol=52"]))
    check(seen_c == {"alice": "30", "bob": "41", "carol": "52"}, "python on C: %s" % seen_c)
    c.wait_value(a, "people", "carol", "52")
    wait_eq(lambda: dump_pairs(program(b, [os.path.join(utils, "mdb_dump"), "-p", "-s",
                                           "people", b.env_dir])).get("carol"),
            "52", 15, "mdb_dump on B to show carol")
    # A second mdb_load on B overwrites a key written on A; python on A sees it.
    program(b, [os.path.join(utils, "mdb_load"), "-T", "-s", "people", b.env_dir],
            stdin=b"alice\n31\n")
    wait_eq(lambda: json.loads(program(a, [c.python, "-c", PY_READ_WRITE, a.env_dir]))
            .get("alice"), "31", 15, "python on A to read alice=31")
    c.wait_value(cc, "people", "alice", "31")
    c.wait_converged([a, b, cc])


@case
def big_value(c):
    a, b = c.mesh(("A", "B"), env={"REPL_NODE_MAPSIZE": 512 << 20})
    size = 16 << 20
    a.ok("putgen big k1 %d 1" % size, timeout=60)
    want = a.simple("sum big k1")
    check(want.startswith("%d " % size), "A's own value: %s" % want)
    wait_eq(lambda: b.simple("sum big k1"), want, 40, "B to hold A's 16 MiB value")
    b.ok("putgen big k1 %d 2" % size, timeout=60)
    b.ok("putgen big k2 %d 3" % (size + 4096), timeout=60)
    want1, want2 = b.simple("sum big k1"), b.simple("sum big k2")
    check(want1 != want, "putgen seeds must differ")
    wait_eq(lambda: (a.simple("sum big k1"), a.simple("sum big k2")), (want1, want2), 40,
            "A to hold B's 16 MiB values")
    c.wait_converged([a, b], timeout=40)


def write_conf(env_dir, node):
    os.makedirs(env_dir, exist_ok=True)
    with open(os.path.join(env_dir, "trlmdb.conf"), "w") as f:
        f.write("# cluster test\nlisten = 127.0.0.1:0\nsecret = %s\nlog = debug\nnode = %s\n"
                % (DEFAULT_SECRET, node))


def start_serve(c, env_dir, log_path):
    """`trlmdb serve env_dir` with no TRLMDB_* variables; returns the process
    and the port it printed."""
    import select
    from compat_common import clean_env
    with open(log_path, "ab") as log:
        serve = subprocess.Popen([c.cli, "serve", env_dir], stdout=subprocess.PIPE, stderr=log,
                                 env=clean_env())
    first = b""
    deadline = time.monotonic() + 20
    while not first.endswith(b"\n") and time.monotonic() < deadline:
        if select.select([serve.stdout], [], [], 0.2)[0]:
            chunk = os.read(serve.stdout.fileno(), 4096)
            if not chunk:
                break
            first += chunk
    m = re.search(rb"listening on [^\s]*:(\d+)", first)
    if not m:
        serve.kill()
        serve.wait()
        serve.stdout.close()
    check(m, "trlmdb serve printed %r (rc %s); stderr:\n%s"
          % (first, serve.poll(), open(log_path, errors="replace").read()[-2000:]))
    return serve, int(m.group(1))


@case
def serve_and_conf_file(c):
    # `trlmdb serve` hosts A's replicator; its settings live in A/db/trlmdb.conf
    # only, so the short-lived writers (mdb_load, mdb_dump under LD_PRELOAD,
    # no TRLMDB_* variables) find the same settings and wake it.
    import signal
    from compat_common import clean_env
    env_a = os.path.join(c.root, "A", "db")
    write_conf(env_a, "A")
    log_path = os.path.join(c.root, "A.stderr")
    serve, port = start_serve(c, env_a, log_path)
    try:
        b = c.node("B", peers=["127.0.0.1:%d" % port])
        b.wait_connected(1)

        def program(argv, stdin=None):
            e = clean_env()
            e["LD_PRELOAD"] = c.lib
            r = subprocess.run(argv, input=stdin, capture_output=True, env=e, timeout=60)
            check(r.returncode == 0, "%s: rc %d\n%s" % (os.path.basename(argv[0]), r.returncode,
                                                        r.stderr.decode(errors="replace")))
            return r.stdout.decode()

        program([os.path.join(c.utils_bin, "mdb_load"), "-T", "-s", "people", env_a],
                stdin=b"alice\n30\n")
        c.wait_value(b, "people", "alice", "30")
        b.put("people", "bob", "41")
        wait_eq(lambda: dump_pairs(program([os.path.join(c.utils_bin, "mdb_dump"), "-p", "-s",
                                            "people", env_a])).get("bob"),
                "41", 15, "mdb_dump on A to show B's write")
        c.wait_converged([env_a, b])
        check(serve.poll() is None, "trlmdb serve exited (rc %s)" % serve.poll())
        serve.send_signal(signal.SIGTERM)
        try:
            rc = serve.wait(15)
        except subprocess.TimeoutExpired:
            raise ClusterError("trlmdb serve still running 15 s after SIGTERM") from None
        check(rc == 0, "trlmdb serve exited %s after SIGTERM" % rc)
        rc, out = c.verify(env_a)
        check(rc == 0, "verify A after serve stopped: %s" % out)
    except BaseException:
        with open(log_path, errors="replace") as f:
            tail = f.read().splitlines()[-40:]
        print("--- A (trlmdb serve) stderr (last lines):\n"
              + "\n".join("    [A] " + l for l in tail))
        raise
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        serve.stdout.close()


PY_WRITE_KEYS = r"""
import sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=8, map_size=256 << 20)
db = env.open_db(b"people")
with env.begin(write=True) as txn:
    for i in range(int(sys.argv[3])):
        txn.put(("%s%05d" % (sys.argv[2], i)).encode(), b"v", db=db)
env.close()
"""

PY_RESERVED_COUNTS = r"""
import json, sys, lmdb
env = lmdb.open(sys.argv[1], max_dbs=8, readonly=True, lock=False)
out = {}
with env.begin() as txn:
    for name in ("_trlmdb_time", "_trlmdb_recent"):
        out[name] = txn.stat(env.open_db(name.encode(), txn=txn, create=False))["entries"]
print(json.dumps(out))
"""


# The presence protocol of shim/repl_presence.h: the replicator holding an
# environment keeps an OFD write lock on this byte of its trlmdb.lock.
PRESENCE_BYTE = 1 << 20

PY_HOLD_PRESENCE = r"""
import fcntl, os, struct, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.fcntl(fd, fcntl.F_OFD_SETLK, struct.pack("hhqqixxxx", fcntl.F_WRLCK, 0, int(sys.argv[2]), 1, 0))
print("held", flush=True)
sys.stdin.read()
"""


def presence_held(lock_path):
    import fcntl
    fd = os.open(lock_path, os.O_RDONLY)
    try:
        got = fcntl.fcntl(fd, fcntl.F_OFD_GETLK,
                          struct.pack("hhqqixxxx", fcntl.F_WRLCK, 0, PRESENCE_BYTE, 1, 0))
        return struct.unpack("hhqqixxxx", got)[0] != fcntl.F_UNLCK
    finally:
        os.close(fd)


@case
def unshipped_without_replicator(c):
    # _trlmdb_recent queues changes for a running replicator. While none holds
    # the environment, a commit clears what earlier commits left there (from
    # 64 entries on) and keeps its own; while one does, writers clear nothing
    # (the replicator removes what its peers acknowledged). `trlmdb serve`
    # announces itself, a killed one stops counting at once, and changes that
    # were cleared reach peers by reconciliation once a replicator runs.
    import signal
    from compat_common import clean_env
    env_a = os.path.join(c.root, "A", "db")
    os.makedirs(env_a)
    lock_path = os.path.join(env_a, "trlmdb.lock")
    log_path = os.path.join(c.root, "A.stderr")

    def write(prefix, n):  # no trlmdb.conf yet: the writer replicates nothing
        e = clean_env()
        e["LD_PRELOAD"] = c.lib
        r = subprocess.run([c.python, "-c", PY_WRITE_KEYS, env_a, prefix, str(n)],
                           capture_output=True, env=e, timeout=60)
        check(r.returncode == 0, "python3-lmdb write: %s" % r.stderr.decode(errors="replace"))

    def counts():  # read by the real liblmdb, no shim
        r = subprocess.run([c.python, "-c", PY_RESERVED_COUNTS, env_a], capture_output=True,
                           env=clean_env(), timeout=60)
        check(r.returncode == 0, "python3-lmdb stat: %s" % r.stderr.decode(errors="replace"))
        got = json.loads(r.stdout)
        return got["_trlmdb_time"], got["_trlmdb_recent"]

    # The people database's marker is one more stamp in the first commit.
    write("a", 200)
    check(counts() == (201, 201), "after the first commit: time/recent %s" % (counts(),))
    write("b", 1)
    check(counts() == (202, 1), "no replicator: the second commit must clear the first's "
          "entries and keep its own; time/recent %s" % (counts(),))

    holder = subprocess.Popen([c.python, "-c", PY_HOLD_PRESENCE, lock_path, str(PRESENCE_BYTE)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=clean_env())
    try:
        check(holder.stdout.readline().strip() == b"held", "the presence holder did not start")
        write("c", 100)
        write("d", 1)
        check(counts() == (303, 102), "a replicator is present: writers may clear nothing; "
              "time/recent %s" % (counts(),))
    finally:
        holder.kill()
        holder.wait()
        holder.stdin.close()
        holder.stdout.close()
    write("e", 1)
    check(counts() == (304, 1), "the replicator is gone: the next commit must clear; "
          "time/recent %s" % (counts(),))
    rc, out = c.verify(env_a)
    check(rc == 0, "verify A: %s" % out)

    write_conf(env_a, "A")
    serve, port = start_serve(c, env_a, log_path)
    try:
        check(presence_held(lock_path), "trlmdb serve does not announce its presence")
        serve.send_signal(signal.SIGKILL)
        serve.wait(15)
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        serve.stdout.close()
    check(not presence_held(lock_path), "a killed trlmdb serve still counts as present")

    # Everything, cleared or not, reaches a peer once a replicator runs again.
    serve, port = start_serve(c, env_a, log_path)
    try:
        b = c.node("B", peers=["127.0.0.1:%d" % port])
        b.wait_connected(1)
        wait_eq(lambda: b.simple("count people"), "303", 30, "B to catch up A's 303 keys")
        c.wait_converged([env_a, b])
        check(presence_held(lock_path), "trlmdb serve does not announce its presence")
        serve.send_signal(signal.SIGTERM)
        check(serve.wait(15) == 0, "trlmdb serve exited %s after SIGTERM" % serve.poll())
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
        serve.stdout.close()
    check(not presence_held(lock_path), "a stopped trlmdb serve still counts as present")


# --- robustness and the process model (issue 3, "Robustness") ----------------
CRASH_RX = re.compile(r"terminate called|Sanitizer|double free|corrupted|Segmentation|Aborted",
                      re.I)


def check_no_crash_text(node, since=0):
    bad = [l for l in node.log_text(since).splitlines() if CRASH_RX.search(l)]
    check(not bad, "%s's stderr reports a crash: %s" % (node.name, bad[:3]))


@case
def exit_without_close(c):
    # exit(0) without mdb_env_close: the status must be 0 (no crash in the
    # atexit flush), the exit bounded, and nothing lost: what the flush did
    # not ship, catch-up ships after the restart.
    a, b = c.mesh(("A", "B"))
    a.ok("bulk ex_a 2000 a")
    a.put("-", "a-last", "1")
    rc, took = a.exit_noclose()
    check(rc == 0, "A: exit(0) without mdb_env_close ended with status %s (negative: the "
          "signal)\n%s" % (rc, a.log_tail()))
    check(took < 5, "A took %.1fs to exit: the flush at exit must be bounded (<= 2 s)" % took)
    flushed = b.get("-", "a-last") == "1" and b.simple("count ex_a") == "2000"
    print("  A exited (status 0) %.2fs after exitnoclose; B already held every write: %s"
          % (took, flushed))
    b.put("-", "b-while-a-gone", "1")
    a.restart()
    a.wait_connected(1)
    c.wait_value(a, "-", "b-while-a-gone", "1")
    wait_eq(lambda: b.simple("count ex_a"), "2000", 20, "B to hold A's 2000 keys")
    check(b.get("-", "a-last") == "1", "B lost A's last write")
    c.wait_converged([a, b])

    # The same with a peer that never acknowledges (SIGSTOP): the exit must
    # still be bounded and clean; catch-up delivers afterwards.
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        a.ok("bulk ex_a2 1000 a2")
        a.put("-", "a-last2", "1")
        rc, took = a.exit_noclose()
        check(rc == 0, "A (peer stopped): exit status %s\n%s" % (rc, a.log_tail()))
        check(took < 5, "A (peer stopped) took %.1fs to exit: the flush must be bounded" % took)
        print("  with B stopped: A exited (status 0) in %.2fs" % took)
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    a.restart()
    a.wait_connected(1)
    wait_eq(lambda: b.simple("count ex_a2"), "1000", 20, "B to hold A's 1000 later keys")
    c.wait_value(b, "-", "a-last2", "1")
    c.wait_converged([a, b])
    check_no_crash_text(a)


def become_subreaper():
    """Orphans of our children (a repl_node's forked child once the node has
    exited) become our children, so their exit status can be read."""
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0,
          "prctl(PR_SET_CHILD_SUBREAPER): errno %d" % ctypes.get_errno())


def proc_state(pid):
    """The state letter of /proc/PID/stat (Z: exited, not reaped), None if gone."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return None


def reap(pid, timeout):
    """Exit status of our (adopted) child pid, as os.waitstatus_to_exitcode."""
    deadline = time.monotonic() + timeout
    while True:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() >= deadline:
            raise ClusterError("child %d still running after %.0fs" % (pid, timeout))
        time.sleep(0.05)


@case
def fork_child(c):
    become_subreaper()
    a, b = c.mesh(("A", "B"))

    # A short-lived child: it exits by itself with exit(0) (atexit handlers
    # run in it); the parent keeps replicating meanwhile.
    ans = a.ok("fork 300")
    pid1 = int(ans)
    a.put("-", "after-fork-1", "1")
    c.wait_value(b, "-", "after-fork-1", "1")
    status1 = a.cmd("waitchild %d" % pid1)
    print("  A's first child: %s" % status1)

    # A child still alive while the parent closes and restarts on the same
    # port: the child must hold neither the listening socket, nor the
    # replicator lock, nor the connection to B.
    pid2 = int(a.ok("fork 3000"))
    a.put("-", "after-fork-2", "1")
    c.wait_value(b, "-", "after-fork-2", "1")
    b.put("-", "b-to-parent", "1")
    c.wait_value(a, "-", "b-to-parent", "1")
    check(a.status()["connected"] == 1, "A's session with B disturbed by the fork: %s"
          % a.status())
    port = a.port
    t_stop = time.monotonic()
    a.stop()
    check(proc_state(pid2) not in (None, "Z"), "A's child exited too early for this test")
    # B must see the connection end: the child must not keep A's socket open.
    wait_eq(lambda: b.status()["connected"], 0, 10,
            "B to lose its session once A exited (its child alive)")
    a.restart()
    check(a.port == port, "A restarted on port %d, not %d" % (a.port, port))
    check(a.status()["running"] == 1, "restarted A does not run the replicator: %s"
          % a.status())
    child_alive = proc_state(pid2) not in (None, "Z")
    print("  A stopped and restarted on port %d in %.2fs; its child alive throughout: %s"
          % (port, time.monotonic() - t_stop, child_alive))
    check(child_alive, "A's child exited before A's restart finished: the test proves nothing "
          "(raise the child's sleep)")
    c.wait_mesh([a, b])
    a.put("-", "after-restart", "1")
    c.wait_value(b, "-", "after-restart", "1")
    rc = reap(pid2, 15)
    print("  A's orphaned child: exit code %s (negative: signal)" % rc)
    c.wait_converged([a, b])
    check_no_crash_text(a)
    # Checked last, so that a failure here says the rest held.
    check(status1 == "EXIT 0" and rc == 0,
          "A's children did not exit cleanly with exit(0): the first (waited for by A) %s, "
          "the orphaned one exit code %s (want EXIT 0 and 0; SIGSEGV is 11)" % (status1, rc))


@case
def two_envs_one_process(c):
    # One process per node, two environments each (alpha, beta), one
    # TRLMDB_LISTEN: peers route by environment name.
    a = c.node("A", dbname="alpha")
    a_beta = a.open_env(os.path.join(c.root, "A", "beta"))
    b = c.node("B", peers=[a], dbname="alpha")
    b_beta = b.open_env(os.path.join(c.root, "B", "beta"))
    for v, n in ((a_beta, a), (b_beta, b)):
        st = v.status()
        check(st["running"] == 1 and st["port"] == n.port,
              "%s: the second environment must be served on the process's one listening "
              "port %d: %s" % (v.name, n.port, st))
    for v in (a, a_beta, b, b_beta):
        v.wait_connected(1)
    a.put("-", "alpha-from-a", "1")
    a_beta.put("-", "beta-from-a", "1")
    b.put("t", "alpha-from-b", "1")
    b_beta.put("t", "beta-from-b", "1")
    a.put("-", "same", "in-alpha")
    a_beta.put("-", "same", "in-beta")
    c.wait_value(b, "-", "alpha-from-a", "1")
    c.wait_value(b_beta, "-", "beta-from-a", "1")
    c.wait_value(a, "t", "alpha-from-b", "1")
    c.wait_value(a_beta, "t", "beta-from-b", "1")
    c.wait_value(b, "-", "same", "in-alpha")
    c.wait_value(b_beta, "-", "same", "in-beta")
    a.ok("bulk bulk_alpha 1000 x")
    b_beta.ok("bulk bulk_beta 1000 y")
    c.wait_converged([a, b])
    c.wait_converged([a_beta, b_beta])
    for v in (a, b):
        check(v.get("-", "beta-from-a") is None and v.get("t", "beta-from-b") is None
              and v.simple("count bulk_beta") is None,
              "%s (alpha) holds beta's data" % v.name)
    for v in (a_beta, b_beta):
        check(v.get("-", "alpha-from-a") is None and v.get("t", "alpha-from-b") is None
              and v.simple("count bulk_alpha") is None,
              "%s (beta) holds alpha's data" % v.name)
    check(c.digest(a.env_dir) != c.digest(a_beta.env_dir), "alpha and beta have one digest")

    # Two environments named alike (same basename) in one process: the
    # second gets no replicator and says why; the first keeps working.
    x = c.node("X", env_dir=os.path.join(c.root, "X", "one", "db"))
    mark = x.log_mark()
    x2 = x.open_env(os.path.join(c.root, "X", "two", "db"))
    text = x.log_text(mark).replace(c.root, "<dir>")
    lines = [l for l in text.splitlines() if "already replicates an environment named" in l]
    check(lines, "X: opening a second environment named \"db\" logged nothing about it:\n%s"
          % text[-2000:])
    print("  X log: %s" % lines[0][:220])
    st = x2.status()
    check(st["running"] == 0, "X's second \"db\" runs a replicator: %s" % st)
    check(x2.sync(100) == 22, "sync on X's second \"db\" must be EINVAL")
    y = c.node("Y", peers=[x])
    c.wait_mesh([x, y])
    x.put("-", "x-first", "1")
    x2.put("-", "x-second", "1")
    y.put("-", "from-y", "1")
    c.wait_value(y, "-", "x-first", "1")
    c.wait_value(x, "-", "from-y", "1")
    check(x.sync(5000) == 0 and y.sync(5000) == 0, "sync X/Y")
    check(y.get("-", "x-second") is None, "Y got a write of X's second \"db\"")
    check(x2.get("-", "from-y") is None, "X's second \"db\" got Y's write")
    c.wait_converged([x, y])
    check(c.verify(x2.env_dir)[0] == 0, "verify X's second \"db\": %s" % c.verify(x2.env_dir)[1])


@case
def map_full_then_enlarge(c):
    a = c.node("A")
    b = c.node("B", peers=[a], env={"REPL_NODE_MAPSIZE": 1 << 20})
    c.wait_mesh([a, b])
    mark = b.log_mark()
    # ~4 MiB on A: B's 1 MiB map cannot hold it.
    a.send_lines(["putgen big k%02d %d %d" % (i, 100 << 10, i) for i in range(40)])
    check(all(x.startswith("OK") for x in a.answers(40)), "putgen on A")
    a.ok("bulk small 2000 s")
    sums = {i: a.simple("sum big k%02d" % i) for i in range(40)}
    wait_for(lambda: re.search(r"map is full", b.log_text(mark)), 20,
             "B to log that its map is full")
    line = [l for l in b.log_text(mark).splitlines() if "map is full" in l][0]
    print("  B log: %s" % line.replace(c.root, "<dir>")[:240])
    check(b.alive() and a.alive(), "a node died on a full map")
    check(b.simple("count big") != "40", "B holds all 4 MiB in a 1 MiB map?")
    # Nothing lost on the sender.
    check({i: a.simple("sum big k%02d" % i) for i in range(40)} == sums,
          "A's values changed while B's map was full")
    check(a.simple("count small") == "2000", "A's small keys")
    rc, out = c.verify(a.env_dir)
    check(rc == 0, "verify A while B's map is full: %s" % out)
    # The program enlarges its map: B resumes without a restart.
    b.ok("mapsize %d" % (64 << 20))
    wait_eq(lambda: b.simple("count big"), "40", 30, "B to hold A's 40 values after enlarging")
    wait_eq(lambda: b.simple("count small"), "2000", 15, "B to hold A's 2000 small keys")
    for i in range(40):
        check(b.simple("sum big k%02d" % i) == sums[i], "B's big/k%02d differs from A's" % i)
    b.put("-", "b-after-enlarge", "1")
    c.wait_value(a, "-", "b-after-enlarge", "1")
    c.wait_converged([a, b])


@case
def custom_comparator(c):
    # "rev" is ordered by a reverse-memcmp comparator registered with
    # mdb_set_compare. A and B register it; C does not (yet): C's replicator
    # must not write "rev" until C's program registers the comparator.
    a = c.node("A")
    a.ok("cmp rev")
    b = c.node("B", peers=[a])
    b.ok("cmp rev")
    cc = c.node("C", peers=[a, b])
    c.wait_mesh([a, b, cc])
    for k in ("apple", "kiwi", "mango"):
        a.put("rev", k, "a-" + k)
    for k in ("banana", "zucchini"):
        b.put("rev", k, "b-" + k)
    a.put("plain", "p1", "1")
    want = sorted(["apple", "kiwi", "mango", "banana", "zucchini"], reverse=True)
    for n in (a, b):
        wait_eq(lambda: n.cmd("scan rev").split(), want, 15,
                "%s: rev in reverse order with every key" % n.name)
    c.wait_value(cc, "plain", "p1", "1")
    check(a.sync(5000) == 0 and b.sync(5000) == 0, "sync A/B")

    def c_rev_keys():
        # A fresh process without the shim reads C's environment: C's own
        # program must not open "rev" before it registers the comparator.
        got = python_db_flags(c, cc.env_dir, ["rev"], items=True)["rev"]
        return [] if got is None else [k for k, _ in got[1]]
    check(c_rev_keys() == [], "C (no comparator) has rev keys: %s" % c_rev_keys())
    b.delete("rev", "kiwi")
    a.put("rev", "cherry", "a-cherry")
    a.put("plain", "p2", "2")
    c.wait_value(cc, "plain", "p2", "2")
    check(a.sync(5000) == 0, "sync A")
    check(c_rev_keys() == [], "C (no comparator) has rev keys: %s" % c_rev_keys())
    # C's program registers the comparator: the deferred changes arrive.
    cc.ok("cmp rev")
    want = sorted(["apple", "mango", "banana", "zucchini", "cherry"], reverse=True)
    wait_eq(lambda: cc.cmd("scan rev").split(), want, 30,
            "C: rev in reverse order after registering the comparator")
    check(cc.get("rev", "apple") == "a-apple" and cc.get("rev", "kiwi") is None,
          "C: rev values")
    for n in (a, b):
        wait_eq(lambda: n.cmd("scan rev").split(), want, 15, "%s: rev at the end" % n.name)
    c.wait_converged([a, b, cc])


@case
def memory_bound(c):
    # A backlog of N changes reaches B by catch-up (B was never started
    # while A wrote). RssAnon of A and B, sampled every 50 ms, must stay
    # under 64 MiB above what each had before the catch-up.
    n_keys = int(os.environ.get("CLUSTER_MEMORY_KEYS", 1000000))
    env = {"REPL_NODE_MAPSIZE": 2 << 30}
    a = c.node("A", env=env)
    t0 = time.monotonic()
    a.ok("fill f %d 100 7" % n_keys, timeout=180)
    write_s = time.monotonic() - t0
    # B's baseline: the same program on the same (empty) environment, idle,
    # replicator running, before it ever met A.
    b = c.node("B", env=env)
    time.sleep(0.3)
    base_b = rss_anon_kib(b.proc.pid)
    b.stop()
    base_a = rss_anon_kib(a.proc.pid)
    limit = 64 << 10  # KiB
    with RssSampler([a.proc.pid]) as sampler:
        b.on_spawn = sampler.add
        t1 = time.monotonic()
        b.restart(peers=[a])
        wait_eq(lambda: b.simple("count f"), str(n_keys), 75,
                "B to hold A's %d keys by catch-up" % n_keys, interval=0.5)
        catch_s = time.monotonic() - t1
    peak_a, peak_b = sampler.peak[a.proc.pid], sampler.peak[b.proc.pid]
    print("  %d keys (16-byte keys, 100-byte values, 1000 per txn): A wrote them in %.1fs, "
          "B caught up in %.1fs; %d samples" % (n_keys, write_s, catch_s, sampler.samples))
    print("  RssAnon KiB: A before %d, peak %d (+%d); B before (idle) %d, peak %d (+%d)"
          % (base_a, peak_a, peak_a - base_a, base_b, peak_b, peak_b - base_b))
    check(peak_a - base_a < limit, "A's RssAnon grew by %d KiB during catch-up (limit %d)"
          % (peak_a - base_a, limit))
    check(peak_b - base_b < limit, "B's RssAnon grew by %d KiB during catch-up (limit %d)"
          % (peak_b - base_b, limit))
    check(b.simple("sum f f%015d" % (n_keys - 1)) == a.simple("sum f f%015d" % (n_keys - 1)),
          "last key differs")
    c.wait_converged([a, b], timeout=60)


@case
def sync_api(c):
    a, b = c.mesh(("A", "B"))
    # 0 once B acknowledged: B has the value at once, without waiting.
    for i in range(20):
        a.put("-", "s%02d" % i, "v%d" % i)
        check(a.sync(5000) == 0, "sync after put %d" % i)
        got = b.get("-", "s%02d" % i)
        check(got == "v%d" % i, "sync returned 0 but B has s%02d=%r" % (i, got))
    a.ok("bulk sb 2000 s")
    check(a.sync(10000) == 0, "sync after bulk")
    check(b.simple("count sb") == "2000", "sync returned 0 but B has %s of 2000 keys"
          % b.simple("count sb"))
    b.put("-", "from-b", "1")
    check(b.sync(5000) == 0 and a.get("-", "from-b") == "1", "sync on B")

    # A peer that does not acknowledge (stopped): ETIMEDOUT, in about the time asked.
    os.kill(b.proc.pid, signal.SIGSTOP)
    try:
        a.put("-", "pending", "1")
        t0 = time.monotonic()
        rc = a.sync(1000)
        took = time.monotonic() - t0
        check(rc == 110, "sync with a stopped peer returned %d, want ETIMEDOUT (110)" % rc)
        check(0.9 <= took < 5, "sync(1000) with a stopped peer took %.2fs" % took)
    finally:
        os.kill(b.proc.pid, signal.SIGCONT)
    check(a.sync(10000) == 0, "sync after the peer continued")
    check(b.get("-", "pending") == "1", "sync returned 0 but B lacks 'pending'")

    # A second process on A's environment does not run the replicator:
    # EINVAL; its commits still wake A's replicator.
    a2 = c.node("A2", env_dir=a.env_dir, replicating=False, env={"TRLMDB_NODE": "A"})
    st = a2.status()
    check(st["running"] == 0, "a second process on A's environment runs a replicator: %s" % st)
    check(a2.sync(1000) == 22, "sync in a process without the replicator must be EINVAL (22)")
    a2.put("-", "from-a2", "1")
    check(a.sync(5000) == 0, "A's sync after A2's commit")
    check(b.get("-", "from-a2") == "1", "A's sync returned 0 but B lacks A2's commit")
    a2.stop()

    # No peer connected: nothing to wait for.
    b.stop()
    wait_eq(lambda: a.status()["connected"], 0, 10, "A to see B gone")
    a.put("-", "alone", "1")
    t0 = time.monotonic()
    check(a.sync(3000) == 0, "sync without peers")
    check(time.monotonic() - t0 < 1, "sync without peers waited %.2fs"
          % (time.monotonic() - t0))
    b.restart()
    b.wait_connected(1)
    c.wait_value(b, "-", "alone", "1")
    c.wait_converged([a, b])


# --- self-tests: the checks above must be able to fail ----------------------
@case
def selftest_unconnected(c):
    a = c.node("A")
    b = c.node("B")  # no peers: never connected
    a.put("-", "k", "a")
    b.put("-", "k", "b")
    try:
        c.wait_converged([a, b], timeout=2)
    except ConvergeError as e:
        print("  wait_converged failed as it must: %s" % str(e).splitlines()[0])
        return
    raise ClusterError("wait_converged passed on two unconnected nodes with different data")


@case
def selftest_wrong_value(c):
    a = c.node("A")
    a.put("-", "k", "a")
    try:
        c.wait_value(a, "-", "k", "other", timeout=1)
    except WaitError as e:
        print("  wait_value failed as it must: %s" % str(e).splitlines()[0])
        return
    raise ClusterError("wait_value accepted a wrong value")


@case
def selftest_unverified(c):
    # Same data, written without the shim: equal digests, but no bookkeeping,
    # so verify must fail and wait_converged with it.
    from compat_common import clean_env
    envs = []
    for name in ("X", "Y"):
        d = os.path.join(c.root, name, "db")
        os.makedirs(d)
        subprocess.run([c.python, "-c", "import lmdb,sys; e=lmdb.open(sys.argv[1]); "
                        "t=e.begin(write=True); t.put(b'k', b'v'); t.commit()", d],
                       check=True, env=clean_env())
        envs.append(d)
    try:
        c.wait_converged(envs, timeout=2)
    except ConvergeError as e:
        print("  wait_converged failed as it must: %s" % str(e).splitlines()[0])
        return
    raise ClusterError("wait_converged passed on environments without bookkeeping")


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("case", choices=sorted(CASES))
    ap.add_argument("--node", required=True, help="repl_node program")
    ap.add_argument("--lib", required=True, help="libtrlmdb.so (LD_PRELOAD)")
    ap.add_argument("--cli", required=True, help="the trlmdb command")
    ap.add_argument("--utils-bin", required=True, help="dynamically linked mdb_load/mdb_dump")
    ap.add_argument("--python", default="/usr/bin/python3", help="Python with python3-lmdb")
    ap.add_argument("--workdir", required=True, help="where temporary directories go")
    args = ap.parse_args()
    start = time.monotonic()
    try:
        with Cluster(args, args.case) as c:
            print("case %s in %s" % (args.case, c.root))
            sys.stdout.flush()
            try:
                CASES[args.case](c)
            except BaseException:
                traceback.print_exc()
                for n in c.nodes:
                    print("--- %s stderr (last lines):\n%s" % (n.name, n.log_tail(40)))
                raise
    except ClusterError as e:
        print("FAIL %s (%.1fs): %s" % (args.case, time.monotonic() - start, e))
        return 1
    except Exception as e:  # noqa: BLE001 - any other error fails the case too
        print("FAIL %s (%.1fs): %r" % (args.case, time.monotonic() - start, e))
        return 1
    print("PASS %s (%.1fs)" % (args.case, time.monotonic() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
