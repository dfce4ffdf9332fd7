"""Records, environments and the oracle of the chaos harness (README.md).

Runs under the system Python (/usr/bin/python3, python3-lmdb), which reads the
environments with the real liblmdb, without the shim: the reserved databases
_trlmdb_time (xkey -> stamp) are then plain named databases.
"""

import os
import sys
import zlib

import lmdb

TS_SIZE = 12
MAIN = "-"  # the main database in records and reports


# --- stamps and values -------------------------------------------------------
def ts_node(ts):
    """The node word of a stamp without its op byte."""
    return int.from_bytes(ts[8:12], "big") & ~0xFF


def ts_is_put(ts):
    return ts[11] & 0xFF == 1


def ts_str(ts):
    if ts is None:
        return "none"
    secs = int.from_bytes(ts[0:4], "big")
    frac = int.from_bytes(ts[4:8], "big")
    return "%d.%010d/%06x/%s" % (secs, frac * 10**10 >> 32, ts_node(ts) >> 8,
                                 "put" if ts_is_put(ts) else "del")


_LITERAL = set(b"abcdefghijklmnopqrstuvwxyz0123456789.")


def value_repr(v):
    """chaos_node.c's value_repr: short [a-z0-9.] tokens as they are, others hashed."""
    v = bytes(v)
    if 0 < len(v) <= 48 and all(c in _LITERAL for c in v):
        return v.decode()
    return "h%d.%08x" % (len(v), zlib.crc32(v))


def set_repr(values):
    return "[" + ",".join(value_repr(v) for v in values) + "]"


def xkey(db, key):
    name = b"" if db == MAIN else db.encode()
    return name + b"\0" + key.encode()


# --- records -------------------------------------------------------------------
class Write:
    """A committed change of one key: its stamp lies in [lo, hi] (lo == hi when
    known exactly); state is "-" (absent) or the value's representation."""
    __slots__ = ("node", "db", "key", "lo", "hi", "state", "seq", "how")

    def __init__(self, node, db, key, lo, hi, state, seq, how):
        self.node, self.db, self.key, self.lo, self.hi = node, db, key, lo, hi
        self.state, self.seq, self.how = state, seq, how

    def exact(self):
        return self.lo == self.hi

    def describe(self):
        stamp = ts_str(self.hi) if self.exact() else "[%s .. %s]" % (ts_str(self.lo),
                                                                      ts_str(self.hi))
        return "%s by %s (txn %s, %s) at %s" % (self.state, self.node, self.seq, self.how, stamp)


class NodeRecords:
    """What one node's record file says it committed."""

    def __init__(self, node):
        self.node = node
        self.words = set()
        self.writes = []  # Write
        self.drops = []  # (db, lo, hi, seq)
        self.commits = self.aborts = self.errors = self.commit_failures = 0
        self.superseded = 0
        self.empties = 0  # mdb_drop(…, 0)
        self.incomplete = 0
        self.last = None  # the newest last_commit_ts of a complete record
        self.recovered = 0

    @property
    def word(self):
        return next(iter(self.words)) if self.words else None


def parse_records(node, path, offset=0, rec=None):
    """Parses path from byte offset on into rec (a new NodeRecords if None).
    Returns rec; rec.offset is where the last complete line ends."""
    rec = rec or NodeRecords(node)
    rec.offset = offset
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return rec
    end = data.rfind(b"\n") + 1
    rec.offset = offset + end
    lines = data[:end].decode("utf-8", "replace").split("\n")
    pending = None  # the commit being read: (seq, last, writes, drops)
    for line in lines:
        t = line.split(" ")
        kind = t[0]
        try:
            if kind == "S":
                if t[2] != "00000000":
                    rec.words.add(int(t[2], 16))
                pending = None
            elif kind == "C":
                if pending is not None:
                    rec.incomplete += 1
                pending = (t[1], bytes.fromhex(t[2]), [], [])
            elif kind == "K" and pending:
                ts = bytes.fromhex(t[3])
                pending[2].append(Write(node, t[1], t[2], ts, ts, t[4], pending[0], "committed"))
            elif kind == "R" and pending:
                pending[2].append(Write(node, t[1], t[2], bytes.fromhex(t[3]), bytes.fromhex(t[4]),
                                        t[5], pending[0], "committed, stamp in a range"))
            elif kind == "X" and pending:
                pending[3].append((t[1], bytes.fromhex(t[2]), bytes.fromhex(t[3]), pending[0]))
            elif kind == "U" and pending:
                rec.superseded += 1
            elif kind == "E" and pending and t[1] == pending[0]:
                seq, last, writes, drops = pending
                rec.commits += 1
                if seq.startswith("r"):
                    rec.recovered += 1
                rec.writes.extend(writes)
                rec.drops.extend(drops)
                rec.last = last if rec.last is None else max(rec.last, last)
                pending = None
            elif kind == "Y":
                rec.empties += 1
            elif kind == "A":
                rec.aborts += 1
            elif kind == "Z":
                rec.errors += 1
            elif kind == "F":
                rec.commit_failures += 1
            elif kind in ("", "#"):
                pass
        except (IndexError, ValueError):
            # A record cut by SIGKILL: the environment tells the rest (recover).
            pending = None
    if pending is not None:
        rec.incomplete += 1
    return rec


# --- environments ------------------------------------------------------------
def open_env(path):
    return lmdb.open(path, readonly=True, lock=False, max_dbs=64, subdir=True)


def user_db_names(txn):
    """Named user databases: keys of the main database that open as databases."""
    names = []
    for k, _v in txn.cursor():
        if k.startswith(b"_trlmdb_"):
            continue
        names.append(k)
    return names


def read_state(path, db_names, main_prefix="mk"):
    """{(db, key): state} for every key of the given databases (and main-database
    keys starting with main_prefix), and {(db, key): stamp} from _trlmdb_time,
    and {db: marker stamp}."""
    env = open_env(path)
    state, stamps, markers = {}, {}, {}
    try:
        with env.begin() as txn:
            for k, v in txn.cursor():
                if k.startswith(main_prefix.encode()):
                    state[(MAIN, k.decode())] = value_repr(v)
            for name in db_names:
                try:
                    dbh = env.open_db(name.encode(), txn=txn, create=False)
                except lmdb.NotFoundError:
                    continue
                dup = dbh.flags(txn)["dupsort"]
                cur = txn.cursor(dbh)
                if not dup:
                    for k, v in cur:
                        state[(name, k.decode())] = value_repr(v)
                else:
                    groups = {}
                    for k, v in cur:
                        groups.setdefault(k.decode(), []).append(v)
                    for k, vs in groups.items():
                        state[(name, k)] = set_repr(vs)
            try:
                tdb = env.open_db(b"_trlmdb_time", txn=txn, create=False)
            except lmdb.NotFoundError:
                tdb = None
            if tdb is not None:
                for xk, ts in txn.cursor(tdb):
                    name, _, key = bytes(xk).partition(b"\0")
                    db = MAIN if not name else name.decode("utf-8", "replace")
                    if key:
                        stamps[(db, key.decode("utf-8", "replace"))] = bytes(ts)
                    else:
                        markers[db] = bytes(ts)
    finally:
        env.close()
    return state, stamps, markers


def recover(path, rec, records_path):
    """After a SIGKILL, before the restart: the node may have committed a
    transaction it did not get to record. Its changes are the entries of
    _trlmdb_time with the node's word and a stamp newer than its last recorded
    commit (the hybrid clock only moves forward), except database markers the
    replicator re-stamped as created. They are appended to the record file as
    one commit "r<n>"; returns how many changes were recovered."""
    word = rec.word
    if word is None:
        return 0
    env = open_env(path)
    found = []
    try:
        with env.begin() as txn:
            try:
                tdb = env.open_db(b"_trlmdb_time", txn=txn, create=False)
            except lmdb.NotFoundError:
                return 0
            for xk, ts in txn.cursor(tdb):
                ts = bytes(ts)
                if ts_node(ts) != word or (rec.last is not None and ts <= rec.last):
                    continue
                name, _, key = bytes(xk).partition(b"\0")
                db = MAIN if not name else name.decode()
                if not key:
                    if not ts_is_put(ts):
                        found.append(("X", db, None, ts, None))
                    continue
                st = "-"
                if ts_is_put(ts):
                    try:
                        dbh = env.open_db(name, txn=txn, create=False) if name else None
                    except lmdb.NotFoundError:
                        dbh = False
                    if dbh is not False:
                        cur = txn.cursor(dbh) if dbh is not None else txn.cursor()
                        if cur.set_key(key):
                            dup = dbh is not None and dbh.flags(txn)["dupsort"]
                            st = (set_repr(list(cur.iternext_dup())) if dup
                                  else value_repr(cur.value()))
                found.append(("K", db, key.decode(), ts, st))
    finally:
        env.close()
    if not found:
        return 0
    last = max(f[3] for f in found)
    n = rec.recovered + 1
    lines = ["C r%d %s 0" % (n, last.hex())]
    for kind, db, key, ts, st in found:
        if kind == "X":
            lines.append("X %s %s %s" % (db, ts.hex(), ts.hex()))
        else:
            lines.append("K %s %s %s %s" % (db, key, ts.hex(), st))
    lines.append("E r%d" % n)
    with open(records_path, "a") as f:
        f.write("\n# recovered after SIGKILL from the environment\n" + "\n".join(lines) + "\n")
    return len(found)


# --- the oracle ----------------------------------------------------------------
class Expectation:
    __slots__ = ("states", "winners", "stamp")

    def __init__(self, states, winners, stamp):
        self.states = states  # acceptable final states
        self.winners = winners  # the candidate writes that may be newest
        self.stamp = stamp  # the exact stamp every node must hold, or None


def expectations(all_records):
    """{(db, key): Expectation} from every node's records.

    A key's candidates are its recorded writes and the mdb_drop(db, 1) of its
    database (a deletion of every key of the database older than the marker).
    The newest candidate wins; when stamps are only known as ranges, every
    candidate whose range reaches above the largest lower bound may be the
    newest (ambiguous: any of their states is accepted)."""
    by_key = {}
    drops = {}
    for rec in all_records:
        for w in rec.writes:
            by_key.setdefault((w.db, w.key), []).append(w)
        for db, lo, hi, seq in rec.drops:
            drops.setdefault(db, []).append(Write(rec.node, db, "*", lo, hi, "-", seq,
                                                  "mdb_drop(%s, 1)" % db))
    out = {}
    for (db, key), writes in by_key.items():
        cands = writes + drops.get(db, [])
        top_lo = max(c.lo for c in cands)
        winners = [c for c in cands if c.hi >= top_lo]
        states = {c.state for c in winners}
        stamp = winners[0].hi if len(winners) == 1 and winners[0].exact() else None
        out[(db, key)] = Expectation(states, winners, stamp)
    return out


def check_nodes(all_records, finals, log=print, max_reports=40):
    """Compares every node's final state with the oracle. finals: {node:
    (state, stamps, markers)}. Returns (divergences, ambiguous, keys)."""
    exp = expectations(all_records)
    keys = set(exp)
    for state, _stamps, _markers in finals.values():
        keys.update(state)
    divergences = 0
    ambiguous = sum(1 for e in exp.values() if len(e.states) > 1)
    for key in sorted(keys):
        e = exp.get(key)
        for node, (state, stamps, _markers) in sorted(finals.items()):
            got = state.get(key, "-")
            got_ts = stamps.get(key)
            problem = None
            if e is None:
                if got != "-":
                    problem = "holds %s (stamp %s) but no node recorded a write of it" % (
                        got, ts_str(got_ts))
            elif got not in e.states:
                problem = "holds %s (stamp %s), expected %s" % (
                    got, ts_str(got_ts), " or ".join(sorted(e.states)))
            elif e.stamp is not None and got_ts != e.stamp and not (
                    got == "-" and got_ts is None):
                problem = "holds the right state %s but stamp %s, expected %s" % (
                    got, ts_str(got_ts), ts_str(e.stamp))
            if problem:
                divergences += 1
                if divergences <= max_reports:
                    log("DIVERGENCE %s/%s on %s: %s" % (key[0], key[1], node, problem))
                    if e is not None:
                        for w in sorted(e.winners, key=lambda w: w.hi):
                            log("    newest write: %s" % w.describe())
    if divergences > max_reports:
        log("... %d divergences in all" % divergences)
    return divergences, ambiguous, len(keys)


def eprint(*a):
    print(*a, file=sys.stderr)
    sys.stderr.flush()


def ensure_dir(p):
    os.makedirs(p, exist_ok=True)
    return p
