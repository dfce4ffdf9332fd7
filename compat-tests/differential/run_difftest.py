#!/usr/bin/python3
"""Differential random testing of the trlmdb shim against the real liblmdb.

difftest (difftest.c) turns a seed into a random sequence of LMDB calls and
prints a transcript: every call, its return code and every byte it read. This
driver runs a seed range in four modes:

  real      difftest_real (linked against the system liblmdb)      reference
  relinked  difftest_relinked (linked against libtrlmdb.so)
  preload   difftest_real with LD_PRELOAD=libtrlmdb.so
  libpath   difftest_real with LD_LIBRARY_PATH=<drop-in liblmdb.so.0 dir>

and requires every shim transcript to equal the real one, except for the
differences below, and `trlmdb verify` to pass on every environment (and
environment copy) the shim wrote.

Allowed differences -- exactly these, and why:

 1. Page counts are never printed: ms_depth, ms_branch_pages, ms_leaf_pages,
    ms_overflow_pages (mdb_stat, mdb_env_stat), me_last_pgno (mdb_env_info),
    and the page fields of a named database's MDB_db record read from the main
    database (md_depth, md_*_pages, md_root). The bookkeeping databases take
    pages of the same file. (difftest does not print them.)
 2. Transaction ids are printed as deltas from the id seen right after each
    mdb_env_open: the shim may run one extra write transaction inside
    mdb_env_open to create its reserved databases. (difftest prints deltas.)
 3. MDB_MAP_FULL comes at another point: usually sooner under the shim,
    possibly at mdb_txn_commit rather than at the mdb_put that fails under
    LMDB (the bookkeeping takes space and is written when a transaction
    commits); occasionally later, because the main database holds the
    reserved databases' records too, so the same inserts split its pages at
    other places and may need fewer pages. After the first MDB_MAP_FULL
    difftest aborts everything, prints MAP_FULL and FINAL <digest of the
    committed content> and ends the sequence. If the shim transcript's first
    MAP_FULL result is on line L and the real one's is not before L, it passes
    when its lines before L equal the real ones, line L is the same call as
    the real line L, and its FINAL digest equals the last COMMITTED digest
    the real run printed before L. If the real transcript's first MAP_FULL
    result is on line L and the shim's is not, the shim's lines before L must
    equal the real ones and line L must be the same call (what follows is not
    comparable).
 4. Keys: the shim's extended key is `dbname\\0key`, so keys longer than
    511 - len(dbname) - 1 bytes fail with MDB_BAD_VALSIZE under the shim.
    difftest generates keys of at most 100 bytes, plus deliberate error keys
    of 0 or 512+ bytes that fail under both. (Avoided, not tolerated.)
 5. Names starting with `_trlmdb_` are reserved (EACCES under the shim):
    difftest never uses them as database names or main-database keys, but
    uses `_trlmdb`, `_trlmdb^`, `_trlmdb\\x60`, ... which sort right next to
    the reserved databases in the main database. (Avoided, not tolerated.)
 6. dbi handle numbers differ (the reserved databases take slots): difftest
    never prints them. (Avoided.)
Anything else -- a return code, a byte, a missing line, a crash, output on
stderr, a failed `trlmdb verify` -- is a failure.

Usage:
  run_difftest.py --real BIN --relinked BIN --shim LIB --dropin-dir DIR
                  --cli TRLMDB [--seed S] [--count N] [--batch B] [--ops K]
                  [--jobs J] [--modes real,relinked,preload,libpath]
                  [--tmpdir DIR] [--keep] [--max-failures N]
  run_difftest.py --self-test --real BIN [--cli TRLMDB]
  run_difftest.py --compare REAL.txt SHIM.txt   (two transcripts)
"""

import argparse
import concurrent.futures
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

SHIM_MODES = ("relinked", "preload", "libpath")
PROCESS_TIMEOUT = 600  # seconds for one difftest process (one batch)
VERIFY_TIMEOUT = 60


# ----------------------------------------------------------------- parsing

def split_sequences(text):
    """Transcript -> ({seed: [lines]}, [seeds in order], incomplete seed or None)."""
    seqs, order, cur, lines = {}, [], None, None
    for line in text.splitlines():
        if line.startswith("SEQ "):
            cur = int(line.split()[1])
            lines = [line]
            continue
        if cur is None:
            continue
        lines.append(line)
        if line.startswith("END "):
            seqs[cur] = lines
            order.append(cur)
            cur, lines = None, None
    return seqs, order, cur


def call_of(line):
    """The call part of a transcript line (what was asked, not what came back)."""
    if " -> " in line:
        return line.split(" -> ", 1)[0]
    for cut in (" ok=", " visited="):  # bulk_put / bulk_del summaries
        if cut in line:
            return line.split(cut, 1)[0]
    return line


def is_map_full_result(line):
    """A call that returned MDB_MAP_FULL (not, say, mdb_strerror's text)."""
    return ("-> MAP_FULL" in line or line.endswith(":MAP_FULL") or " end=MAP_FULL" in line)


def first_diff(a, b):
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n if len(a) != len(b) else None


def compare_sequence(real, shim):
    """None when the shim transcript is acceptable, else (line index, reason)."""
    if real == shim:
        return None
    try:
        marker = shim.index("MAP_FULL")
    except ValueError:
        marker = None
    try:
        real_marker = real.index("MAP_FULL")
    except ValueError:
        real_marker = None
    if real_marker is not None:
        # the real run hit MDB_MAP_FULL first: the shim, whose pages are laid
        # out differently, may still have had room
        RL = next((i for i, l in enumerate(real) if is_map_full_result(l)), real_marker)
        SL = next((i for i, l in enumerate(shim) if is_map_full_result(l)), None)
        if SL is None or SL > RL:
            d = first_diff(real[:RL], shim[:RL])
            if d is not None:
                return d, "transcripts differ"
            if RL >= len(shim) or call_of(real[RL]) != call_of(shim[RL]):
                return RL, "MDB_MAP_FULL (real) came from a different call than the shim's"
            return None  # allowed difference 3 (later under the shim)
    if marker is not None:
        # first line of the shim transcript that reports MDB_MAP_FULL
        L = next((i for i, l in enumerate(shim) if is_map_full_result(l)), marker)
        d = first_diff(real[:L], shim[:L])
        if d is None and L < len(real) and L < marker:
            if call_of(real[L]) != call_of(shim[L]):
                return L, "MDB_MAP_FULL came from a different call than the real run's"
            committed = [l.split()[1] for l in real[:L] if l.startswith("COMMITTED ")]
            final = [l.split()[1] for l in shim[marker:] if l.startswith("FINAL ")]
            if not final:
                return marker, "no FINAL digest after MDB_MAP_FULL"
            if not committed:
                return L, "no COMMITTED digest before MDB_MAP_FULL"
            if committed[-1] != final[0]:
                return marker, ("after an early MDB_MAP_FULL the committed content (FINAL %s) "
                                "differs from the real run's last COMMITTED %s" % (final[0], committed[-1]))
            return None  # allowed difference 3
    d = first_diff(real, shim)
    return d, "transcripts differ"


def check_consistency(seq):
    """Invariants of a real transcript, which make rule 3 sound: the content
    digest after a reopen, of a copy, and after a MAP_FULL (FINAL) equals the
    last COMMITTED digest. Returns a list of problems (generator bugs)."""
    problems, last, reopened = [], None, False
    for i, l in enumerate(seq):
        if l == "REOPEN":
            reopened = True
        elif l.startswith("COMMITTED "):
            d = l.split()[1]
            if reopened and d != last:
                problems.append("line %d: content changed across a reopen" % (i + 1))
            reopened, last = False, d
        elif l.startswith("COPY_DIGEST ") and l.split()[1] != last:
            problems.append("line %d: the copy's content differs from the last commit" % (i + 1))
        elif l.startswith("FINAL "):
            m = next((j for j, x in enumerate(seq) if is_map_full_result(x)), None)
            c = [x.split()[1] for x in seq[:m] if x.startswith("COMMITTED ")] if m is not None else []
            if not c or c[-1] != l.split()[1]:
                problems.append("line %d: content after MAP_FULL differs from the last commit" % (i + 1))
    return problems


# ------------------------------------------------------------------ running

def clean_environ():
    env = {k: v for k, v in os.environ.items()
           if k not in ("LD_PRELOAD", "LD_LIBRARY_PATH") and not k.startswith("TRLMDB_")}
    return env


def mode_command(args, mode, seed, count, workdir):
    binary = args.relinked if mode == "relinked" else args.real
    cmd = [binary, "--seed", str(seed), "--count", str(count), "--ops", str(args.ops),
           "--dir", workdir, "--expect-shim", "0" if mode == "real" else "1"] + args.difftest_args
    env = clean_environ()
    if mode == "preload":
        env["LD_PRELOAD"] = args.shim
    elif mode == "libpath":
        env["LD_LIBRARY_PATH"] = args.dropin_dir
    if mode == "real":
        cmd.append("--clean")
    return cmd, env


def replay_command(args, mode, seed):
    me = os.path.abspath(__file__)
    parts = [shlex.quote(sys.executable), shlex.quote(me)]
    for opt in ("real", "relinked", "shim", "dropin_dir", "cli"):
        val = getattr(args, opt)
        if val:
            parts += ["--" + opt.replace("_", "-"), shlex.quote(val)]
    parts += ["--seed", str(seed), "--count", "1", "--ops", str(args.ops), "--modes", "real," + mode,
              "--keep"]
    parts += ["--difftest-arg=%s" % shlex.quote(a) for a in args.difftest_args]
    raw_cmd, raw_env = mode_command(args, mode, seed, 1, "/tmp/difftest-replay-%s" % mode)
    raw_cmd = [c for c in raw_cmd if c != "--clean"]
    prefix = ""
    if mode == "preload":
        prefix = "LD_PRELOAD=%s " % shlex.quote(args.shim)
    elif mode == "libpath":
        prefix = "LD_LIBRARY_PATH=%s " % shlex.quote(args.dropin_dir)
    return " ".join(parts), prefix + " ".join(shlex.quote(c) for c in raw_cmd)


def run_process(cmd, env, timeout):
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=timeout)
        return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode("utf-8", "replace")
        return "timeout", out, (e.stderr or b"").decode("utf-8", "replace")


def env_dirs(seqdir):
    """Every environment under a sequence directory: env/ and copyN/."""
    out = []
    if not os.path.isdir(seqdir):
        return out
    for name in sorted(os.listdir(seqdir)):
        p = os.path.join(seqdir, name)
        if os.path.isdir(p) and os.path.exists(os.path.join(p, "data.mdb")):
            out.append(p)
    return out


class Failure:
    def __init__(self, seed, mode, reason, detail, args):
        self.seed, self.mode, self.reason, self.detail = seed, mode, reason, detail
        self.replay = replay_command(args, mode, seed) if mode in SHIM_MODES and args.real else None

    def report(self):
        out = ["FAIL seed=%d mode=%s: %s" % (self.seed, self.mode, self.reason)]
        out += ["  " + l for l in self.detail]
        if self.replay:
            out.append("  replay (compare):  " + self.replay[0])
            out.append("  replay (raw run):  " + self.replay[1])
        return "\n".join(out)


def context_lines(real, shim, i, before=4):
    lo = max(0, i - before)
    out = ["first difference at line %d of the sequence:" % (i + 1)]
    for j in range(lo, i):
        out.append("    same: %s" % real[j])
    out.append("    real: %s" % (real[i] if i < len(real) else "<end of transcript>"))
    out.append("    shim: %s" % (shim[i] if i < len(shim) else "<end of transcript>"))
    for j in range(i + 1, min(i + 3, max(len(real), len(shim)))):
        out.append("    real+%d: %s" % (j - i, real[j] if j < len(real) else ""))
        out.append("    shim+%d: %s" % (j - i, shim[j] if j < len(shim) else ""))
    return out


def run_batch(args, seed, count, tmproot):
    """Runs one batch of sequences in every mode; returns (failures, stats)."""
    failures = []
    stats = {"sequences": 0, "verified": 0, "map_full_early": 0}
    modes = args.modes
    real_seqs = None
    if "real" in modes:
        wd = os.path.join(tmproot, "real-%d" % seed)
        cmd, env = mode_command(args, "real", seed, count, wd)
        rc, out, err = run_process(cmd, env, PROCESS_TIMEOUT)
        real_seqs, order, incomplete = split_sequences(out)
        shutil.rmtree(wd, ignore_errors=True)
        if rc != 0 or incomplete is not None or len(order) != count:
            bad = incomplete if incomplete is not None else seed + len(order)
            failures.append(Failure(bad, "real", "difftest_real failed (rc=%s) -- a generator bug" % rc,
                                    err.strip().splitlines()[-10:], args))
            return failures, stats
        stats["sequences"] += count
        for s in order:
            for p in check_consistency(real_seqs[s]):
                failures.append(Failure(s, "real", "inconsistent real transcript (a generator bug): " + p,
                                        [], args))
    for mode in modes:
        if mode == "real":
            continue
        wd = os.path.join(tmproot, "%s-%d" % (mode, seed))
        cmd, env = mode_command(args, mode, seed, count, wd)
        rc, out, err = run_process(cmd, env, PROCESS_TIMEOUT)
        seqs, order, incomplete = split_sequences(out)
        if rc == 3:
            failures.append(Failure(seed, mode, "the mode is not in effect", err.strip().splitlines(), args))
            continue
        mode_failed = False
        if err.strip() and not args.allow_stderr:
            failures.append(Failure(seed, mode, "wrote to stderr", err.strip().splitlines()[-10:], args))
            mode_failed = True
        if rc != 0 or incomplete is not None:
            bad = incomplete if incomplete is not None else seed + len(order)
            detail = ["exit status %s" % rc] + err.strip().splitlines()[-10:]
            if incomplete is not None and real_seqs and bad in real_seqs:
                partial = out.splitlines()
                start = max(i for i, l in enumerate(partial) if l.startswith("SEQ "))
                partial = partial[start:]
                detail += ["the shim run stopped after line %d of the sequence:" % len(partial)]
                detail += ["    last: %s" % l for l in partial[-3:]]
                if len(partial) < len(real_seqs[bad]):
                    detail += ["    real next: %s" % real_seqs[bad][len(partial)]]
            failures.append(Failure(bad, mode, "difftest crashed or timed out under the shim", detail, args))
            mode_failed = True
        if real_seqs is not None:
            for s in order:
                r = real_seqs.get(s)
                if r is None:
                    continue
                res = compare_sequence(r, seqs[s])
                if res is not None:
                    i, why = res
                    failures.append(Failure(s, mode, why, context_lines(r, seqs[s], i), args))
                    mode_failed = True
                elif r != seqs[s]:
                    stats["map_full_early"] += 1
        # trlmdb verify on every environment the shim wrote (completed sequences)
        if args.cli:
            for s in order:
                for envdir in env_dirs(os.path.join(wd, "seq-%d" % s)):
                    vcmd = [args.cli, "verify", envdir]
                    vrc, vout, verr = run_process(vcmd, clean_environ(), VERIFY_TIMEOUT)
                    stats["verified"] += 1
                    if vrc != 0:
                        lines = (vout + verr).strip().splitlines()
                        failures.append(Failure(s, mode, "trlmdb verify failed on %s (exit %s)" %
                                                (os.path.relpath(envdir, wd), vrc),
                                                lines[:12] + (["..."] if len(lines) > 12 else []), args))
                        mode_failed = True
        if not (args.keep or (mode_failed and args.keep_failed)):
            shutil.rmtree(wd, ignore_errors=True)
    return failures, stats


def main_run(args):
    for opt in ("real",):
        if not getattr(args, opt):
            sys.exit("run_difftest: --%s is required" % opt)
    needs = {"relinked": "relinked", "preload": "shim", "libpath": "dropin_dir"}
    for m in args.modes:
        if m in needs and not getattr(args, needs[m]):
            sys.exit("run_difftest: mode %s needs --%s" % (m, needs[m].replace("_", "-")))
        if m not in ("real",) + SHIM_MODES:
            sys.exit("run_difftest: unknown mode %s" % m)
    base = args.tmpdir or ("/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
    tmproot = tempfile.mkdtemp(prefix="difftest-", dir=base)
    t0 = time.time()
    batches = []
    s, end = args.seed, args.seed + args.count
    while s < end:
        n = min(args.batch, end - s)
        batches.append((s, n))
        s += n
    failures, totals = [], {"sequences": 0, "verified": 0, "map_full_early": 0}
    jobs = args.jobs or os.cpu_count() or 1
    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as ex:
        futs = [ex.submit(run_batch, args, s, n, tmproot) for s, n in batches]
        for f in concurrent.futures.as_completed(futs):
            fl, st = f.result()
            failures += fl
            for k in totals:
                totals[k] += st[k]
    if not failures and not args.keep:
        shutil.rmtree(tmproot, ignore_errors=True)
    failures.sort(key=lambda f: (f.seed, f.mode))
    shown = failures[:args.max_failures]
    for f in shown:
        print(f.report())
        print()
    dt = time.time() - t0
    modes = ",".join(args.modes)
    print("difftest: seeds %d..%d (%d sequences), modes %s: %d failure(s); %d environments verified; "
          "%d sequence/mode pairs ended by an early MDB_MAP_FULL (allowed); %.1fs" %
          (args.seed, args.seed + args.count - 1, totals["sequences"] or args.count, modes, len(failures),
           totals["verified"], totals["map_full_early"], dt))
    if len(failures) > len(shown):
        print("(%d more failures not shown)" % (len(failures) - len(shown)))
    if failures and (args.keep or args.keep_failed):
        print("environments kept in %s" % tmproot)
    return 1 if failures else 0


# ---------------------------------------------------------------- self-test

def main_self_test(args):
    """Checks that the comparison catches differences, so the tests cannot
    pass vacuously: perturbed real transcripts must fail, the allowed early
    MAP_FULL shape must pass, and `trlmdb verify` must reject an environment
    written without the shim."""
    if not args.real:
        sys.exit("run_difftest: --self-test needs --real")
    tmproot = tempfile.mkdtemp(prefix="difftest-self-")
    problems = []
    try:
        wd = os.path.join(tmproot, "real")
        cmd, env = mode_command(args, "real", 1, 40, wd)
        cmd = [c for c in cmd if c != "--clean"]
        rc, out, err = run_process(cmd, env, PROCESS_TIMEOUT)
        seqs, order, incomplete = split_sequences(out)
        if rc != 0 or len(order) != 40:
            problems.append("difftest_real failed: rc=%s %s" % (rc, err.strip()))
            raise SystemExit
        # determinism: the same seeds again in another directory
        cmd2, _ = mode_command(args, "real", 1, 40, os.path.join(tmproot, "again"))
        rc2, out2, _ = run_process(cmd2, env, PROCESS_TIMEOUT)
        if out2 != out:
            problems.append("difftest_real is not deterministic (seeds 1..40 differ between two runs)")

        for s in order:
            for p in check_consistency(seqs[s]):
                problems.append("seq %d: %s" % (s, p))

        def expect(name, real, shim, ok):
            res = compare_sequence(real, shim)
            if (res is None) != ok:
                problems.append("%s: expected %s, got %s" % (name, "pass" if ok else "fail", res))

        n_data = n_mapfull = 0
        for s in order:
            r = seqs[s]
            expect("identical seq %d" % s, r, list(r), True)
            # a changed byte in a line that carries data
            idx = [i for i, l in enumerate(r) if " d=" in l and "-> OK" in l]
            if idx:
                i = idx[len(idx) // 2]
                line = r[i]
                pos = line.rindex(" d=") + 3
                ch = line[pos]
                line = line[:pos] + ("1" if ch != "1" else "2") + line[pos + 1:]
                expect("changed byte seq %d" % s, r, r[:i] + [line] + r[i + 1:], False)
                n_data += 1
            # a changed return code, a missing line, an extra line, a crash
            rcs = [i for i, l in enumerate(r) if l.endswith("-> NOTFOUND")]
            if rcs:
                i = rcs[0]
                expect("changed rc seq %d" % s, r, r[:i] + [r[i].replace("-> NOTFOUND", "-> OK")] + r[i + 1:],
                       False)
            expect("missing line seq %d" % s, r, r[:3] + r[4:], False)
            expect("extra line seq %d" % s, r, r[:3] + ["get T0 D0 k=61 -> OK"] + r[3:], False)
            expect("truncated seq %d" % s, r, r[:len(r) // 2], False)
            # the allowed shape of an early MAP_FULL at a commit, and wrong variants
            commits = [i for i, l in enumerate(r) if l.startswith("txn_commit T") and l.endswith("-> OK")]
            committed = [i for i, l in enumerate(r) if l.startswith("COMMITTED ")]
            if len(commits) >= 1 and committed and committed[0] < commits[-1]:
                c = commits[-1]
                last = [r[i].split()[1] for i in committed if i < c][-1]
                head = r[:c] + [r[c].replace("-> OK", "-> MAP_FULL"), "MAP_FULL", "env_close"]
                expect("early MAP_FULL seq %d" % s, r, head + ["FINAL " + last, "END %d" % s], True)
                expect("early MAP_FULL, wrong content seq %d" % s, r,
                       head + ["FINAL 0123456789abcdef", "END %d" % s], False)
                expect("early MAP_FULL, no FINAL seq %d" % s, r, head + ["END %d" % s], False)
                # the real run hits MAP_FULL first, the shim goes on
                real_full = head + ["FINAL " + last, "END %d" % s]
                expect("later MAP_FULL under the shim seq %d" % s, real_full, r, True)
                if c > 2:
                    changed = r[:c - 1] + ["get T0 D0 k=62 -> NOTFOUND"] + r[c:]
                    expect("later MAP_FULL after a difference seq %d" % s, real_full, changed, False)
                if c > 2:
                    bad = r[:c - 1] + ["get T0 D0 k=62 -> NOTFOUND"] + head[c:]
                    expect("early MAP_FULL after a difference seq %d" % s, r,
                           bad + ["FINAL " + last, "END %d" % s], False)
                n_mapfull += 1
        if n_data < 5 or n_mapfull < 5:
            problems.append("self-test had too little material (%d data lines, %d commits)" % (n_data, n_mapfull))
        # trlmdb verify must reject data written without the shim
        if args.cli:
            rejected = 0
            for s in order:
                has_data = any(l.startswith("put ") and "-> OK" in l for l in seqs[s])
                for envdir in env_dirs(os.path.join(wd, "seq-%d" % s)):
                    vrc, _, _ = run_process([args.cli, "verify", envdir], clean_environ(), VERIFY_TIMEOUT)
                    if vrc != 0:
                        rejected += 1
            if rejected == 0:
                problems.append("trlmdb verify accepted every environment written without the shim")
    except SystemExit:
        pass
    finally:
        shutil.rmtree(tmproot, ignore_errors=True)
    for p in problems:
        print("SELF-TEST FAIL: " + p)
    print("difftest self-test: %s" % ("FAILED" if problems else "ok"))
    return 1 if problems else 0


def main_compare(args):
    a = split_sequences(open(args.compare[0]).read())[0]
    b = split_sequences(open(args.compare[1]).read())[0]
    bad = 0
    for s in sorted(set(a) | set(b)):
        if s not in a or s not in b:
            print("seed %d: only in %s" % (s, args.compare[0] if s in a else args.compare[1]))
            bad += 1
            continue
        res = compare_sequence(a[s], b[s])
        if res is not None:
            bad += 1
            print("seed %d: %s" % (s, res[1]))
            print("\n".join(context_lines(a[s], b[s], res[0])))
    print("%d sequence(s) differ" % bad)
    return 1 if bad else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--real", help="difftest linked against the real liblmdb")
    ap.add_argument("--relinked", help="difftest linked against libtrlmdb.so")
    ap.add_argument("--shim", help="libtrlmdb.so (LD_PRELOAD)")
    ap.add_argument("--dropin-dir", help="directory of the drop-in liblmdb.so.0")
    ap.add_argument("--cli", help="the trlmdb command (for `trlmdb verify`)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--count", type=int, default=200)
    ap.add_argument("--batch", type=int, default=50, help="sequences per difftest process")
    ap.add_argument("--ops", type=int, default=150, help="mean operations per sequence (x0.5..x1.5)")
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--modes", default="real,relinked,preload,libpath")
    ap.add_argument("--tmpdir", help="where to put the environments (default /dev/shm)")
    ap.add_argument("--keep", action="store_true", help="keep every environment and transcript")
    ap.add_argument("--keep-failed", action="store_true", help="keep the environments of failed modes")
    ap.add_argument("--allow-stderr", action="store_true", help="do not fail on shim output to stderr")
    ap.add_argument("--max-failures", type=int, default=20, help="failures to print in detail")
    ap.add_argument("--difftest-arg", action="append", default=[], dest="difftest_args",
                    help="extra difftest argument (e.g. --difftest-arg=--avoid-main)")
    ap.add_argument("--self-test", action="store_true")
    ap.add_argument("--compare", nargs=2, metavar=("REAL", "SHIM"))
    args = ap.parse_args()
    args.modes = [m for m in args.modes.split(",") if m]
    for opt in ("real", "relinked", "shim", "dropin_dir", "cli"):
        if getattr(args, opt):
            setattr(args, opt, os.path.abspath(getattr(args, opt)))
    if args.compare:
        return main_compare(args)
    if args.self_test:
        return main_self_test(args)
    return main_run(args)


if __name__ == "__main__":
    sys.exit(main())
