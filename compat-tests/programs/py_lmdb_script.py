#!/usr/bin/python3
"""An ordinary python3-lmdb program (Debian's package, system Python).

py_lmdb_script.py ENVDIR writes an environment through python3-lmdb and
prints everything it reads, deterministically: named databases (one DUPSORT,
one DUPSORT|DUPFIXED), puts with and without overwrite/dupdata/append,
gets, deletes, cursor walks and positioning, replace/pop, putmulti, nested
write transactions (env.begin(write=True, parent=...)) that commit and
abort, txn.drop (empty and delete), env.stat() and txn.stat(), env.info()
without last_pgno (the one figure left out: the bookkeeping takes pages), the main
database's own iteration (which shows the names of the named databases, and
must not show the shim's reserved ones), an env.copy (plain and compact).

Under the shim its stdout must be byte-identical to the same run without it.
Exit status 0, or 1 with a traceback on an unexpected error.
"""

import os
import sys

import lmdb


def show(b):
    if b is None:
        return "None"
    if isinstance(b, (bytes, bytearray, memoryview)):
        b = bytes(b)
        if len(b) > 48:
            return "%d bytes %r...%r" % (len(b), b[:12], b[-4:])
        return repr(b)
    return repr(b)


def out(*a):
    print(*a, flush=False)


def stat_line(label, st):
    # All of it, page figures included: a user database's tree is shaped by
    # the user's operations only, and the main database's three extra records
    # (the shim's reserved databases) do not change its pages here.
    out("stat %s: %s" % (label, " ".join("%s=%s" % kv for kv in sorted(st.items()))))


def info_line(label, info):
    # last_pgno is left out: the shim's bookkeeping takes pages. (map_addr is
    # NULL without MDB_FIXEDMAP.)
    keep = {k: v for k, v in info.items() if k != "last_pgno"}
    out("info %s: %s" % (label, " ".join("%s=%s" % kv for kv in sorted(keep.items()))))


def walk(txn, db, label, limit=None):
    n = 0
    with txn.cursor(db=db) as cur:
        for k, v in cur:
            if limit is None or n < limit:
                out("  %s %s => %s" % (label, show(k), show(v)))
            n += 1
    out("  %s: %d entries" % (label, n))


def main_keys(txn, label):
    # Keys of the main database; the records of named databases hold page
    # numbers, so only the length of their values is shown.
    names = []
    with txn.cursor() as cur:
        for k, v in cur:
            names.append(bytes(k))
    out("main %s: %s" % (label, b" ".join(names).decode("latin-1")))
    for name in names:
        if name.startswith(b"_trlmdb_"):
            out("RESERVED NAME VISIBLE: %r" % name[8:])  # (the prefix is not printed)


def main():
    path = sys.argv[1]
    env = lmdb.open(path, max_dbs=6, map_size=64 << 20, subdir=True)
    out("version", lmdb.version())
    out("max_key_size", env.max_key_size(), "max_readers", env.max_readers())
    out("flags", sorted(env.flags().items()))
    info_line("fresh", env.info())

    people = env.open_db(b"people")
    tags = env.open_db(b"tags", dupsort=True)
    fixed = env.open_db(b"fixed", dupsort=True, dupfixed=True)
    scratch = env.open_db(b"scratch")

    out("-- puts")
    with env.begin(write=True) as txn:
        out("txn id", txn.id())
        for i in range(1500):
            k = b"person:%05d" % ((i * 7919) % 1500)
            r = txn.put(k, b"name %d, age %d" % (i, i % 90), db=people)
            assert r is True
        out("put existing overwrite=False:", txn.put(b"person:00001", b"x", db=people, overwrite=False))
        out("put existing overwrite=True:", txn.put(b"person:00001", b"replaced", db=people))
        out("put append in order:", txn.put(b"person:99999", b"last", db=people, append=True))
        for i in range(200):
            for j in range(i % 6 + 1):
                txn.put(b"tag%03d" % i, b"value-%02d" % ((j * 7) % 10), db=tags)
        out("put existing dup dupdata=False:", txn.put(b"tag005", b"value-00", db=tags, dupdata=False))
        out("put new dup dupdata=False:", txn.put(b"tag005", b"value-99", db=tags, dupdata=False))
        with txn.cursor(db=fixed) as cur:
            items = [(b"f%d" % (i % 4), (i * 37 % 1000).to_bytes(8, "big")) for i in range(800)]
            out("putmulti:", cur.putmulti(items))
            out("putmulti again (dupdata=False):", cur.putmulti(items[:10], dupdata=False))
        txn.put(b"plain-main-key", b"in the main database")
        txn.put(b"_trlmdb", b"looks like the reserved prefix")
        txn.put(b"_trlmdb`", b"sorts right after the reserved names")
        for i in range(50):
            txn.put(b"s%02d" % i, b"scratch %d" % i, db=scratch)
    stat_line("env", env.stat())
    info_line("after puts", env.info())

    out("-- reads")
    with env.begin() as txn:
        out("txn id", txn.id())
        out("get person:00001", show(txn.get(b"person:00001", db=people)))
        out("get missing", show(txn.get(b"person:missing", db=people)))
        out("get default", show(txn.get(b"nope", default=b"dflt", db=people)))
        out("get main plain", show(txn.get(b"plain-main-key")))
        out("get main reserved name", show(txn.get(b"_trlmdb_time")))
        out("get main reserved name", show(txn.get(b"_trlmdb_recent")))
        main_keys(txn, "keys")
        walk(txn, people, "people", limit=40)
        walk(txn, tags, "tags", limit=60)
        walk(txn, fixed, "fixed", limit=20)
        stat_line("people", txn.stat(people))
        stat_line("tags", txn.stat(tags))
        stat_line("fixed", txn.stat(fixed))
        stat_line("main", txn.stat(env.open_db()))
        with txn.cursor() as cur:
            out("main first", cur.first(), show(cur.key()))
            out("main set_range <reserved prefix>", cur.set_range(b"_trlmdb_"), show(cur.key()))
            out("main prev", cur.prev(), show(cur.key()))
            out("main next", cur.next(), show(cur.key()))
            out("main next", cur.next(), show(cur.key()))
            out("main last", cur.last(), show(cur.key()))
            out("main set_key reserved", cur.set_key(b"_trlmdb_meta"))
            out("main iterprev", [bytes(k) for k in cur.iterprev(values=False)][:8])
        with txn.cursor(db=tags) as cur:
            out("set_key tag010", cur.set_key(b"tag010"), show(cur.value()), "count", cur.count())
            out("next_dup", cur.next_dup(), show(cur.value()))
            out("last_dup", cur.last_dup(), show(cur.value()))
            out("prev_dup", cur.prev_dup(), show(cur.value()))
            out("first_dup", cur.first_dup(), show(cur.value()))
            out("next_nodup", cur.next_nodup(), show(cur.key()), show(cur.value()))
            out("prev_nodup", cur.prev_nodup(), show(cur.key()), show(cur.value()))
            out("set_key_dup", cur.set_key_dup(b"tag012", b"value-07"))
            out("set_range_dup", cur.set_range_dup(b"tag013", b"value-05"), show(cur.value()))
            out("set_range", cur.set_range(b"tag0105"), show(cur.key()))
            out("iternext_dup", [bytes(v) for v in cur.iternext_dup()])
            cur.set_key(b"tag100")
            out("iternext_nodup", [bytes(k) for k in cur.iternext_nodup()][:5])
            out("getmulti", [(bytes(k), bytes(v)) for k, v in cur.getmulti([b"tag003", b"tag004"], dupdata=True)])
        with txn.cursor(db=people) as cur:
            out("set_range person:0149", cur.set_range(b"person:0149"), show(cur.item()))
            out("iterprev", [bytes(k) for k in cur.iterprev(values=False)][:5])

    out("-- deletes, replace, pop")
    with env.begin(write=True) as txn:
        out("delete person:00002", txn.delete(b"person:00002", db=people))
        out("delete person:00002 again", txn.delete(b"person:00002", db=people))
        out("delete one dup", txn.delete(b"tag005", b"value-99", db=tags))
        out("delete missing dup", txn.delete(b"tag005", b"value-98", db=tags))
        out("delete all dups", txn.delete(b"tag011", db=tags))
        out("replace", show(txn.replace(b"person:00003", b"new value", db=people)))
        out("replace new", show(txn.replace(b"person:new", b"fresh", db=people)))
        out("pop", show(txn.pop(b"person:00004", db=people)))
        out("pop missing", show(txn.pop(b"person:00004", db=people)))
        with txn.cursor(db=people) as cur:
            cur.set_range(b"person:01000")
            n = 0
            while n < 300 and cur.delete():
                n += 1
            out("cursor deletes", n, show(cur.key()))
        with txn.cursor(db=tags) as cur:
            out("set_key tag020", cur.set_key(b"tag020"), "count", cur.count())
            out("delete dupdata", cur.delete(dupdata=True), show(cur.key()))
            out("replace dup", show(cur.replace(b"tag021", b"only")))
            out("pop dup key", show(cur.pop(b"tag022")))
        with txn.cursor(db=fixed) as cur:
            cur.set_key(b"f1")
            out("fixed count f1", cur.count())
            out("fixed delete", cur.delete(), cur.count())

    out("-- nested transactions")
    with env.begin(write=True) as parent:
        parent.put(b"nested-parent", b"p", db=scratch)
        child = env.begin(write=True, parent=parent)
        child.put(b"nested-child-aborted", b"c", db=scratch)
        child.delete(b"s00", db=scratch)
        child.abort()
        child = env.begin(write=True, parent=parent)
        child.put(b"nested-child-committed", b"c", db=scratch)
        child.delete(b"s01", db=scratch)
        grandchild = env.begin(write=True, parent=child)
        grandchild.put(b"nested-grandchild", b"g", db=scratch)
        grandchild.commit()
        grandchild = env.begin(write=True, parent=child)
        grandchild.put(b"nested-grandchild-aborted", b"g", db=scratch)
        grandchild.abort()
        child.commit()
        walk(parent, scratch, "scratch in parent", limit=10)
    txn = env.begin(write=True)
    txn.put(b"aborted-top", b"x", db=scratch)
    txn.abort()
    with env.begin() as txn:
        walk(txn, scratch, "scratch", limit=60)

    out("-- drop")
    with env.begin(write=True) as txn:
        txn.drop(scratch, delete=False)
        stat_line("scratch emptied", txn.stat(scratch))
        txn.put(b"after-drop", b"1", db=scratch)
    with env.begin(write=True) as txn:
        txn.drop(fixed, delete=True)
    with env.begin() as txn:
        main_keys(txn, "keys after drop")
        walk(txn, scratch, "scratch", limit=10)
    try:
        with env.begin() as txn:
            env.open_db(b"fixed", txn=txn, create=False)
        out("open dropped db: opened")
    except lmdb.NotFoundError as e:
        out("open dropped db: NotFoundError")

    out("-- errors")
    try:
        with env.begin(write=True) as txn:
            txn.put(b"", b"empty key", db=people)
    except lmdb.BadValsizeError:
        out("empty key: BadValsizeError")
    try:
        with env.begin() as txn:
            txn.put(b"k", b"v", db=people)
    except lmdb.ReadonlyError:
        out("write in read-only txn: ReadonlyError")
    try:
        env.open_db(b"notags", dupsort=True, create=False)
    except lmdb.NotFoundError:
        out("open missing db: NotFoundError")
    try:
        env.open_db(b"plain-main-key")
    except lmdb.IncompatibleError:
        out("open plain key as db: IncompatibleError")

    stat_line("env", env.stat())
    info_line("end", env.info())
    out("readers", env.reader_check())
    os.makedirs(os.path.join(path, "copy"))
    os.makedirs(os.path.join(path, "compact"))
    env.copy(os.path.join(path, "copy"))
    env.copy(os.path.join(path, "compact"), compact=True)
    env.close()

    for sub in ("copy", "compact"):
        env = lmdb.open(os.path.join(path, sub), max_dbs=6, readonly=True, lock=False)
        people = env.open_db(b"people", create=False)
        tags = env.open_db(b"tags", create=False)
        with env.begin() as txn:
            main_keys(txn, "keys of " + sub)
            walk(txn, people, sub + " people", limit=3)
            walk(txn, tags, sub + " tags", limit=3)
        env.close()
    out("done")


if __name__ == "__main__":
    main()
