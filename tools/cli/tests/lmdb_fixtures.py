"""Builds LMDB environments for the `trlmdb` CLI tests with python3-lmdb.

The DESIGN.md section 1 format is re-implemented here on purpose, apart from
the C++ code, so that the tests check the tools against the specification:
  xkey = dbname || 0x00 || key   (main database: empty name; marker: empty key)
  ts   = u64be(seconds << 32 | fraction) || u32be(node word), node LSB 1 put / 0 delete
  _trlmdb_meta: "node" -> u32be node word (LSB 0), "clock" -> u64be high-water mark
"""

import struct

import lmdb

TIME = b"_trlmdb_time"
RECENT = b"_trlmdb_recent"
META = b"_trlmdb_meta"
PUT, DELETE = 1, 0

# mdb_dbi_flags bits
REVERSEKEY, DUPSORT, INTEGERKEY, DUPFIXED, INTEGERDUP, REVERSEDUP = 0x02, 0x04, 0x08, 0x10, 0x20, 0x40

T0 = 1_700_000_000 << 32  # 2023-11-14: older than any wall clock the tests run at


def ts(time, node, op):
    return struct.pack(">QI", time, (node & ~0xFF) | op)


def parse_ts(value):
    time, node = struct.unpack(">QI", value)
    return time, node & ~0xFF, node & 0xFF


def xkey(dbname, key):
    return dbname + b"\0" + key


def open_env(path, subdir=True, map_size=64 << 20, readonly=False):
    return lmdb.open(path, subdir=subdir, max_dbs=256, map_size=map_size, readonly=readonly,
                     lock=True)


def u32(n):
    return struct.pack("=I", n)  # INTEGERKEY keys are native unsigned ints


class Stamper:
    """Writes user data and, in the same transaction, the bookkeeping the shim
    would write: the way to build consistent stamped environments."""

    def __init__(self, path, node=0xABCDEF00, subdir=True, map_size=64 << 20, start=T0):
        self.env = open_env(path, subdir=subdir, map_size=map_size)
        self.node = node
        self.t = start
        self.dbs = {b"": self.env.open_db(None)}
        self.time = self.env.open_db(TIME)
        self.recent = self.env.open_db(RECENT)
        self.meta = self.env.open_db(META)
        with self.env.begin(write=True) as txn:
            txn.put(b"node", struct.pack(">I", node), db=self.meta)

    def _stamp(self, txn, x, op):
        self.t += 1 << 20
        value = ts(self.t, self.node, op)
        txn.put(x, value, db=self.time)
        txn.put(x, value, db=self.recent)
        txn.put(b"clock", struct.pack(">Q", self.t), db=self.meta)

    def create_db(self, name, **flags):
        db = self.env.open_db(name, **flags)
        self.dbs[name] = db
        with self.env.begin(write=True) as txn:
            self._stamp(txn, xkey(name, b""), PUT)
        return db

    def put(self, dbname, key, value, **kw):
        with self.env.begin(write=True) as txn:
            if txn.put(key, value, db=self.dbs[dbname], **kw):
                self._stamp(txn, xkey(dbname, key), PUT)

    def delete(self, dbname, key, value=b""):
        with self.env.begin(write=True) as txn:
            db = self.dbs[dbname]
            if txn.delete(key, value, db=db):
                # DUPSORT: key level, a key with duplicates left is re-stamped
                still = txn.get(key, db=db) is not None
                self._stamp(txn, xkey(dbname, key), PUT if still else DELETE)

    def drop(self, name):
        with self.env.begin(write=True) as txn:
            db = self.dbs.pop(name)
            keys = list(txn.cursor(db=db).iternext_nodup(keys=True, values=False))
            txn.drop(db, delete=True)
            for k in keys:
                self._stamp(txn, xkey(name, k), DELETE)
            self._stamp(txn, xkey(name, b""), DELETE)

    def close(self):
        self.env.close()


def build_consistent(path, subdir=True):
    """A stamped environment with every database kind and some history."""
    s = Stamper(path, subdir=subdir)
    s.put(b"", b"main1", b"m1")
    s.put(b"", b"main2", b"m2")
    s.create_db(b"alpha")
    s.put(b"alpha", b"a1", b"x")
    s.put(b"alpha", b"a2", b"y")
    s.put(b"alpha", b"a3", b"z")
    s.delete(b"alpha", b"a3")
    s.create_db(b"dups", dupsort=True)
    for v in (b"1", b"2", b"3"):
        s.put(b"dups", b"d1", v)
    s.put(b"dups", b"d2", b"only")
    s.delete(b"dups", b"d1", b"2")  # d1 keeps two duplicates
    s.create_db(b"ints", integerkey=True)
    for n in (1, 256, 70000):
        s.put(b"ints", u32(n), b"n%d" % n)
    s.create_db(b"rev", reverse_key=True)
    s.put(b"rev", b"ab", b"1")
    s.put(b"rev", b"ba", b"2")
    s.create_db(b"gone")
    s.put(b"gone", b"g1", b"1")
    s.drop(b"gone")
    s.create_db(b"empty")
    s.close()
    # keys: main 2, alpha 2, dups 2, ints 3, rev 2, empty 0 -> 11 keys in 6 databases
    return 11, 6


def raw(path, subdir=True):
    """The environment without any bookkeeping help, to write around the shim."""
    return open_env(path, subdir=subdir)


def read_all(env, dbname, **flags):
    db = env.open_db(dbname, create=False, **flags)
    with env.begin() as txn:
        return list(txn.cursor(db=db).iternext())
