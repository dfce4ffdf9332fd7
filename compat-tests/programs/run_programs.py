#!/usr/bin/python3
"""Real, unmodified LMDB programs under the shim.

  run_programs.py utils  ...   Debian's lmdb-utils (mdb_load, mdb_dump,
                               mdb_stat, mdb_copy) on generated input
  run_programs.py python ...   a python3-lmdb program (py_lmdb_script.py)

Each suite runs the same list of commands once per mode, each mode in its own
fresh directory:
  real      no shim (the reference)
  relinked  (lmdb-utils only) the same sources linked against libtrlmdb.so
  preload   LD_PRELOAD=libtrlmdb.so
  libpath   LD_LIBRARY_PATH=<dir of the drop-in liblmdb.so.0>
(python3-lmdb is a prebuilt extension module: it cannot be relinked).
Every command's exit status, stdout and stderr must be byte-identical to the
real run after the filters below, which remove only space figures:

  FILTER env-pages (mdb_stat -e): "Number of pages used" (me_last_pgno + 1):
      the bookkeeping takes pages (274 pages without the shim, 439 with it).
  FILTER subdb-root (mdb_dump of the main database): the value of a named
      database's record in the main database is LMDB's MDB_db struct (48
      bytes); its root page number (last 8 bytes) is masked: the shim's
      pages come first, so the user's trees start at other pages. Its
      flags, depth, page counts and entry count are compared.
  Not filtered: the page lines of mdb_stat ("Tree depth", "Branch pages",
      "Leaf pages", "Overflow pages"), also for the main database, which
      holds three more records under the shim: they are equal for this
      input (user trees are shaped by the user's operations only), so they
      are compared.

(The python3-lmdb program prints env.info() without last_pgno, for the same
reason as env-pages; everything else it prints is compared.)

Designed difference: `mdb_stat -s _trlmdb_time` and `mdb_dump -s
_trlmdb_time` get MDB_NOTFOUND from LMDB (no such database) but EACCES from
the shim, which refuses every user access to a reserved name (DESIGN.md 2);
these two steps require exactly "mdb_open failed, error 13 Permission
denied" under the shim.

Then, in each shim mode: the reserved databases are invisible (no
"_trlmdb_" in any output of mdb_dump -l / -a / mdb_stat -a / mdb_dump of the
main database, and the python program's iteration of the main database);
every environment written (and every copy) carries the bookkeeping
(probe_reserved), passes `trlmdb verify`, and has the same `trlmdb digest`
as the same environment of the real run.

The utils suite also runs its commands with Debian's own /usr/bin programs,
without the shim (they are statically linked: the shim cannot reach them),
and requires their output to be identical, unfiltered, to the real run of
the rebuilt programs: the rebuilt programs are Debian's programs.

--expect KIND[,KIND...] makes it a self-test of this driver (see
run_scenario.py): it passes only if those kinds of failure were detected.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compat_common import clean_env, env_dirs, show_diff  # noqa: E402

RESERVED_PLAIN = b"_trlmdb_"
RESERVED_HEX = RESERVED_PLAIN.hex().encode()


# ---------------------------------------------------------------- filters

ENV_PAGES_LINE = re.compile(rb"^  Number of pages used: \d+$")


def filter_stat(data):
    out = []
    for line in data.split(b"\n"):
        if ENV_PAGES_LINE.match(line):
            line = b"  Number of pages used: <filtered: env-pages>"
        out.append(line)
    return b"\n".join(out)


def unprint(b):
    """Inverse of mdb_dump -p's escaping."""
    out, i = bytearray(), 0
    while i < len(b):
        if b[i:i + 2] == b"\\\\":
            out += b"\\"
            i += 2
        elif b[i:i + 1] == b"\\":
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


def filter_subdb_records(data, names):
    """mdb_dump of the main database: mask the page figures of the MDB_db
    records of the named databases (both output formats)."""
    lines = data.split(b"\n")
    out, in_data, prev_key, printfmt = [], False, None, False
    for line in lines:
        if line == b"format=print":
            printfmt = True
        elif line == b"format=bytevalue":
            printfmt = False
        if line == b"HEADER=END":
            in_data, prev_key = True, None
            out.append(line)
            continue
        if line == b"DATA=END":
            in_data = False
            out.append(line)
            continue
        if in_data and line.startswith(b" "):
            raw = unprint(line[1:]) if printfmt else bytes.fromhex(line[1:].decode())
            if prev_key is None:
                prev_key = raw
            else:
                if prev_key in names and len(raw) == 48:
                    # MDB_db: pad u32 | flags u16 | depth u16 | branch, leaf,
                    # overflow pages, entries, root: size_t each. Only the
                    # root page number is masked.
                    line = b" %s<root page filtered>" % raw[0:40].hex().encode()
                prev_key = None
        out.append(line)
    return b"\n".join(out)


# ---------------------------------------------------------------- running

def mode_env(args, mode):
    env = clean_env()
    if mode == "preload":
        env["LD_PRELOAD"] = args.preload
    elif mode == "libpath":
        env["LD_LIBRARY_PATH"] = args.dropin
    return env


class Step:
    def __init__(self, name, argv, filt=None, check_invisible=False, outfile=None, writes=False,
                 reserved_open=False):
        self.name = name
        # Opening a reserved name: LMDB says MDB_NOTFOUND (no such database),
        # the shim refuses it with EACCES by design (DESIGN.md 2).
        self.reserved_open = reserved_open
        self.argv = argv
        self.filt = filt
        self.check_invisible = check_invisible
        self.outfile = outfile  # the step's result is this file's content
        self.writes = writes


def utils_steps(tool, reader=None):
    """tool(name) -> path of mdb_load and mdb_copy; reader(name) -> path of
    mdb_dump and mdb_stat (by default the same)."""
    reader = reader or tool
    d, l, s, c = reader("mdb_dump"), tool("mdb_load"), reader("mdb_stat"), tool("mdb_copy")
    return [
        Step("mdb_load all.txt", [l, "-f", "{in}/all.txt", "{root}/env"], writes=True),
        Step("mdb_load -T -s extra", [l, "-T", "-s", "extra", "-f", "{in}/plain.txt", "{root}/env"], writes=True),
        Step("mdb_load -N again.txt", [l, "-N", "-f", "{in}/again.txt", "{root}/env"], writes=True),
        Step("mdb_stat", [s, "{root}/env"], filt="stat"),
        Step("mdb_stat -a", [s, "-a", "{root}/env"], filt="stat", check_invisible=True),
        Step("mdb_stat -e", [s, "-e", "{root}/env"], filt="stat"),
        Step("mdb_stat -s tags", [s, "-s", "tags", "{root}/env"], filt="stat"),
        Step("mdb_stat -s _trlmdb_time", [s, "-s", "_trlmdb_time", "{root}/env"], reserved_open=True),
        Step("mdb_dump -l", [d, "-l", "{root}/env"], check_invisible=True),
        Step("mdb_dump -a", [d, "-a", "{root}/env"], check_invisible=True),
        Step("mdb_dump -a -p", [d, "-a", "-p", "{root}/env"], check_invisible=True),
        Step("mdb_dump (main)", [d, "{root}/env"], filt="subdb", check_invisible=True),
        Step("mdb_dump -p (main)", [d, "-p", "{root}/env"], filt="subdb", check_invisible=True),
        Step("mdb_dump -s tags -f", [d, "-s", "tags", "-f", "{root}/tags.dump", "{root}/env"],
             outfile="{root}/tags.dump"),
        Step("mdb_dump -s _trlmdb_time", [d, "-s", "_trlmdb_time", "{root}/env"], reserved_open=True),
        Step("mdb_load (tags.dump) into a new env", [l, "-f", "{root}/tags.dump", "{root}/tagsenv"],
             writes=True),
        Step("mdb_dump -a tagsenv", [d, "-a", "{root}/tagsenv"], check_invisible=True),
        Step("mdb_load -s single", [l, "-s", "single", "-f", "{in}/single.txt", "{root}/env"],
             writes=True),
        Step("mdb_dump -p -s single", [d, "-p", "-s", "single", "{root}/env"]),
        Step("mdb_stat -s single", [s, "-s", "single", "{root}/env"], filt="stat"),
        Step("mdb_dump -l after load -s", [d, "-l", "{root}/env"], check_invisible=True),
        Step("mdb_copy", [c, "{root}/env", "{root}/copy"], writes=True),
        Step("mdb_copy -c", [c, "-c", "{root}/env", "{root}/compact"], writes=True),
        Step("mdb_dump -a copy", [d, "-a", "{root}/copy"], check_invisible=True),
        Step("mdb_dump -a compact", [d, "-a", "{root}/compact"], check_invisible=True),
        Step("mdb_dump (main) compact", [d, "{root}/compact"], filt="subdb", check_invisible=True),
        Step("mdb_stat -a compact", [s, "-a", "{root}/compact"], filt="stat", check_invisible=True),
        Step("mdb_dump -a -f (for a round trip)", [d, "-a", "-f", "{root}/all.dump", "{root}/env"],
             outfile="{root}/all.dump"),
        Step("mdb_load round trip", [l, "-f", "{root}/all.dump", "{root}/roundtrip"], writes=True),
        Step("mdb_dump -a round trip", [d, "-a", "{root}/roundtrip"], check_invisible=True),
        Step("mdb_stat -a round trip", [s, "-a", "{root}/roundtrip"], filt="stat", check_invisible=True),
    ]


def python_steps(python, script):
    return [Step("python3-lmdb program", [python, script, "{root}/env"], writes=True,
                 check_invisible=True)]


def run_steps(args, steps, mode, root, inputs):
    env = mode_env(args, mode)
    os.makedirs(os.path.join(root, "env"))
    for sub in ("copy", "compact", "roundtrip", "tagsenv"):
        # mdb_copy and mdb_load want existing directories.
        os.makedirs(os.path.join(root, sub))
    results = []
    for st in steps:
        argv = [a.replace("{root}", root).replace("{in}", inputs) for a in st.argv]
        try:
            p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                               timeout=args.timeout)
            rc, out, err = p.returncode, p.stdout, p.stderr
        except subprocess.TimeoutExpired:
            rc, out, err = "timeout", b"", b""
        if st.outfile:
            path = st.outfile.replace("{root}", root)
            with open(path, "rb") as f:
                out = out + b"\n--- file content ---\n" + f.read()
        # Paths differ between modes: name the mode's directory <root>, and
        # the programs' directory (they print their argv[0]) <bin>.
        out = out.replace(root.encode(), b"<root>")
        err = err.replace(root.encode(), b"<root>")
        prog_dir = os.path.dirname(argv[0]).encode()
        if prog_dir:
            err = err.replace(prog_dir + b"/mdb_", b"<bin>/mdb_")
        results.append((rc, out, err))
    for sub in ("copy", "compact", "roundtrip", "tagsenv"):
        d = os.path.join(root, sub)
        if os.path.isdir(d) and not os.listdir(d):
            os.rmdir(d)
    return results


def apply_filter(st, data, names):
    # TRLMDB_COMPAT_NO_FILTER=1 shows what the filters hide (to check that
    # each one is still needed).
    if os.environ.get("TRLMDB_COMPAT_NO_FILTER"):
        return data
    if st.filt == "stat":
        return filter_stat(data)
    if st.filt == "subdb":
        return filter_subdb_records(data, names)
    return data


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("suite", choices=["utils", "python"])
    ap.add_argument("--utils-bin", help="directory of the lmdb-utils linked against liblmdb.so.0")
    ap.add_argument("--static-bin", default="/usr/bin", help="Debian's lmdb-utils")
    ap.add_argument("--readers-bin", help="self-test: take mdb_dump and mdb_stat from here")
    ap.add_argument("--relinked-bin", help="lmdb-utils linked against libtrlmdb (relinked mode)")
    ap.add_argument("--python", default="/usr/bin/python3")
    ap.add_argument("--script", help="the python3-lmdb program")
    ap.add_argument("--generator", help="gen_input.py")
    ap.add_argument("--preload", required=True)
    ap.add_argument("--dropin", required=True)
    ap.add_argument("--cli", required=True, help="the trlmdb command")
    ap.add_argument("--probe", required=True, help="probe_reserved (real liblmdb)")
    ap.add_argument("--modes", default="preload,libpath")
    ap.add_argument("--workdir")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--expect", default="")
    args = ap.parse_args()

    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("relinked", "preload", "libpath"):
            ap.error("unknown mode " + m)
        if m == "relinked" and (args.suite != "utils" or not args.relinked_bin):
            ap.error("relinked mode needs the utils suite and --relinked-bin")
    expect = set(k for k in args.expect.split(",") if k)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="prog-%s-" % args.suite, dir=args.workdir)
    failures = []

    def fail(mode, kind, msg):
        failures.append((mode, kind, msg))
        print("FAIL [%s] %s: %s" % (mode, kind, msg))

    try:
        inputs = os.path.join(tmp, "input")
        if args.suite == "utils":
            subprocess.run([args.python, args.generator, inputs], check=True, env=clean_env())
            readers_bin = args.readers_bin or args.utils_bin
            steps = utils_steps(lambda t: os.path.join(args.utils_bin, t),
                                lambda t: os.path.join(readers_bin, t))
            static_steps = utils_steps(lambda t: os.path.join(args.static_bin, t))
        else:
            steps = python_steps(args.python, args.script)
            static_steps = None

        results = {}
        for mode in ["real"] + modes:
            msteps = steps
            if mode == "relinked":
                # The same programs built against libtrlmdb.
                msteps = utils_steps(lambda t: os.path.join(args.relinked_bin, t),
                                     lambda t: os.path.join(args.readers_bin or args.relinked_bin, t))
            results[mode] = run_steps(args, msteps, mode, os.path.join(tmp, mode), inputs)
        ref = results["real"]
        for st, (rc, out, err) in zip(steps, ref):
            print("[real] %-36s exit %s, %d bytes" % (st.name, rc, len(out)))
        real_root = os.path.join(tmp, "real")
        real_envs = env_dirs(real_root)
        rel = [os.path.relpath(e, real_root) for e in real_envs]
        print("environments: %s" % " ".join(rel))
        names = set()
        if args.suite == "utils":
            p = subprocess.run([os.path.join(args.utils_bin, "mdb_dump"), "-l", os.path.join(real_root, "env")],
                               stdout=subprocess.PIPE, env=clean_env(), check=True)
            names = set(p.stdout.split())
        probe = subprocess.run([args.probe] + real_envs, stdout=subprocess.PIPE, env=clean_env())
        if probe.returncode != 0 or b"present" in probe.stdout:
            print("reference environments hold reserved databases or cannot be read:\n" + probe.stdout.decode())
            return 1
        real_digest = {}
        for r, e in zip(rel, real_envs):
            real_digest[r] = subprocess.run([args.cli, "digest", e], stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, env=clean_env())

        if static_steps is not None:
            # Debian's own binaries, no shim: unfiltered, identical to the rebuilt ones.
            import_note = subprocess.run(["nm", "-D", os.path.join(args.static_bin, "mdb_dump")],
                                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL).stdout
            linkage = "dynamic" if b" mdb_env_open" in import_note else "static (the shim cannot reach it)"
            print("Debian's %s/mdb_dump is linked %s" % (args.static_bin, linkage))
            sres = run_steps(args, static_steps, "real", os.path.join(tmp, "debian"), inputs)
            for st, a, b in zip(static_steps, ref, sres):
                if a != b:
                    fail("debian", "debian-binaries", "%s: Debian's binary differs from the rebuilt one" % st.name)
                    show_diff(st.name + " (stdout)", a[1], b[1])
                    show_diff(st.name + " (stderr)", a[2], b[2])
            if not any(m == "debian" for m, _k, _x in failures):
                print("[debian] Debian's /usr/bin programs give the same output as the rebuilt ones: PASS")

        for mode in modes:
            ok = True
            mroot = os.path.join(tmp, mode)
            for st, (rrc, rout, rerr), (rc, out, err) in zip(steps, ref, results[mode]):
                if st.reserved_open:
                    want = (1, b"", b"mdb_open failed, error 13 Permission denied\n")
                    if (rc, out, err) != want:
                        fail(mode, "output", "%s: %r, expected %r (EACCES on a reserved name)" % (
                            st.name, (rc, out, err), want))
                        ok = False
                    continue
                fo, fr = apply_filter(st, out, names), apply_filter(st, rout, names)
                fe, fre = apply_filter(st, err, names), apply_filter(st, rerr, names)
                if rc != rrc or fo != fr or fe != fre:
                    fail(mode, "output", "%s: exit %s (reference %s)%s%s" % (
                        st.name, rc, rrc, ", stdout differs" if fo != fr else "",
                        ", stderr differs" if fe != fre else ""))
                    if fo != fr:
                        show_diff(st.name + " stdout", fr, fo)
                    if fe != fre:
                        show_diff(st.name + " stderr", fre, fe)
                    ok = False
                if st.check_invisible:
                    for stream in (out, err):
                        if RESERVED_PLAIN in stream or RESERVED_HEX in stream:
                            fail(mode, "visible", "%s shows a reserved database name" % st.name)
                            ok = False
            envs = env_dirs(mroot)
            mrel = [os.path.relpath(e, mroot) for e in envs]
            if mrel != rel:
                fail(mode, "output", "environments %s, reference %s" % (mrel, rel))
                ok = False
            probe = subprocess.run([args.probe] + envs, stdout=subprocess.PIPE, env=clean_env())
            for line in probe.stdout.decode().splitlines():
                path, _sep, status = line.rpartition(": ")
                if status != "present":
                    fail(mode, "absent", "environment %s: %s (no bookkeeping: was the shim loaded?)"
                         % (os.path.relpath(path, mroot), status))
                    ok = False
            for r, e in zip(mrel, envs):
                v = subprocess.run([args.cli, "verify", e], stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, env=clean_env())
                if v.returncode != 0:
                    fail(mode, "verify", "trlmdb verify %s exited %d:" % (r, v.returncode))
                    print("    " + v.stdout.decode("utf-8", "backslashreplace")[:3000].replace("\n", "\n    "))
                    ok = False
                else:
                    print("[%s] trlmdb verify %s: %s" % (mode, r, v.stdout.decode().strip()))
                ref_d = real_digest.get(r)
                if ref_d is not None:
                    d = subprocess.run([args.cli, "digest", e], stdout=subprocess.PIPE,
                                       stderr=subprocess.STDOUT, env=clean_env())
                    if d.returncode != 0 or ref_d.returncode != 0 or d.stdout != ref_d.stdout:
                        fail(mode, "digest", "trlmdb digest %s: %r, reference %r" % (
                            r, d.stdout.decode().strip(), ref_d.stdout.decode().strip()))
                        ok = False
            print("[%s] %s" % (mode, "PASS" if ok else "FAIL"))
    finally:
        if os.environ.get("TRLMDB_KEEP_TMP"):
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if expect:
        kinds = set(k for _m, k, _x in failures)
        missing = expect - kinds
        if missing:
            print("SELF-TEST FAILED: expected failures of kind %s were not detected" % ",".join(sorted(missing)))
            return 1
        print("self-test passed: the driver detected %s" % ",".join(sorted(expect)))
        return 0
    if failures:
        print("FAILED in %s" % ",".join(sorted(set(m for m, _k, _x in failures))))
        return 1
    print("%s: identical to the real LMDB in %s" % (args.suite, ",".join(modes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
