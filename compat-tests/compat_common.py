"""Helpers shared by the compatibility drivers (scenarios, programs)."""

import difflib
import os


def clean_env():
    """The environment for a run: no shim, no trlmdb settings, stable output."""
    env = dict(os.environ)
    for var in list(env):
        if var in ("LD_PRELOAD", "LD_LIBRARY_PATH") or var.startswith("TRLMDB_"):
            del env[var]
    env["LC_ALL"] = "C"
    env["PYTHONHASHSEED"] = "0"
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def env_dirs(root):
    """Every environment under root: directories holding data.mdb, and the
    data files of MDB_NOSUBDIR environments (NAME.mdb beside NAME.mdb-lock)."""
    found = []
    for dirpath, _dirs, files in os.walk(root):
        if "data.mdb" in files:
            found.append(dirpath)
        for f in files:
            if f.endswith(".mdb") and f not in ("data.mdb", "lock.mdb") and f + "-lock" in files:
                found.append(os.path.join(dirpath, f))
    return sorted(found)


def show_diff(label, want, got):
    """A unified diff of a window around the first difference (difflib is
    quadratic: never run it on whole megabyte outputs)."""
    w = want.decode("utf-8", "backslashreplace").splitlines()
    g = got.decode("utf-8", "backslashreplace").splitlines()
    first = 0
    while first < len(w) and first < len(g) and w[first] == g[first]:
        first += 1
    start = max(0, first - 3)
    lines = list(difflib.unified_diff(w[start:first + 150], g[start:first + 150],
                                      "real " + label, label, lineterm="", n=2))
    for line in lines[:60]:
        print("    " + line)
    if len(lines) > 60:
        print("    ... (%d more diff lines in this window)" % (len(lines) - 60))
    print("    (%d lines in the reference, %d here; first difference at line %d)"
          % (len(w), len(g), first + 1))
