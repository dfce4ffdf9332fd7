#!/usr/bin/python3
"""Deterministic input for the real-program tests.

gen_input.py OUTDIR writes:
  all.txt     mdb_dump "print" format, several databases in one file (loaded
              by `mdb_load -f all.txt ENV`): the main database (plain keys,
              some binary), "users" (2500 keys), "tags" (DUPSORT, 400 keys
              with 1 to 9 duplicates), "blobs" (values of 2 to 12 KB:
              overflow pages), "ints" (INTEGERKEY, native 4-byte keys) and
              "fixed" (DUPSORT|DUPFIXED, 8-byte duplicates).
  plain.txt   `mdb_load -T` plain text: key line, value line (for -s extra).
  again.txt   a part of all.txt's "users" section plus new keys, to be loaded
              with -N (no overwrite): existing keys are skipped.
  single.txt  one DUPSORT section without "database=", for `mdb_load -s`.
The same bytes every time (a fixed-seed generator, no clock, no hash seed).
"""

import os
import struct
import sys


class Rng:
    """xorshift64*: the same sequence on every Python."""

    def __init__(self, seed):
        self.s = seed & 0xFFFFFFFFFFFFFFFF or 1

    def next(self):
        s = self.s
        s ^= s >> 12
        s ^= (s << 25) & 0xFFFFFFFFFFFFFFFF
        s ^= s >> 27
        self.s = s
        return (s * 2685821657736338717) & 0xFFFFFFFFFFFFFFFF

    def below(self, n):
        return self.next() % n

    def bytes(self, n):
        out = bytearray()
        while len(out) < n:
            out += self.next().to_bytes(8, "little")
        return bytes(out[:n])

    def word(self, n):
        letters = b"abcdefghijklmnopqrstuvwxyz0123456789 -_.:/"
        return bytes(letters[self.below(len(letters))] for _ in range(n))


def esc(b):
    """mdb_dump -p style: printable bytes as is, backslash doubled, others \\xx."""
    out = []
    for c in b:
        if c == 0x5C:
            out.append("\\\\")
        elif 0x20 <= c < 0x7F:
            out.append(chr(c))
        else:
            out.append("\\%02x" % c)
    return "".join(out)


def section(name, flags, items):
    lines = ["VERSION=3", "format=print", "type=btree", "mapsize=67108864"]
    if name is not None:
        lines.append("database=" + name)
    for f in flags:
        lines.append(f + "=1")
    lines.append("HEADER=END")
    for k, v in items:
        lines.append(" " + esc(k))
        lines.append(" " + esc(v))
    lines.append("DATA=END")
    return "\n".join(lines) + "\n"


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    r = Rng(0x7261646F6D)

    main_items = []
    for i in range(300):
        main_items.append((b"main-%04d" % i, r.word(5 + r.below(40))))
    for i in range(20):
        main_items.append((b"\x00bin" + bytes([i, 255 - i]), r.bytes(1 + r.below(30))))
    main_items.append((b"_trlmdb", b"a key that looks like the reserved prefix"))
    main_items.append((b"_trlmdb`", b"sorts right after the reserved names"))

    users = []
    for i in range(2500):
        k = b"user:%06d" % ((i * 7919) % 1000003)
        users.append((k, b"name=" + r.word(3 + r.below(12)) + b";score=%d" % r.below(100000)))

    tags = []
    for i in range(400):
        k = b"tag-%03d" % i
        dups = sorted(set(r.word(2 + r.below(10)) for _ in range(1 + r.below(9))))
        for d in dups:
            tags.append((k, d))

    blobs = []
    for i in range(60):
        blobs.append((b"blob%02d" % i, r.bytes(2000 + r.below(10000))))

    ints = []
    for i in range(500):
        ints.append((struct.pack("=I", (i * 2654435761) % 4000000007 % 2**32), b"int value %d" % i))

    fixed = []
    for i in range(40):
        for j in range(1 + r.below(300)):
            fixed.append((b"f%02d" % i, struct.pack(">Q", r.below(10**12))))

    def sort_unique(items, keyfn=lambda kv: kv):
        return sorted(set(items), key=keyfn)

    with open(os.path.join(out, "all.txt"), "w", newline="\n") as f:
        f.write(section(None, [], sort_unique(main_items)))
        f.write(section("users", [], sort_unique(users)))
        f.write(section("tags", ["dupsort"], sort_unique(tags)))
        f.write(section("blobs", [], sort_unique(blobs)))
        f.write(section("ints", ["integerkey"], ints))
        f.write(section("fixed", ["dupsort", "dupfixed"], sort_unique(fixed)))

    with open(os.path.join(out, "plain.txt"), "w", newline="\n") as f:
        for i in range(800):
            f.write("plain key %05d\n" % ((i * 31) % 800))
            f.write(esc(b"value " + r.word(r.below(60))) + "\n")

    # A DUPSORT database without a "database=" line: `mdb_load -s NAME` names it.
    single = sorted(set((b"s%03d" % (i % 97), r.word(1 + r.below(20))) for i in range(900)))
    with open(os.path.join(out, "single.txt"), "w", newline="\n") as f:
        f.write(section(None, ["dupsort"], single))

    again = users[:200] + [(b"user:new%04d" % i, b"added by the second load") for i in range(50)]
    with open(os.path.join(out, "again.txt"), "w", newline="\n") as f:
        f.write(section("users", [], again))
        f.write(section("tags", ["dupsort"], tags[:100] + [(b"tag-000", b"zz-new-dup")]))


if __name__ == "__main__":
    main()
