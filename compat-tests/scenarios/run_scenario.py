#!/usr/bin/python3
"""Runs one scenario program against the real liblmdb and under the shim.

For each mode asked for, the program runs in a fresh directory of its own:
  real      the program linked against the real liblmdb, no shim (reference)
  relinked  the program linked against libtrlmdb.so
  preload   the real-linked program with LD_PRELOAD=libtrlmdb.so
  libpath   the real-linked program with LD_LIBRARY_PATH=<drop-in dir>
and must give byte-identical stdout and stderr and the same exit status as the
`real` run. Then, for every environment (directory holding data.mdb) that a
shim-mode run left:
  - the shim must have been there: its main database holds the record of
    `_trlmdb_time` (checked by probe_reserved, linked against the real
    liblmdb); in the `real` run no environment may hold it;
  - `trlmdb verify ENV` must exit 0;
  - `trlmdb digest ENV` must equal the digest of the same environment of
    the `real` run (same user-visible content, whatever the bookkeeping).

--shim-expected PREFIX names a scenario that probes a documented difference of
the shim (README: "Where the shim differs from LMDB"): its shim-mode runs are
compared with PREFIX.stdout, PREFIX.stderr and PREFIX.exit (reviewed golden
files) instead of with the real run, and the digests are not compared.

--expect KIND[,KIND...] turns the run into a self-test of this driver: it
passes only if every failure KIND listed (output, absent, verify, digest) was
detected in some shim mode. Exit status 0 on success, 1 on failure.
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from compat_common import clean_env, env_dirs, show_diff  # noqa: E402

SHIM_MODES = ("relinked", "preload", "libpath")


def mode_command(args, mode, workdir):
    env = clean_env()
    if mode == "real":
        exe = args.real
    elif mode == "relinked":
        exe = args.relinked
    elif mode == "preload":
        exe = args.real
        env["LD_PRELOAD"] = args.preload
    elif mode == "libpath":
        exe = args.real
        env["LD_LIBRARY_PATH"] = args.dropin
    else:
        raise SystemExit("unknown mode " + mode)
    return [exe, workdir], env


def run_cli(args, verb, envdir):
    return subprocess.run(
        [args.cli, verb, envdir],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env=clean_env(),
        timeout=args.timeout,
    )


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--name", required=True)
    ap.add_argument("--real", required=True, help="program linked against the real liblmdb")
    ap.add_argument("--relinked", help="program linked against libtrlmdb")
    ap.add_argument("--preload", help="library for LD_PRELOAD")
    ap.add_argument("--dropin", help="directory holding the drop-in liblmdb.so.0")
    ap.add_argument("--cli", help="the trlmdb command (verify, digest)")
    ap.add_argument("--probe", required=True, help="probe_reserved, linked against the real liblmdb")
    ap.add_argument("--modes", default="relinked,preload,libpath")
    ap.add_argument("--workdir", default=None, help="parent of the temporary directory")
    ap.add_argument("--timeout", type=float, default=120)
    ap.add_argument("--shim-expected", default=None,
                    help="golden PREFIX.{stdout,stderr,exit} for a documented difference")
    ap.add_argument("--expect", default="", help="self-test: failure kinds that must be detected")
    args = ap.parse_args()

    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in SHIM_MODES:
            ap.error("unknown mode %s" % m)
    expect = set(k for k in args.expect.split(",") if k)
    if args.workdir:
        os.makedirs(args.workdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="scen-%s-" % args.name, dir=args.workdir)
    failures = []  # (mode, kind, message)

    def fail(mode, kind, msg):
        failures.append((mode, kind, msg))
        print("FAIL [%s] %s: %s" % (mode, kind, msg))

    try:
        results = {}
        for mode in ["real"] + modes:
            wd = os.path.join(tmp, mode)
            os.mkdir(wd)
            cmd, env = mode_command(args, mode, wd)
            try:
                p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                   timeout=args.timeout)
                results[mode] = (p.returncode, p.stdout, p.stderr)
            except subprocess.TimeoutExpired:
                results[mode] = (None, b"", b"timeout")
            rc, out, err = results[mode]
            print("[%s] exit %s, %d bytes of stdout, %d lines" % (mode, rc, len(out), out.count(b"\n")))
        real_rc, real_out, real_err = results["real"]
        if real_rc != 0:
            print("the reference run failed (exit %s); its stderr:" % real_rc)
            print(real_err.decode("utf-8", "backslashreplace"))
            return 1
        real_envs = env_dirs(os.path.join(tmp, "real"))
        rel = [os.path.relpath(e, os.path.join(tmp, "real")) for e in real_envs]
        print("environments: %s" % " ".join(rel))
        probe = subprocess.run([args.probe] + real_envs, stdout=subprocess.PIPE, env=clean_env(),
                               timeout=args.timeout)
        if probe.returncode != 0 or b"present" in probe.stdout:
            print("the reference environments hold reserved databases or cannot be read:")
            print(probe.stdout.decode())
            return 1
        real_digest = {}
        if args.cli:
            for r, e in zip(rel, real_envs):
                d = run_cli(args, "digest", e)
                real_digest[r] = d
                if d.returncode != 0:
                    print("trlmdb digest of the reference environment %s failed: %s" % (r, d.stdout.decode()))

        if args.shim_expected:
            with open(args.shim_expected + ".stdout", "rb") as f:
                real_out = f.read()
            with open(args.shim_expected + ".stderr", "rb") as f:
                real_err = f.read()
            with open(args.shim_expected + ".exit") as f:
                real_rc = int(f.read())
            real_digest = {}
            print("shim runs compared with the golden files %s.*" % args.shim_expected)
        for mode in modes:
            rc, out, err = results[mode]
            ok = True
            if rc != real_rc:
                fail(mode, "output", "exit status %s, reference %s" % (rc, real_rc))
                ok = False
            if out != real_out:
                fail(mode, "output", "stdout differs from the reference run")
                show_diff("stdout", real_out, out)
                ok = False
            if err != real_err:
                fail(mode, "output", "stderr differs from the reference run")
                show_diff("stderr", real_err, err)
                ok = False
            if args.shim_expected:
                # These scenarios stop at the documented refusal, before their
                # first commit: there is no bookkeeping to check.
                print("[%s] %s" % (mode, "PASS" if ok else "FAIL"))
                continue
            mroot = os.path.join(tmp, mode)
            envs = env_dirs(mroot)
            mrel = [os.path.relpath(e, mroot) for e in envs]
            if mrel != rel:
                fail(mode, "output", "environments %s, reference %s" % (mrel, rel))
                ok = False
            probe = subprocess.run([args.probe] + envs, stdout=subprocess.PIPE, env=clean_env(),
                                   timeout=args.timeout)
            for line in probe.stdout.decode().splitlines():
                path, _sep, status = line.rpartition(": ")
                if status != "present":
                    fail(mode, "absent", "environment %s: %s (no bookkeeping: was the shim loaded?)"
                         % (os.path.relpath(path, mroot), status))
                    ok = False
            if probe.returncode != 0 and "absent" not in [k for m, k, _x in failures if m == mode]:
                fail(mode, "absent", "probe_reserved failed")
                ok = False
            if args.cli:
                for r, e in zip(mrel, envs):
                    v = run_cli(args, "verify", e)
                    if v.returncode != 0:
                        fail(mode, "verify", "trlmdb verify %s exited %d:" % (r, v.returncode))
                        print("    " + v.stdout.decode("utf-8", "backslashreplace")[:3000].replace("\n", "\n    "))
                        ok = False
                    ref = real_digest.get(r)
                    if ref is not None:
                        d = run_cli(args, "digest", e)
                        if d.returncode != 0 or ref.returncode != 0 or d.stdout != ref.stdout:
                            fail(mode, "digest", "trlmdb digest %s: %r, reference %r" % (
                                r, d.stdout.decode().strip(), ref.stdout.decode().strip()))
                            ok = False
            print("[%s] %s" % (mode, "PASS" if ok else "FAIL"))
    finally:
        if os.environ.get("TRLMDB_KEEP_TMP"):
            print("kept " + tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    if expect:
        kinds = set(k for _m, k, _msg in failures)
        missing = expect - kinds
        if missing:
            print("SELF-TEST FAILED: expected failures of kind %s were not detected" % ",".join(sorted(missing)))
            return 1
        print("self-test passed: the driver detected %s" % ",".join(sorted(expect)))
        return 0
    if failures:
        print("%s: FAILED in %s" % (args.name, ",".join(sorted(set(m for m, _k, _x in failures)))))
        return 1
    print("%s: identical to the real LMDB in %s" % (args.name, ",".join(modes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
