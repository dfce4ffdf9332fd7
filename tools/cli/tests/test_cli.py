"""End-to-end tests of the `trlmdb` command (verify, stat, digest, adopt, serve).

Run as: TRLMDB_CLI=path/to/trlmdb python3 test_cli.py [TestClass ...]
Optional: TRLMDB_SHIM=path/to/libtrlmdb.so for ShimTests and ServeTests.
"""

import hashlib
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lmdb  # noqa: E402
import lmdb_fixtures as fx  # noqa: E402

CLI = os.environ.get("TRLMDB_CLI", "")
SHIM = os.environ.get("TRLMDB_SHIM", "")


def run(*args, timeout=60, env=None):
    return subprocess.run([CLI, *map(str, args)], capture_output=True, timeout=timeout, env=env)


class Base(unittest.TestCase):
    def setUp(self):
        if not CLI or not os.path.exists(CLI):
            self.fail("set TRLMDB_CLI to the trlmdb binary (got %r)" % CLI)
        self.tmp = tempfile.mkdtemp(prefix="trlmdb-cli-test-")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def path(self, name="env"):
        p = os.path.join(self.tmp, name)
        os.makedirs(p, exist_ok=True)
        return p

    def ok(self, *args):
        r = run(*args)
        self.assertEqual(r.returncode, 0, "trlmdb %s failed:\nstdout: %s\nstderr: %s" % (
            " ".join(map(str, args)), r.stdout.decode(errors="replace"),
            r.stderr.decode(errors="replace")))
        return r.stdout.decode()

    def verify_ok(self, path):
        return self.ok("verify", path)

    def verify_fails(self, path, *messages, count=None):
        r = run("verify", path)
        out = r.stdout.decode()
        self.assertEqual(r.returncode, 1, "verify should fail:\n" + out + r.stderr.decode())
        self.assertEqual(r.stderr, b"")
        for m in messages:
            self.assertIn(m, out)
        if count is not None:
            self.assertIn("verify: %d violation%s\n" % (count, "" if count == 1 else "s"), out)
        return out

    def digest(self, path):
        out = self.ok("digest", path).strip()
        self.assertRegex(out, r"^[0-9a-f]{64}$")
        return out

    def adopt(self, path, *opts):
        r = run("adopt", *opts, path)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        m = re.search(rb"^adopt: stamped (\d+), tombstoned (\d+), repaired (\d+)$", r.stdout, re.M)
        self.assertIsNotNone(m, r.stdout)
        self.assertTrue(r.stdout.endswith(m.group(0) + b"\n"), "summary is the last line")
        return tuple(int(g) for g in m.groups()), r

    def last_txnid(self, path):
        env = fx.open_env(path)
        try:
            return env.info()["last_txnid"]
        finally:
            env.close()

    def file_hash(self, path):
        with open(os.path.join(path, "data.mdb"), "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()


class CliTests(Base):
    def test_help_lists_subcommands(self):
        out = self.ok("--help")
        for cmd in ("verify", "stat", "digest", "adopt", "serve"):
            self.assertRegex(out, r"\n  %s +\S" % cmd)

    def test_subcommand_help(self):
        for cmd in ("verify", "stat", "digest", "adopt", "serve"):
            out = self.ok(cmd, "--help")
            self.assertTrue(out.startswith("usage: trlmdb %s" % cmd), out)
            self.assertEqual(out, self.ok("help", cmd))

    def test_version(self):
        self.assertRegex(self.ok("--version"), r"^trlmdb \d+\.\d+\.\d+ \(LMDB 0\.9\.\d+")

    def test_usage_errors_exit_2_on_stderr(self):
        for args in ([], ["frobnicate"], ["verify"], ["verify", "--bogus", self.tmp],
                     ["verify", "a", "b"], ["digest", "--verbose=1", self.tmp],
                     ["adopt", "--batch", "0", self.tmp], ["adopt", "--batch"]):
            r = run(*args)
            self.assertEqual(r.returncode, 2, args)
            self.assertEqual(r.stdout, b"", args)
            self.assertNotEqual(r.stderr, b"", args)
        r = run("verify", "--bogus", self.tmp)
        self.assertIn(b"unknown option '--bogus'", r.stderr)
        self.assertIn(b"trlmdb verify --help", r.stderr)

    def test_not_an_environment(self):
        missing = os.path.join(self.tmp, "missing")
        empty = self.path("empty")
        junk = os.path.join(self.tmp, "junk.mdb")
        with open(junk, "wb") as f:
            f.write(b"not lmdb" * 2048)
        for cmd in ("verify", "stat", "digest", "adopt"):
            for p, msg in ((missing, b"No such file"), (empty, b"not an LMDB environment"),
                           (junk, b"not an LMDB environment")):
                r = run(cmd, p)
                self.assertEqual(r.returncode, 2, (cmd, p, r))
                self.assertIn(msg, r.stderr, (cmd, p))
                self.assertEqual(r.stdout, b"")
        self.assertEqual(os.listdir(empty), [], "no environment may be created")

    def test_unstamped_environment(self):
        p = self.path()
        env = fx.raw(p)
        with env.begin(write=True) as txn:
            txn.put(b"k", b"v")
        env.close()
        r = run("verify", p)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"not stamped by trlmdb", r.stderr)
        self.assertIn(b"run trlmdb adopt", r.stderr)
        self.assertIn(b"not stamped by trlmdb; run trlmdb adopt", self.ok("stat", p).encode())


class VerifyTests(Base):
    def consistent(self, subdir=True):
        p = self.path() if subdir else os.path.join(self.tmp, "env.mdb")
        keys, dbs = fx.build_consistent(p, subdir=subdir)
        return p, keys, dbs

    def test_consistent_environment(self):
        p, keys, dbs = self.consistent()
        self.assertEqual(self.verify_ok(p), "ok: %d keys in %d databases\n" % (keys, dbs))

    def test_nosubdir_environment(self):
        p, keys, dbs = self.consistent(subdir=False)
        self.assertTrue(os.path.isfile(p))
        self.assertEqual(self.verify_ok(p), "ok: %d keys in %d databases\n" % (keys, dbs))

    def test_runs_beside_a_writer(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        txn = env.begin(write=True)  # holds the writer lock during verify
        try:
            txn.put(b"uncommitted", b"x")
            self.verify_ok(p)  # read-only, sees the committed state, not blocked
            self.digest(p)
            self.ok("stat", p)
        finally:
            txn.abort()
            env.close()

    def test_empty_stamped_environment(self):
        p = self.path()
        fx.Stamper(p).close()
        self.assertEqual(self.verify_ok(p), "ok: 0 keys in 1 databases\n")

    def test_unstamped_key(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        alpha = env.open_db(b"alpha")
        with env.begin(write=True) as txn:
            txn.put(b"new\x01", b"v", db=alpha)
            txn.put(b"mainkey", b"v")
        env.close()
        self.verify_fails(p, 'key without stamp: database "alpha" key "new\\x01"\n',
                          'key without stamp: main database key "mainkey"\n', count=2)

    def test_existing_key_stamped_as_deleted(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        time_db = env.open_db(fx.TIME)
        with env.begin(write=True) as txn:
            txn.put(fx.xkey(b"alpha", b"a1"), fx.ts(fx.T0, 0xABCDEF00, fx.DELETE), db=time_db)
        env.close()
        out = self.verify_fails(p, 'existing key stamped as deleted: database "alpha" key "a1"')
        # recent still holds the put: it no longer equals time
        self.assertIn('recent entry differs from time entry: database "alpha" key "a1"', out)

    def test_stamp_for_missing_key(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        alpha = env.open_db(b"alpha")
        with env.begin(write=True) as txn:
            txn.delete(b"a1", db=alpha)
            txn.delete(b"main2")
        env.close()
        self.verify_fails(p, 'stamp for a missing key: database "alpha" key "a1"',
                          'stamp for a missing key: main database key "main2"', count=2)

    def test_dupsort_is_key_level(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        dups = env.open_db(b"dups", dupsort=True)
        with env.begin(write=True) as txn:
            txn.delete(b"d1", b"1", db=dups)  # d1 keeps duplicate "3"
            txn.put(b"d2", b"another", db=dups)  # a new duplicate of a stamped key
        env.close()
        self.verify_ok(p)
        env = fx.raw(p)
        dups = env.open_db(b"dups", dupsort=True)
        with env.begin(write=True) as txn:
            txn.delete(b"d1", b"3", db=dups)  # the last duplicate
        env.close()
        self.verify_fails(p, 'stamp for a missing key: database "dups" key "d1"', count=1)

    def test_integer_and_reverse_keys(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        ints = env.open_db(b"ints", integerkey=True)
        rev = env.open_db(b"rev", reverse_key=True)
        with env.begin(write=True) as txn:
            txn.delete(fx.u32(256), db=ints)
            txn.put(fx.u32(7), b"seven", db=ints)
            txn.delete(b"ba", db=rev)
        env.close()
        self.verify_fails(p, 'stamp for a missing key: database "ints" key "\\x00\\x01\\x00\\x00"',
                          'key without stamp: database "ints" key "\\x07\\x00\\x00\\x00"',
                          'stamp for a missing key: database "rev" key "ba"', count=3)

    def test_dropped_database(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        alpha = env.open_db(b"alpha")
        with env.begin(write=True) as txn:
            txn.drop(alpha, delete=True)
        env.close()
        self.verify_fails(p, 'marker for a missing database: database "alpha"',
                          'stamp for a key of a missing database: database "alpha" key "a1"',
                          'stamp for a key of a missing database: database "alpha" key "a2"',
                          count=3)

    def test_markers(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        time_db, recent = env.open_db(fx.TIME), env.open_db(fx.RECENT)
        with env.begin(write=True) as txn:
            txn.delete(b"alpha\0", db=time_db)
            txn.delete(b"alpha\0", db=recent)
            for db in (time_db, recent):
                txn.put(b"dups\0", fx.ts(fx.T0 + 5, 0x11111100, fx.DELETE), db=db)
        env.close()
        self.verify_fails(p, 'missing database marker: database "alpha"\n',
                          'database marker stamped as deleted: database "dups" (20', count=2)

    def test_created_database_without_marker(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        env.open_db(b"newdb")
        env.close()
        self.verify_fails(p, 'missing database marker: database "newdb"', count=1)

    def test_bad_timestamps(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        time_db, recent = env.open_db(fx.TIME), env.open_db(fx.RECENT)
        with env.begin(write=True) as txn:
            short = fx.ts(fx.T0, 0xABCDEF00, fx.PUT)[:11]
            badop = fx.ts(fx.T0, 0xABCDEF00, 2)
            for db in (time_db, recent):
                txn.put(fx.xkey(b"alpha", b"a1"), short, db=db)
                txn.put(fx.xkey(b"alpha", b"a2"), badop, db=db)
        env.close()
        self.verify_fails(p, 'bad timestamp in _trlmdb_time: database "alpha" key "a1" (0x',
                          '11 bytes)', 'bad timestamp in _trlmdb_time: database "alpha" key "a2"',
                          'bad timestamp in _trlmdb_recent: database "alpha" key "a1"',
                          'bad timestamp in _trlmdb_recent: database "alpha" key "a2"', count=4)

    def test_xkey_without_nul_and_reserved_stamps(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        time_db, recent = env.open_db(fx.TIME), env.open_db(fx.RECENT)
        good = fx.ts(fx.T0, 0xABCDEF00, fx.PUT)
        with env.begin(write=True) as txn:
            txn.put(b"nonul", good, db=time_db)
            txn.put(b"nonul", good, db=recent)
            txn.put(b"_trlmdb_meta\0node", good, db=time_db)
        env.close()
        self.verify_fails(p, 'xkey without 0x00 in _trlmdb_time: "nonul"',
                          'xkey without 0x00 in _trlmdb_recent: "nonul"',
                          'stamp for a reserved database in _trlmdb_time: database "_trlmdb_meta" key "node"',
                          count=3)

    def test_recent_must_equal_time(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        recent = env.open_db(fx.RECENT)
        with env.begin(write=True) as txn:
            txn.put(fx.xkey(b"", b"main1"), fx.ts(fx.T0 + 1, 0xABCDEF00, fx.PUT), db=recent)
            txn.put(fx.xkey(b"alpha", b"zz"), fx.ts(fx.T0 + 1, 0xABCDEF00, fx.PUT), db=recent)
        env.close()
        self.verify_fails(p, 'recent entry differs from time entry: main database key "main1"',
                          'recent entry without time entry: database "alpha" key "zz"', count=2)

    def test_recent_may_lag_behind(self):
        # Shipped entries leave _trlmdb_recent: fewer entries is fine.
        p, _, _ = self.consistent()
        env = fx.raw(p)
        recent = env.open_db(fx.RECENT)
        with env.begin(write=True) as txn:
            txn.drop(recent, delete=False)
        env.close()
        self.verify_ok(p)

    def test_meta(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        meta = env.open_db(fx.META)
        with env.begin(write=True) as txn:
            txn.delete(b"node", db=meta)
            txn.put(b"clock", struct.pack(">Q", fx.T0), db=meta)
        env.close()
        self.verify_fails(p, "missing node word in _trlmdb_meta",
                          "clock behind the timestamps: high-water mark 2023-11-14T22:13:20", count=2)
        env = fx.raw(p)
        meta = env.open_db(fx.META)
        with env.begin(write=True) as txn:
            txn.put(b"node", b"\1\2\3", db=meta)
            txn.put(b"clock", b"\0" * 7, db=meta)
        env.close()
        self.verify_fails(p, "bad node word in _trlmdb_meta", "bad clock value in _trlmdb_meta",
                          count=2)

    def test_missing_reserved_databases(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        recent, meta = env.open_db(fx.RECENT), env.open_db(fx.META)
        with env.begin(write=True) as txn:
            txn.drop(recent, delete=True)
            txn.drop(meta, delete=True)
        env.close()
        self.verify_fails(p, "missing reserved database _trlmdb_recent",
                          "missing reserved database _trlmdb_meta", count=2)

    def test_key_too_long_for_an_xkey(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        alpha = env.open_db(b"alpha")
        with env.begin(write=True) as txn:
            txn.put(b"k" * 506, b"v", db=alpha)  # 5 + 1 + 506 = 512 > 511
        env.close()
        self.verify_fails(p, 'key too long for an xkey: database "alpha" key "kkk',
                          "(512-byte xkey, LMDB's limit is 511)", count=1)

    def test_violations_are_capped(self):
        p, _, _ = self.consistent()
        env = fx.raw(p)
        with env.begin(write=True) as txn:
            for i in range(150):
                txn.put(b"unstamped%03d" % i, b"v")
        env.close()
        out = self.verify_fails(p, "... and 50 more\n", count=150)
        self.assertEqual(out.count("key without stamp"), 100)
        r = run("verify", "--limit", "0", p)
        self.assertEqual(r.returncode, 1)
        self.assertEqual(r.stdout.decode().count("key without stamp"), 150)
        r = run("verify", "--limit=3", p)
        self.assertEqual(r.stdout.decode().count("key without stamp"), 3)


class StatTests(Base):
    def test_stamped(self):
        p = self.path()
        fx.build_consistent(p)
        out = self.ok("stat", p)
        self.assertIn("node:           abcdef (node word 0xabcdef00)\n", out)
        env = fx.raw(p)
        meta, time_db, recent = (env.open_db(n) for n in (fx.META, fx.TIME, fx.RECENT))
        with env.begin() as txn:
            clock = struct.unpack(">Q", txn.get(b"clock", db=meta))[0]
            puts = tombs = 0
            for _, v in txn.cursor(db=time_db):
                if fx.parse_ts(v)[2] == fx.PUT:
                    puts += 1
                else:
                    tombs += 1
            nrecent = txn.stat(recent)["entries"]
        env.close()
        self.assertIn("(raw 0x%016x)" % clock, out)
        self.assertRegex(out, r"clock: +20\d\d-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
        self.assertIn("_trlmdb_time:   %d entries (%d puts, %d tombstones)\n" % (puts + tombs, puts, tombs), out)
        self.assertEqual((puts, tombs), (16, 3))  # 11 keys + 5 markers; a3, g1, gone marker
        self.assertIn("_trlmdb_recent: %d entries" % nrecent, out)
        self.assertIn("user databases: 6\n", out)
        rows = {m.group(1): m.group(2, 3, 4) for m in
                re.finditer(r"^  (\S+) +(\S+) +(\d+) +(\d+)$", out, re.M)}
        self.assertEqual(rows["(main)"], ("-", "2", "2"))
        self.assertEqual(rows['"alpha"'], ("-", "2", "2"))
        self.assertEqual(rows['"dups"'], ("DUPSORT", "3", "2"))
        self.assertEqual(rows['"ints"'], ("INTEGERKEY", "3", "3"))
        self.assertEqual(rows['"rev"'], ("REVERSEKEY", "2", "2"))
        self.assertEqual(rows['"empty"'], ("-", "0", "0"))
        self.assertNotIn("_trlmdb_time\"", out)

    def test_unstamped(self):
        p = self.path()
        env = fx.raw(p)
        db = env.open_db(b"x", dupsort=True, dupfixed=True)
        with env.begin(write=True) as txn:
            txn.put(b"k", b"1111", db=db)
            txn.put(b"k", b"2222", db=db)
        env.close()
        out = self.ok("stat", p)
        self.assertIn("bookkeeping:    none (not stamped by trlmdb; run trlmdb adopt)", out)
        self.assertRegex(out, r'\n  "x" +DUPSORT\|DUPFIXED +2 +1\n')


class StatReplicatorTests(Base):
    """The replicator section of `trlmdb stat`, from a status file written
    here and the lock held (or not) by this process, as a replicator would."""

    def setUp(self):
        super().setUp()
        self.env = self.path()
        fx.build_consistent(self.env)
        self.lock_fd = None
        self.addCleanup(self.release)

    def release(self):
        if self.lock_fd is not None:
            os.close(self.lock_fd)
            self.lock_fd = None

    def hold_lock(self, pid):
        # As a replicator does: the flock that elects it, and the OFD write lock
        # on byte 1 MiB that announces it (shim/repl_presence.h).
        import fcntl
        import struct
        self.lock_fd = os.open(os.path.join(self.env, "trlmdb.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.fcntl(self.lock_fd, fcntl.F_OFD_SETLK,
                    struct.pack("hhqqixxxx", fcntl.F_WRLCK, 0, 1 << 20, 1, 0))
        os.write(self.lock_fd, b"%d\n" % pid)

    def write_status(self, text):
        with open(os.path.join(self.env, "trlmdb.status"), "w") as f:
            f.write(textwrap.dedent(text).lstrip())

    def section(self):
        out = self.ok("stat", self.env)
        i = out.index("\nreplicator:")
        self.assertIn("\nuser databases: 6\n", out[:i], "the other sections come first, unchanged")
        return out[i + 1:]

    def test_not_running(self):
        self.assertEqual(self.section(), "replicator:     not running\n")
        self.hold_lock(4242)  # a lock file alone, released: still not running
        self.release()
        self.assertEqual(self.section(), "replicator:     not running\n")
        self.assertEqual(os.listdir(self.env).count("trlmdb.status"), 0)

    def test_stale_status(self):
        self.write_status("pid 31337\nenv env\nnode abcdef00\nbacklog 0\n")
        self.assertEqual(self.section(), "replicator:     not running (stale status from pid 31337)\n")
        self.hold_lock(31337)
        self.release()  # a lock file nobody holds: the same
        self.assertEqual(self.section(), "replicator:     not running (stale status from pid 31337)\n")

    def test_starting(self):
        self.hold_lock(555)
        self.assertEqual(self.section(), "replicator:     starting in process 555 (no status yet)\n")

    def test_running(self):
        self.hold_lock(os.getpid())
        now = time.time()
        self.write_status("""
            pid %d
            env shard-1
            path %s
            node 1a2b3c00
            backlog 17
            listen 127.0.0.1:7000
            sent 123456
            received 654
            applied 12
            peer 10.0.0.2:7000 out state=connected node=0badf000 last_contact=%d awaiting_ack=3 sent=1000 received=20
            peer 10.0.0.3:7000 out state=backoff node=00000000 last_contact=0 awaiting_ack=0 sent=0 received=0 note=connection refused: is the peer up?
            peer 127.0.0.1:51234 in state=handshake node=00000000 last_contact=%.3f awaiting_ack=0 sent=7 received=9 future=field
            """ % (os.getpid(), self.env, int(now) - 3, now - 1.5))
        out = self.section()
        lines = out.splitlines()
        self.assertEqual(lines[:6], [
            'replicator:     running in process %d (environment "shard-1" on the wire, node 1a2b3c00)' % os.getpid(),
            "listening on:   127.0.0.1:7000",
            "backlog:        17 changes not yet acknowledged by every peer",
            "traffic:        123456 bytes sent, 654 bytes received, 12 changes applied",
            "peers:          3",
            "  address          dir  state      node      last contact  awaiting ack  sent  received  note",
        ])
        self.assertRegex(lines[6], r"^  10\.0\.0\.2:7000    out  connected  0badf000  [34] s ago     +3  1000        20$")
        self.assertEqual(lines[7], "  10.0.0.3:7000    out  backoff    -         never                    0     0         0  connection refused: is the peer up?")
        self.assertRegex(lines[8], r"^  127\.0\.0\.1:51234  in   handshake  -         1\.[5-9] s ago +0     7         9$")
        self.assertEqual(len(lines), 9)

    def test_outgoing_only(self):
        self.hold_lock(os.getpid())
        self.write_status("pid 1\nenv e\nnode 00000100\nbacklog 0\nsent 0\nreceived 0\napplied 0\n")
        out = self.section()
        self.assertIn("\nlistening on:   - (outgoing connections only)\n", out)
        self.assertTrue(out.endswith("\npeers:          0\n"), out)

    def test_nosubdir(self):
        self.release()
        p = os.path.join(self.tmp, "file.mdb")
        fx.build_consistent(p, subdir=False)
        with open(p + "-trlmdb.status", "w") as f:
            f.write("pid 99\nenv file.mdb\n")
        self.assertTrue(self.ok("stat", p).endswith(
            "\nreplicator:     not running (stale status from pid 99)\n"))


def expected_digest(dbs):
    """The documented digest: dbs = [(name, flags, [(key, value), ...]), ...] in order."""
    h = hashlib.blake2b(digest_size=32)
    h.update(b"trlmdb-digest-v1\0")
    for name, flags, pairs in dbs:
        h.update(b"D" + struct.pack(">Q", len(name)) + name + struct.pack(">I", flags))
        for k, v in pairs:
            h.update(b"K" + struct.pack(">Q", len(k)) + k)
            h.update(b"V" + struct.pack(">Q", len(v)) + v)
    return h.hexdigest()


class DigestTests(Base):
    DATA = {
        b"": [(b"a", b"1"), (b"b", b"2")],
        b"plain": [(b"k%02d" % i, b"v%d" % i) for i in range(30)],
        b"dups": [(b"x", b"1"), (b"x", b"2"), (b"y", b"3")],
    }

    def write(self, path, order=1, noise=False, map_size=64 << 20):
        env = fx.open_env(path, map_size=map_size)
        dbs = {b"": env.open_db(None), b"plain": env.open_db(b"plain"),
               b"dups": env.open_db(b"dups", dupsort=True)}
        items = [(n, k, v) for n, pairs in self.DATA.items() for k, v in pairs][::order]
        for n, k, v in items:
            with env.begin(write=True) as txn:
                if noise:
                    txn.put(k + b"-tmp", b"junk", db=dbs[n])
                    txn.put(k, b"old value", db=dbs[n])
                    if n == b"dups":
                        txn.delete(k, b"old value", db=dbs[n])
                txn.put(k, v, db=dbs[n])
        if noise:
            tmpdb = env.open_db(b"temporary")
            with env.begin(write=True) as txn:
                txn.put(b"t", b"t", db=tmpdb)
                txn.drop(tmpdb, delete=True)
                for n, pairs in self.DATA.items():
                    for k, _ in pairs:
                        txn.delete(k + b"-tmp", db=dbs[n])
        env.close()

    def test_same_data_same_digest_whatever_the_history(self):
        a, b, c, d = (self.path(n) for n in "abcd")
        self.write(a)
        self.write(b, order=-1)
        self.write(c, noise=True, map_size=1 << 30)
        fx.build_consistent(d)  # unrelated content
        da = self.digest(a)
        self.assertEqual(self.digest(b), da)
        self.assertEqual(self.digest(c), da)
        self.assertNotEqual(self.digest(d), da)
        # bookkeeping is invisible to the digest
        self.adopt(b)
        self.assertEqual(self.digest(b), da)
        # and so is the page layout of a compacted copy
        e = self.path("e")
        subprocess.run(["mdb_copy", "-c", a, e], check=True, capture_output=True)
        self.assertEqual(self.digest(e), da)

    def test_documented_hash(self):
        a = self.path()
        self.write(a)
        expected = expected_digest([
            (b"", 0, self.DATA[b""]),
            (b"dups", fx.DUPSORT, self.DATA[b"dups"]),
            (b"plain", 0, self.DATA[b"plain"]),
        ])
        self.assertEqual(self.digest(a), expected)

    def variant(self, name, change):
        p = self.path(name)
        self.write(p)
        env = fx.open_env(p)
        with env.begin(write=True) as txn:
            change(env, txn)
        env.close()
        return self.digest(p)

    def test_different_data_different_digest(self):
        base = self.path("base")
        self.write(base)
        digests = {self.digest(base)}
        changes = {
            "value": lambda env, txn: txn.put(b"a", b"X"),
            "key": lambda env, txn: (txn.delete(b"a"), txn.put(b"A", b"1")),
            "extra": lambda env, txn: txn.put(b"c", b""),
            "dup": lambda env, txn: txn.delete(b"x", b"2", db=env.open_db(b"dups", dupsort=True, txn=txn)),
            "extradup": lambda env, txn: txn.put(b"y", b"4", db=env.open_db(b"dups", dupsort=True, txn=txn)),
            "boundary": lambda env, txn: (txn.delete(b"a"), txn.put(b"a1", b"")),
            "emptydb": lambda env, txn: env.open_db(b"new", txn=txn),
            "dbname": lambda env, txn: (txn.drop(env.open_db(b"plain", txn=txn)),
                                        [txn.put(k, v, db=env.open_db(b"plain2", txn=txn))
                                         for k, v in self.DATA[b"plain"]]),
        }
        for name, change in changes.items():
            d = self.variant(name, change)
            self.assertNotIn(d, digests, name)
            digests.add(d)

    def test_flags_count(self):
        a, b = self.path("a"), self.path("b")
        for p, dupsort in ((a, False), (b, True)):
            env = fx.open_env(p)
            db = env.open_db(b"d", dupsort=dupsort)
            with env.begin(write=True) as txn:
                txn.put(b"k", b"v", db=db)
            env.close()
        self.assertNotEqual(self.digest(a), self.digest(b))

    def test_verbose(self):
        a = self.path()
        self.write(a)
        out = self.ok("digest", "--verbose", a).splitlines()
        self.assertEqual(len(out), 4)
        self.assertEqual(out[-1], self.digest(a))
        self.assertRegex(out[0], r"^[0-9a-f]{64}  - +2 keys +2 entries  \(main\)$")
        self.assertRegex(out[1], r'^[0-9a-f]{64}  DUPSORT +2 keys +3 entries  "dups"$')
        # a database's own digest is the digest of an environment holding only it
        self.assertEqual(out[1][:64], expected_digest([(b"dups", fx.DUPSORT, self.DATA[b"dups"])]))


class AdoptTests(Base):
    def unstamped(self, path, big=0):
        env = fx.raw(path)
        main = env.open_db(None)
        plain = env.open_db(b"plain")
        dups = env.open_db(b"dups", dupsort=True)
        ints = env.open_db(b"ints", integerkey=True)
        rev = env.open_db(b"rev", reverse_key=True)
        fixed = env.open_db(b"fixed", dupsort=True, dupfixed=True, integerdup=True)
        env.open_db(b"empty")
        with env.begin(write=True) as txn:
            for i in range(20 + big):
                txn.put(b"m%05d" % i, b"v", db=main)
                txn.put(b"p%05d" % i, b"value %d" % i, db=plain)
            for k in (b"a", b"b", b"c"):
                for v in (b"1", b"2", b"3", b"4"):
                    txn.put(k, v, db=dups)
            for n in (3, 2, 1, 1000, 65536):
                txn.put(fx.u32(n), b"n", db=ints)
            for k in (b"za", b"az", b"mm"):
                txn.put(k, b"r", db=rev)
            for k in (b"f1", b"f2"):
                for n in (5, 7, 9):
                    txn.put(k, fx.u32(n), db=fixed)
        env.close()
        keys = 2 * (20 + big) + 3 + 5 + 3 + 2
        return keys, 6  # keys, named databases (markers)

    def check_bookkeeping(self, path, t_start, node=None):
        """Every stamp is well formed, recent == time, clock >= every ts."""
        env = fx.raw(path)
        with env.begin() as txn:
            meta = env.open_db(fx.META, txn=txn, create=False)
            node_word = struct.unpack(">I", txn.get(b"node", db=meta))[0]
            clock = struct.unpack(">Q", txn.get(b"clock", db=meta))[0]
            time_entries = dict(txn.cursor(db=env.open_db(fx.TIME, txn=txn, create=False)))
            recent = dict(txn.cursor(db=env.open_db(fx.RECENT, txn=txn, create=False)))
        env.close()
        self.assertEqual(node_word & 0xFF, 0)
        self.assertNotEqual(node_word, 0)
        if node is not None:
            self.assertEqual(node_word, node)
        for x, v in time_entries.items():
            t, n, op = fx.parse_ts(v)
            self.assertIn(op, (0, 1))
            self.assertLessEqual(t, clock)
        for x, v in recent.items():
            self.assertEqual(time_entries.get(x), v)
        fresh = [fx.parse_ts(v) for v in time_entries.values() if fx.parse_ts(v)[0] >= t_start]
        for t, n, op in fresh:
            self.assertEqual(n, node_word)
        return time_entries, recent, node_word, clock

    def test_unstamped_environment(self):
        p = self.path()
        keys, markers = self.unstamped(p)
        before = self.digest(p)
        self.assertEqual(run("verify", p).returncode, 2)
        t_start = int(time.time()) << 32
        counts, r = self.adopt(p)
        self.assertEqual(counts, (keys + markers, 0, 0))
        self.assertRegex(r.stdout.decode(), r"^adopt: created the trlmdb bookkeeping, node [0-9a-f]{6}\n")
        self.assertEqual(r.stderr, b"")  # no progress when stderr is not a terminal
        self.assertEqual(self.verify_ok(p), "ok: %d keys in %d databases\n" % (keys, markers + 1))
        self.assertEqual(self.digest(p), before)
        time_entries, recent, node, clock = self.check_bookkeeping(p, t_start)
        self.assertEqual(len(time_entries), keys + markers)
        self.assertEqual(recent, time_entries)
        stamps = sorted(fx.parse_ts(v) for v in time_entries.values())
        self.assertGreaterEqual(stamps[0][0], t_start)
        self.assertEqual(len({s[0] for s in stamps}), len(stamps), "timestamps are unique")
        self.assertTrue(all(s[2] == fx.PUT for s in stamps))
        self.assertEqual(clock, stamps[-1][0])
        # the second run changes nothing at all
        txnid, fhash = self.last_txnid(p), self.file_hash(p)
        counts, r = self.adopt(p)
        self.assertEqual(counts, (0, 0, 0))
        self.assertEqual(r.stdout, b"adopt: stamped 0, tombstoned 0, repaired 0\n")
        self.assertEqual(self.last_txnid(p), txnid)
        self.assertEqual(self.file_hash(p), fhash)

    def test_small_batches(self):
        p, q = self.path("p"), self.path("q")
        keys, markers = self.unstamped(p, big=100)
        self.unstamped(q, big=100)
        t0 = self.last_txnid(p)
        counts, r = self.adopt(p, "--batch", "7", "--progress")
        self.assertEqual(counts, (keys + markers, 0, 0))
        commits = self.last_txnid(p) - t0
        self.assertGreaterEqual(commits, (keys + markers) // 7)
        self.assertRegex(r.stderr, rb"adopt: (stamping|checking) .*: \d+ entries read; stamped \d+")
        self.verify_ok(p)
        self.assertEqual(self.adopt(p, "--batch", "7")[0], (0, 0, 0))
        # the same stamps (modulo time) as in one big transaction
        self.adopt(q)
        tp = self.check_bookkeeping(p, 0)[0]
        tq = self.check_bookkeeping(q, 0)[0]
        self.assertEqual(sorted(tp), sorted(tq))

    def test_repairs_drift(self):
        p = self.path()
        fx.build_consistent(p)
        env = fx.raw(p)
        alpha = env.open_db(b"alpha")
        dups = env.open_db(b"dups", dupsort=True)
        rev = env.open_db(b"rev", reverse_key=True)
        time_db, recent, meta = (env.open_db(n) for n in (fx.TIME, fx.RECENT, fx.META))
        with env.begin(write=True) as txn:
            txn.put(b"new", b"1", db=alpha)               # stamped 1
            txn.delete(b"a1", db=alpha)                   # tombstoned 1
            txn.delete(b"d2", db=dups)                    # tombstoned 1 (last duplicate)
            txn.delete(b"d1", b"1", db=dups)              # nothing: d1 keeps "3"
            txn.drop(rev, delete=True)                    # tombstoned 3: marker, ab, ba
            txn.put(fx.xkey(b"", b"main1"), b"1", db=time_db)  # bad ts of a key: stamped 1
            txn.put(fx.xkey(b"", b"main2"), fx.ts(fx.T0, 0x12345600, fx.PUT), db=recent)  # repaired 1
            txn.put(fx.xkey(b"x", b"orphan"), fx.ts(fx.T0, 0x12345600, fx.PUT), db=recent)  # repaired 1
            txn.put(b"nonul", fx.ts(fx.T0, 0x12345600, fx.PUT), db=time_db)  # repaired 1
            txn.put(b"nonul", fx.ts(fx.T0, 0x12345600, fx.PUT), db=recent)
            txn.put(b"clock", struct.pack(">Q", fx.T0), db=meta)  # repaired 1
        created = env.open_db(b"created")                 # stamped 2: marker and key
        with env.begin(write=True) as txn:
            txn.put(b"c", b"1", db=created)
        env.close()
        out = self.verify_fails(p)
        self.assertGreaterEqual(int(re.search(r"verify: (\d+) violation", out).group(1)), 10)
        before = self.digest(p)
        t_start = int(time.time()) << 32
        counts, _ = self.adopt(p)
        self.assertEqual(counts, (4, 5, 4))
        self.verify_ok(p)
        self.assertEqual(self.digest(p), before)
        time_entries, recent_entries, node, _ = self.check_bookkeeping(p, t_start, node=0xABCDEF00)
        self.assertNotIn(b"nonul", time_entries)
        self.assertNotIn(fx.xkey(b"x", b"orphan"), recent_entries)
        self.assertEqual(fx.parse_ts(time_entries[fx.xkey(b"rev", b"")])[2], fx.DELETE)
        self.assertEqual(fx.parse_ts(time_entries[fx.xkey(b"alpha", b"a1")])[2], fx.DELETE)
        self.assertEqual(fx.parse_ts(time_entries[fx.xkey(b"created", b"")])[2], fx.PUT)
        self.assertEqual(self.adopt(p)[0], (0, 0, 0))

    def test_fresh_timestamps_follow_the_newest_existing_one(self):
        p = self.path()
        future = 4_102_444_800 << 32  # 2100-01-01, from a peer with a fast clock
        s = fx.Stamper(p, start=future)
        s.create_db(b"alpha")
        s.put(b"alpha", b"k", b"v")
        s.close()
        env = fx.raw(p)
        meta, alpha = env.open_db(fx.META), env.open_db(b"alpha")
        with env.begin(write=True) as txn:
            txn.put(b"clock", struct.pack(">Q", fx.T0), db=meta)  # behind
            txn.put(b"late", b"v", db=alpha)
        env.close()
        counts, _ = self.adopt(p)
        self.assertEqual(counts, (1, 0, 1))
        time_entries, _, _, clock = self.check_bookkeeping(p, 0)
        newest_old = fx.parse_ts(time_entries[fx.xkey(b"alpha", b"k")])[0]
        fresh = fx.parse_ts(time_entries[fx.xkey(b"alpha", b"late")])[0]
        self.assertGreater(fresh, newest_old)
        self.assertGreaterEqual(clock, fresh)
        self.verify_ok(p)

    def test_clock_only_repair(self):
        p = self.path()
        fx.build_consistent(p)
        env = fx.raw(p)
        meta = env.open_db(fx.META)
        with env.begin(write=True) as txn:
            txn.put(b"clock", struct.pack(">Q", fx.T0), db=meta)
        env.close()
        self.verify_fails(p, "clock behind the timestamps", count=1)
        self.assertEqual(self.adopt(p)[0], (0, 0, 1))
        self.verify_ok(p)

    def test_missing_node_word(self):
        p = self.path()
        fx.build_consistent(p)
        env = fx.raw(p)
        meta = env.open_db(fx.META)
        with env.begin(write=True) as txn:
            txn.delete(b"node", db=meta)
        env.close()
        self.assertEqual(self.adopt(p)[0], (0, 0, 1))
        self.verify_ok(p)

    def test_keys_too_long_are_skipped(self):
        p = self.path()
        env = fx.raw(p)
        db = env.open_db(b"abc")
        with env.begin(write=True) as txn:
            txn.put(b"L" * 507, b"v", db=db)  # xkey 3 + 1 + 507 = 511: fits
            txn.put(b"M" * 508, b"v", db=db)  # 512: too long
            txn.put(b"short", b"v", db=db)
        env.close()
        counts, r = self.adopt(p)
        self.assertEqual(counts, (3, 0, 0))  # marker, L..., short
        err = r.stderr.decode()
        self.assertIn('warning: database "abc" key "MMMM', err)
        self.assertIn("is too long for an xkey (512 bytes, LMDB's limit is 511); skipped", err)
        self.assertIn("skipped 1 key(s) too long for an xkey", err)
        self.verify_fails(p, 'key too long for an xkey: database "abc" key "MMM', count=1)
        self.assertEqual(self.adopt(p)[0], (0, 0, 0))

    def test_grows_a_full_map(self):
        p = self.path()
        env = fx.open_env(p, map_size=1 << 20)
        db = env.open_db(b"data")
        i = 0
        try:
            while True:
                with env.begin(write=True) as txn:
                    for _ in range(100):
                        txn.put(b"key%06d" % i, b"x" * 40, db=db)
                        i += 1
        except lmdb.MapFullError:
            pass
        env.close()
        env = fx.raw(p)
        with env.begin() as txn:
            n = txn.stat(env.open_db(b"data", txn=txn, create=False))["entries"]
        env.close()
        self.assertGreater(n, 1000)
        counts, r = self.adopt(p, "--batch", "500")
        self.assertEqual(counts, (n + 1, 0, 0))
        self.assertIn(b"the map is full; growing it to", r.stderr)
        self.verify_ok(p)

    def test_nosubdir(self):
        p = os.path.join(self.tmp, "file.mdb")
        env = fx.open_env(p, subdir=False)
        with env.begin(write=True) as txn:
            txn.put(b"k", b"v")
        env.close()
        self.assertEqual(self.adopt(p)[0], (1, 0, 0))
        self.assertEqual(self.verify_ok(p), "ok: 1 keys in 1 databases\n")

    def test_refuses_dupsort_main_database(self):
        p = self.path()
        # python3-lmdb cannot set flags on the main database; mdb_load can
        dump = b"VERSION=3\nformat=print\ntype=btree\ndupsort=1\nHEADER=END\n k\n v1\n k\n v2\nDATA=END\n"
        subprocess.run(["mdb_load", p], input=dump, check=True, capture_output=True)
        r = run("adopt", p)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"the main database is DUPSORT", r.stderr)


class ShimTests(Base):
    """Environments written by an unmodified python3-lmdb program through the
    shim (LD_PRELOAD): verify passes, the digest equals the same program's
    output without the shim, and adopt finds nothing to do."""

    PROGRAM = textwrap.dedent("""
        import sys, lmdb
        env = lmdb.open(sys.argv[1], max_dbs=8, map_size=64 << 20)
        main = env.open_db(None)
        plain = env.open_db(b"plain")
        dups = env.open_db(b"dups", dupsort=True)
        ints = env.open_db(b"ints", integerkey=True)
        with env.begin(write=True) as txn:
            for i in range(200):
                txn.put(b"k%04d" % i, b"v%d" % i, db=plain)
                txn.put(b"d%02d" % (i % 17), b"%d" % i, db=dups)
                txn.put(i.to_bytes(4, sys.byteorder), b"i", db=ints)
            txn.put(b"top", b"level", db=main)
        with env.begin(write=True) as txn:
            for i in range(0, 200, 3):
                txn.delete(b"k%04d" % i, db=plain)
            txn.delete(b"d03", b"3", db=dups)
            txn.delete(b"d05", db=dups)
            txn.replace(b"top", b"changed", db=main)
            cur = txn.cursor(db=plain)
            cur.set_range(b"k0100")
            cur.delete()
        tmp = env.open_db(b"tmp")
        with env.begin(write=True) as txn:
            txn.put(b"x", b"y", db=tmp)
        with env.begin(write=True) as txn:
            txn.drop(tmp, delete=True)
        env.close()
    """)

    def test_shim_written_environment(self):
        if not SHIM:
            self.skipTest("TRLMDB_SHIM not set (the shim is not built)")
        with_shim, without = self.path("shim"), self.path("plain")
        prog = os.path.join(self.tmp, "writer.py")
        with open(prog, "w") as f:
            f.write(self.PROGRAM)
        env = dict(os.environ, LD_PRELOAD=SHIM)
        subprocess.run([sys.executable, prog, with_shim], check=True, env=env, timeout=120)
        subprocess.run([sys.executable, prog, without], check=True, timeout=120)
        out = self.verify_ok(with_shim)
        self.assertRegex(out, r"^ok: \d+ keys in 4 databases\n$")
        self.assertEqual(self.digest(with_shim), self.digest(without))
        self.assertEqual(self.adopt(with_shim)[0], (0, 0, 0))


class ServeTests(Base):
    """`trlmdb serve` hosting the replicator of environments written by
    short-lived programs, and the replicator section of `trlmdb stat`. Nodes
    run on loopback with port 0; every wait is bounded."""

    SECRET = "cli-serve-test-secret"
    WAIT = 20  # seconds, for anything that should take milliseconds

    WRITER = textwrap.dedent("""
        import sys, lmdb
        env = lmdb.open(sys.argv[1], max_dbs=8, map_size=64 << 20)
        db = env.open_db(b"things")
        with env.begin(write=True) as txn:
            for i in range(int(sys.argv[3])):
                txn.put(b"%s-%04d" % (sys.argv[2].encode(), i), b"value %d" % i, db=db)
            txn.put(sys.argv[2].encode(), b"main", db=env.open_db(None, txn=txn))
        env.close()
    """)

    def setUp(self):
        super().setUp()
        self.procs, self.logs = [], []
        self.addCleanup(self.kill_all)

    def kill_all(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)
            p.stdout.close()
        for f in self.logs:
            f.close()

    def clean_env(self, **extra):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRLMDB_")}
        env.update(extra)
        return env

    def node(self, name, listen="127.0.0.1:0", peers=()):
        """An empty environment directory named "db" (the name on the wire)
        with its trlmdb.conf, which writers read too."""
        path = self.path(os.path.join(name, "db"))
        with open(os.path.join(path, "trlmdb.conf"), "w") as f:
            f.write("# written by the test\nlisten = %s\nsecret = %s\n" % (listen, self.SECRET))
            for peer in peers:
                f.write("peers = %s\n" % peer)
        return path

    def start(self, path, *opts, env=None):
        """Starts `trlmdb serve`; returns (process, port, node) once it is serving."""
        errlog = open(os.path.join(self.tmp, "serve-%d.err" % len(self.procs)), "w+b")
        self.logs.append(errlog)
        p = subprocess.Popen([CLI, "serve", *opts, path], stdout=subprocess.PIPE, stderr=errlog,
                             env=env or self.clean_env())
        self.procs.append(p)
        ready, _, _ = select.select([p.stdout], [], [], self.WAIT)
        line = p.stdout.readline().decode() if ready else ""
        errlog.seek(0)
        m = re.match(r"^serving (.+) as node ([0-9a-f]{8}), listening on 127\.0\.0\.1:(\d+)\n$", line)
        self.assertIsNotNone(m, "serve did not start: %r, stderr: %s" % (
            line, errlog.read().decode(errors="replace")))
        self.assertEqual(m.group(1), path)
        return p, int(m.group(3)), m.group(2)

    def stop(self, p, sig=signal.SIGTERM):
        p.send_signal(sig)
        rc = p.wait(timeout=self.WAIT)
        self.assertEqual(rc, 0, "serve exited with %d on signal %d" % (rc, sig))
        self.assertEqual(p.stdout.read(), b"", "nothing on stdout after the first line")

    def write(self, path, prefix, count=50):
        prog = os.path.join(self.tmp, "writer.py")
        with open(prog, "w") as f:
            f.write(self.WRITER)
        env = self.clean_env(LD_PRELOAD=SHIM)
        subprocess.run([sys.executable, prog, path, prefix, str(count)], check=True, env=env,
                       timeout=self.WAIT)

    def wait_for(self, what, cond):
        deadline = time.monotonic() + self.WAIT
        while time.monotonic() < deadline:
            if cond():
                return
            time.sleep(0.02)
        self.fail("timed out after %d s waiting for %s" % (self.WAIT, what))

    def peer_rows(self, path):
        """The rows of the peer table of `trlmdb stat`, as dicts."""
        out = self.ok("stat", path)
        rows = []
        lines = out.splitlines()
        for i, line in enumerate(lines):
            if re.match(r"^  address +dir +state +node +last contact +awaiting ack +sent +received +note$", line):
                for row in lines[i + 1:]:
                    m = re.match(r"^  (\S+) +(in|out) +(\S+) +(\S+) +(never|\d+(?:\.\d)? s ago) +(\d+) +(\d+) +(\d+)(?:  (.*))?$", row)
                    if not m:
                        break
                    rows.append(dict(zip(("addr", "dir", "state", "node", "last", "awaiting",
                                          "sent", "received", "note"), m.groups())))
        return rows, out

    def digests_equal(self, *paths):
        return len({self.digest(p) for p in paths}) == 1

    def test_two_nodes_converge_and_stop_cleanly(self):
        if not SHIM:
            self.skipTest("TRLMDB_SHIM not set (the shim is not built)")
        a = self.node("a")
        pa, port_a, node_a = self.start(a)
        b = self.node("b", peers=["127.0.0.1:%d" % port_a])
        pb, port_b, node_b = self.start(b, "--log", "warn")

        # Both sides show the session in their replicator section.
        self.wait_for("a connected peer in `trlmdb stat` of b",
                      lambda: any(r["state"] == "connected" for r in self.peer_rows(b)[0]))
        self.wait_for("a connected peer in `trlmdb stat` of a",
                      lambda: any(r["state"] == "connected" for r in self.peer_rows(a)[0]))
        rows, out = self.peer_rows(b)
        self.assertIn("listening on:   127.0.0.1:%d\n" % port_b, out)
        self.assertRegex(out, r"\nreplicator: +running in process %d \(environment \"db\" on the wire, node [0-9a-f]{8}\)\n" % pb.pid)
        self.assertRegex(out, r"\nbacklog: +\d+ changes not yet acknowledged by every peer\n")
        self.assertRegex(out, r"\ntraffic: +\d+ bytes sent, \d+ bytes received, \d+ changes applied\n")
        self.assertIn("\npeers:          1\n", out)
        self.assertEqual(len(rows), 1, out)
        self.assertEqual((rows[0]["addr"], rows[0]["dir"], rows[0]["state"]),
                         ("127.0.0.1:%d" % port_a, "out", "connected"))
        self.assertEqual(rows[0]["node"], node_a)
        self.assertRegex(rows[0]["last"], r"^\d+ s ago$")
        self.assertGreater(int(rows[0]["sent"]), 0)
        self.assertGreater(int(rows[0]["received"]), 0)
        rows_a, _ = self.peer_rows(a)
        self.assertEqual([(r["dir"], r["state"], r["node"]) for r in rows_a],
                         [("in", "connected", node_b)])

        # A short-lived program writes a; b gets it, then the other way round.
        self.write(a, "from-a")
        self.wait_for("equal digests after a write on a", lambda: self.digests_equal(a, b))
        env = fx.open_env(b, readonly=True)
        try:
            with env.begin(db=env.open_db(b"things")) as txn:
                self.assertEqual(txn.get(b"from-a-0049"), b"value 49")
        finally:
            env.close()
        self.write(b, "from-b", 10)
        self.wait_for("equal digests after a write on b", lambda: self.digests_equal(a, b))
        for p in (a, b):
            self.assertRegex(self.verify_ok(p), r"^ok: 62 keys in 2 databases\n$")

        self.stop(pa, signal.SIGTERM)
        self.stop(pb, signal.SIGINT)
        for p in (a, b):
            self.assertFalse(os.path.exists(os.path.join(p, "trlmdb.status")))
            self.assertIn("\nreplicator:     not running\n", self.ok("stat", p))

    def test_refusals(self):
        env = self.clean_env()
        bare = self.path("bare")
        cases = [
            ([bare], "no replication configured for \"%s\": set TRLMDB_LISTEN / TRLMDB_PEERS or write \"%s/trlmdb.conf\"" % (bare, bare)),
            ([os.path.join(self.tmp, "missing")], "No such file or directory"),
            (["--log", "loud", bare], "--log needs error, warn, info or debug"),
            (["--map-size", "x", bare], "--map-size needs a positive integer"),
            ([], "missing ENV"),
        ]
        for args, message in cases:
            r = subprocess.run([CLI, "serve", *args], capture_output=True, env=env, timeout=self.WAIT)
            self.assertEqual(r.returncode, 2, (args, r))
            self.assertEqual(r.stdout, b"", args)
            self.assertIn(message, r.stderr.decode(), args)
        self.assertEqual(os.listdir(bare), [], "nothing may be created without a configuration")

        bad = self.path("bad")
        with open(os.path.join(bad, "trlmdb.conf"), "w") as f:
            f.write("peers = not an address\n")
        r = subprocess.run([CLI, "serve", bad], capture_output=True, env=env, timeout=self.WAIT)
        self.assertEqual(r.returncode, 2, r)
        self.assertRegex(r.stderr.decode(), r"^trlmdb serve: bad replication configuration for \"%s\": %s/trlmdb\.conf:1: peers" % (re.escape(bad), re.escape(bad)))

        # Settings from the environment need no file; a non-loopback listener needs a secret.
        r = subprocess.run([CLI, "serve", bare], capture_output=True, timeout=self.WAIT,
                           env=self.clean_env(TRLMDB_LISTEN="0.0.0.0:0"))
        self.assertEqual(r.returncode, 2, r)
        self.assertIn(b"needs a cluster secret", r.stderr)

    def test_one_replicator_per_environment(self):
        a = self.node("a")
        p, _, _ = self.start(a)
        r = subprocess.run([CLI, "serve", a], capture_output=True, env=self.clean_env(),
                           timeout=self.WAIT)
        self.assertEqual(r.returncode, 2, r)
        self.assertEqual(r.stdout, b"")
        self.assertIn("not serving: the replicator of this environment runs in process %d\n" % p.pid,
                      r.stderr.decode())
        self.assertIsNone(p.poll(), "the first serve keeps running")
        # A new environment gets a map that can take in what the peers hold.
        self.assertIn("\nmap size:       1073741824 bytes", self.ok("stat", a))
        self.stop(p)
        # Once it is gone the environment can be served again.
        p, _, _ = self.start(a)
        self.stop(p)

    def test_stat_after_sigkill_reports_stale_status(self):
        a = self.node("a")
        p, port, _ = self.start(a)
        status = os.path.join(a, "trlmdb.status")
        self.wait_for("the status file", lambda: os.path.exists(status))
        out = self.ok("stat", a)
        self.assertIn("listening on:   127.0.0.1:%d\n" % port, out)
        self.assertIn("\npeers:          0\n", out)
        p.kill()
        p.wait(timeout=self.WAIT)
        self.assertTrue(os.path.exists(status), "SIGKILL leaves the status file behind")
        self.assertIn("\nreplicator:     not running (stale status from pid %d)\n" % p.pid,
                      self.ok("stat", a))
        # Restarting takes over the environment at once.
        p2, _, _ = self.start(a)
        self.wait_for("a fresh status", lambda: ("running in process %d " % p2.pid) in self.ok("stat", a))
        self.stop(p2)

    def test_nosubdir_environment_configured_by_variables(self):
        p = os.path.join(self.tmp, "data.mdb")
        env = fx.open_env(p, subdir=False)
        env.close()
        proc, port, _ = self.start(p, "--map-size", str(128 << 20),
                                   env=self.clean_env(TRLMDB_LISTEN="127.0.0.1:0"))
        self.wait_for("the status file", lambda: os.path.exists(p + "-trlmdb.status"))
        out = self.ok("stat", p)
        self.assertIn("\nreplicator:     running in process %d (environment \"data.mdb\"" % proc.pid, out)
        self.assertIn("\nlistening on:   127.0.0.1:%d\n" % port, out)
        self.stop(proc)
        self.assertFalse(os.path.exists(p + "-trlmdb.status"))
        self.assertTrue(self.ok("stat", p).endswith("\nreplicator:     not running\n"))

    def test_peer_that_is_down(self):
        # A configured peer nobody listens on: serve runs, stat says why it is not connected.
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            dead = s.getsockname()[1]  # closed again: nobody listens there
        a = self.node("a", peers=["127.0.0.1:%d" % dead])
        p, _, _ = self.start(a)
        self.wait_for("a peer row with a note", lambda: any(
            r["note"] for r in self.peer_rows(a)[0]))
        rows, _ = self.peer_rows(a)
        self.assertEqual(len(rows), 1)
        self.assertEqual((rows[0]["addr"], rows[0]["dir"], rows[0]["node"], rows[0]["last"]),
                         ("127.0.0.1:%d" % dead, "out", "-", "never"))
        self.assertIn(rows[0]["state"], ("backoff", "connecting"))
        self.stop(p)


if __name__ == "__main__":
    unittest.main()
