/* cmocka tests of the shim's transparency (issue 2, "Transparency"; DESIGN.md
 * section 2): a program cannot tell the shim is there. The reserved databases
 * are invisible to cursors, mdb_get and mdb_stat on the main database; user
 * access to reserved names fails with EACCES; maxdbs is raised automatically;
 * userctx stays the program's; nothing is printed on stdout. Plus the one
 * documented honest difference: the key length limit shrinks by the xkey's
 * database-name prefix.
 *
 * Built a second time against the real liblmdb (TU_BASELINE): the same
 * assertions, minus the shim-only ones, then check what real LMDB does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "abi_testutil.h"

#define FX tu_fx *fx = *state

static MDB_dbi main_dbi(MDB_txn *t) { return tu_dbi_in(t, NULL, 0); }

static const char *const kUserKeys[] = {"A", "Z", "_a", "_trlmdb", "_u", "a", "z"};
enum { kNumUserKeys = sizeof kUserKeys / sizeof kUserKeys[0] };

/* Main DB with user keys sorting before, around and after "_trlmdb_*", and
 * bookkeeping for them (so the reserved databases certainly exist). */
static void seed_main(tu_fx *fx) {
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  for (int i = kNumUserKeys - 1; i >= 0; --i) tu_put(t, d, kUserKeys[i], kUserKeys[i], 0);
  tu_commit(t);
}

static void expect_key(int rc, const MDB_val *k, const char *want, const char *what) {
  if (rc != 0) fail_msg("%s: rc %d (%s), expected key \"%s\"", what, rc, mdb_strerror(rc), want);
  if (k->mv_size != strlen(want) || memcmp(k->mv_data, want, k->mv_size))
    fail_msg("%s: got key %s, expected \"%s\"", what, tu_xkey_str(k->mv_data, k->mv_size), want);
}

/* ---- reserved databases are invisible ------------------------------------ */

static void test_cursor_on_main_skips_reserved(void **state) {
  FX;
  seed_main(fx);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k, v;
  /* Forward. */
  int i = 0, rc;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT), ++i) {
    if (i >= kNumUserKeys)
      fail_msg("forward scan: extra key %s", tu_xkey_str(k.mv_data, k.mv_size));
    expect_key(rc, &k, kUserKeys[i], "forward scan");
    assert_int_equal(v.mv_size, strlen(kUserKeys[i]));
  }
  tu_assert_rc(rc, MDB_NOTFOUND);
  assert_int_equal(i, kNumUserKeys);
  /* Backward. */
  i = kNumUserKeys - 1;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_PREV), --i) {
    if (i < 0) fail_msg("backward scan: extra key %s", tu_xkey_str(k.mv_data, k.mv_size));
    expect_key(rc, &k, kUserKeys[i], "backward scan");
  }
  tu_assert_rc(rc, MDB_NOTFOUND);
  assert_int_equal(i, -1);
  /* NODUP variants on a non-DUPSORT database behave like NEXT/PREV. */
  i = 0;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP))
    ++i;
  assert_int_equal(i, kNumUserKeys);
  i = 0;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_PREV_NODUP))
    ++i;
  assert_int_equal(i, kNumUserKeys);
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_cursor_positioning_around_reserved(void **state) {
  FX;
  seed_main(fx);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k, v;
  k = tu_str("_trlmdb_");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), &k, "_u", "SET_RANGE _trlmdb_");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT), &k, "_u", "GET_CURRENT after SET_RANGE");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_PREV), &k, "_trlmdb", "PREV from _u");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_NEXT), &k, "_u", "NEXT from _trlmdb");
  k = tu_str("_trlmdb_meta");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), &k, "_u", "SET_RANGE _trlmdb_meta");
  k = tu_str("_trlmdb_time");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), &k, "_u", "SET_RANGE _trlmdb_time");
  k = tu_str("_trlmdb");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), &k, "_trlmdb", "SET_RANGE _trlmdb");
  k = tu_str("_b");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), &k, "_trlmdb", "SET_RANGE _b");
  static const char *const hidden[] = {"_trlmdb_time", "_trlmdb_recent", "_trlmdb_meta"};
  for (int i = 0; i < 3; ++i) {
    k = tu_str(hidden[i]);
    tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), MDB_NOTFOUND);
    k = tu_str(hidden[i]);
    tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY), MDB_NOTFOUND);
  }
  /* After SET on "_trlmdb": NEXT skips the reserved block. */
  k = tu_str("_trlmdb");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), 0);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_NEXT), &k, "_u", "NEXT after SET _trlmdb");
  k = tu_str("zz");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), MDB_NOTFOUND);
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_cursor_on_main_without_user_keys(void **state) {
  FX;
  /* Only bookkeeping (a named database's marker) and no user key in main
   * apart from the named database's own record. */
  tu_dbi(fx, "db", MDB_CREATE);
  tu_put_commit(fx, "db", 0, "k", "v");
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k, v;
  /* Real LMDB shows a named database's record in the main DB: so must the shim. */
  expect_key(mdb_cursor_get(c, &k, &v, MDB_FIRST), &k, "db", "FIRST");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_NEXT), MDB_NOTFOUND);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_LAST), &k, "db", "LAST");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_PREV), MDB_NOTFOUND);
  mdb_cursor_close(c);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, main_dbi(t), &st), 0);
  assert_int_equal(st.ms_entries, 1);
  mdb_txn_abort(t);
}

static void test_fresh_env_main_is_empty(void **state) {
  FX;
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_cursor *c;
  MDB_dbi d = main_dbi(t);
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  MDB_val k, v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_FIRST), MDB_NOTFOUND);
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_LAST), MDB_NOTFOUND);
  mdb_cursor_close(c);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, d, &st), 0);
  assert_int_equal(st.ms_entries, 0);
  tu_assert_rc(mdb_env_stat(fx->env, &st), 0);
  assert_int_equal(st.ms_entries, 0);
  mdb_txn_abort(t);
}

static void test_get_reserved_name_is_notfound(void **state) {
  FX;
  seed_main(fx);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d = main_dbi(t);
  static const char *const hidden[] = {"_trlmdb_time", "_trlmdb_recent", "_trlmdb_meta"};
  for (int i = 0; i < 3; ++i) {
    MDB_val k = tu_str(hidden[i]), v;
    tu_assert_rc(mdb_get(t, d, &k, &v), MDB_NOTFOUND);
  }
  MDB_val k = tu_str("_trlmdb"), v;
  tu_assert_rc(mdb_get(t, d, &k, &v), 0);
  mdb_txn_abort(t);
  /* Also in a write transaction. */
  t = tu_begin(fx, NULL, 0);
  k = tu_str("_trlmdb_time");
  tu_assert_rc(mdb_get(t, main_dbi(t), &k, &v), MDB_NOTFOUND);
  mdb_txn_abort(t);
}

static void test_stat_main_counts_only_user_entries(void **state) {
  FX;
  seed_main(fx);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, main_dbi(t), &st), 0);
  assert_int_equal(st.ms_entries, kNumUserKeys);
  mdb_txn_abort(t);
  /* mdb_env_stat reports the main database too. */
  tu_assert_rc(mdb_env_stat(fx->env, &st), 0);
  assert_int_equal(st.ms_entries, kNumUserKeys);
  /* A user named database counts (it is a record of the main DB in LMDB). */
  tu_dbi(fx, "db", MDB_CREATE);
  t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_stat(t, main_dbi(t), &st), 0);
  assert_int_equal(st.ms_entries, kNumUserKeys + 1);
  /* In a write transaction with uncommitted changes as well. */
  tu_put(t, main_dbi(t), "new", "1", 0);
  tu_assert_rc(mdb_stat(t, main_dbi(t), &st), 0);
  assert_int_equal(st.ms_entries, kNumUserKeys + 2);
  mdb_txn_abort(t);
}

static void test_dbi_open_reserved_is_eacces(void **state) {
  FX;
  SHIM_ONLY();
  seed_main(fx);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  static const char *const names[] = {"_trlmdb_time", "_trlmdb_recent", "_trlmdb_meta", "_trlmdb_",
                                      "_trlmdb_other"};
  static const unsigned flags[] = {0, MDB_CREATE, MDB_CREATE | MDB_DUPSORT,
                                   MDB_DUPSORT | MDB_INTEGERKEY};
  MDB_txn *t = tu_begin(fx, NULL, 0);
  for (int i = 0; i < 5; ++i)
    for (int f = 0; f < 4; ++f) {
      MDB_dbi d = 12345;
      int rc = mdb_dbi_open(t, names[i], flags[f], &d);
      if (rc != EACCES)
        fail_msg("mdb_dbi_open(\"%s\", 0x%x) returned %d (%s), expected EACCES", names[i], flags[f],
                 rc, mdb_strerror(rc));
    }
  /* The transaction is still usable. */
  tu_put(t, main_dbi(t), "after", "1", 0);
  tu_commit(t);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  for (int i = 0; i < 5; ++i) {
    MDB_dbi d;
    tu_assert_rc(mdb_dbi_open(t, names[i], 0, &d), EACCES);
  }
  mdb_txn_abort(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "after", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  assert_null(tu_find(&s1.time, "_trlmdb_other", "", 0));
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_dbi_open_similar_names_allowed(void **state) {
  FX;
  /* Only names starting with "_trlmdb_" are reserved. */
  static const char *const names[] = {"_trlmdb", "_TRLMDB_time", "x_trlmdb_time", "trlmdb_time"};
  MDB_txn *t = tu_begin(fx, NULL, 0);
  for (int i = 0; i < 4; ++i) {
    MDB_dbi d;
    int rc = mdb_dbi_open(t, names[i], MDB_CREATE, &d);
    if (rc) fail_msg("mdb_dbi_open(\"%s\", MDB_CREATE): %s", names[i], mdb_strerror(rc));
  }
  tu_commit(t);
  tu_snap s0, s;
  memset(&s0, 0, sizeof s0);
  tu_snap_take(fx, &s);
  tu_expect e[] = {TU_MARKER("_trlmdb", TU_OP_PUT), TU_MARKER("_TRLMDB_time", TU_OP_PUT),
                   TU_MARKER("x_trlmdb_time", TU_OP_PUT), TU_MARKER("trlmdb_time", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s, e, 4);
  tu_snap_free(&s);
}

static void test_put_reserved_key_on_main_is_eacces(void **state) {
  FX;
  SHIM_ONLY();
  seed_main(fx);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  static const char *const keys[] = {"_trlmdb_x", "_trlmdb_time", "_trlmdb_", "_trlmdb_meta"};
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  for (int i = 0; i < 4; ++i) {
    MDB_val k = tu_str(keys[i]), v = tu_str("v");
    int rc = mdb_put(t, d, &k, &v, 0);
    if (rc != EACCES)
      fail_msg("mdb_put(main, \"%s\") returned %d (%s), expected EACCES", keys[i], rc,
               mdb_strerror(rc));
    k = tu_str(keys[i]);
    v = tu_str("v");
    rc = mdb_put(t, d, &k, &v, MDB_NOOVERWRITE);
    if (rc != EACCES)
      fail_msg("mdb_put(main, \"%s\", NOOVERWRITE) returned %d (%s), expected EACCES", keys[i], rc,
               mdb_strerror(rc));
    k = tu_str(keys[i]);
    v = tu_str("v");
    rc = mdb_cursor_put(c, &k, &v, 0);
    if (rc != EACCES)
      fail_msg("mdb_cursor_put(main, \"%s\") returned %d (%s), expected EACCES", keys[i], rc,
               mdb_strerror(rc));
  }
  mdb_cursor_close(c);
  tu_put(t, d, "fine", "1", 0); /* the txn is not poisoned */
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "fine", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  /* The reserved database was not overwritten: it still holds the stamps. */
  assert_true(s1.time.n >= (size_t)kNumUserKeys);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_reserved_looking_key_in_named_db_is_allowed(void **state) {
  FX;
  /* Reserved names are database names, i.e. keys of the main DB only. */
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "db", MDB_CREATE);
  tu_put(t, d, "_trlmdb_time", "1", 0);
  tu_commit(t);
  tu_snap s0, s;
  memset(&s0, 0, sizeof s0);
  tu_snap_take(fx, &s);
  tu_expect e[] = {TU_MARKER("db", TU_OP_PUT), TU_X("db", "_trlmdb_time", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s, e, 2);
  tu_snap_free(&s);
}

static void test_del_reserved_key_on_main_is_refused(void **state) {
  FX;
  SHIM_ONLY();
  seed_main(fx);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  MDB_val k = tu_str("_trlmdb_time");
  int rc = mdb_del(t, d, &k, NULL);
  /* Either "not there" (invisible) or "not allowed": never forwarded. */
  if (rc != MDB_NOTFOUND && rc != EACCES)
    fail_msg("mdb_del(main, \"_trlmdb_time\") returned %d (%s)", rc, mdb_strerror(rc));
  tu_put(t, d, "fine", "1", 0); /* the txn is not poisoned */
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "fine", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- cursors on the main DB behave exactly as real LMDB's ----------------- */

/* The same user keys in an environment under the shim (which also holds the
 * reserved databases' records in its main DB) and in one written by the real
 * LMDB alone; the same seeded sequence of cursor operations on both main
 * databases must give the same return codes, keys and values. */
typedef struct {
  int rc;
  size_t klen, dlen;
  unsigned char k[64], d[64];
} cur_result;

static void cur_record(cur_result *r, int rc, const MDB_val *k, const MDB_val *d, int key_out) {
  memset(r, 0, sizeof *r);
  r->rc = rc;
  if (rc) return;
  if (key_out) {
    r->klen = k->mv_size < sizeof r->k ? k->mv_size : sizeof r->k;
    memcpy(r->k, k->mv_data, r->klen);
  }
  r->dlen = d->mv_size < sizeof r->d ? d->mv_size : sizeof r->d;
  memcpy(r->d, d->mv_data, r->dlen);
}

static const char *op_name(int op) {
  switch (op) {
    case MDB_FIRST:
      return "FIRST";
    case MDB_LAST:
      return "LAST";
    case MDB_NEXT:
      return "NEXT";
    case MDB_PREV:
      return "PREV";
    case MDB_NEXT_NODUP:
      return "NEXT_NODUP";
    case MDB_PREV_NODUP:
      return "PREV_NODUP";
    case MDB_GET_CURRENT:
      return "GET_CURRENT";
    case MDB_SET:
      return "SET";
    case MDB_SET_KEY:
      return "SET_KEY";
    case MDB_SET_RANGE:
      return "SET_RANGE";
    default:
      return "DEL";
  }
}

#define OP_DEL 1000

/* Returns 0 when both sides agreed on every step, else prints the first
 * mismatch with the trace of operations that led to it and returns 1. */
static int cursor_differential(tu_fx *fx, const char *const *keys, int nkeys, unsigned seed,
                               int steps, int with_deletes) {
  const tu_real_lmdb *r = tu_real();
  /* Shim side. */
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi sd = main_dbi(t);
  for (int i = 0; i < nkeys; ++i) tu_put(t, sd, keys[i], keys[i], 0);
  tu_commit(t);
  /* Real side, in a directory of its own. */
  tu_fx *ref = tu_fx_new();
  MDB_env *renv;
  MDB_txn *rt;
  MDB_dbi rd;
  assert_int_equal(r->env_create(&renv), 0);
  assert_int_equal(r->env_open(renv, ref->dir, 0, 0644), 0);
  assert_int_equal(r->txn_begin(renv, NULL, 0, &rt), 0);
  assert_int_equal(r->dbi_open(rt, NULL, 0, &rd), 0);
  for (int i = 0; i < nkeys; ++i) {
    MDB_val k = tu_str(keys[i]), v = tu_str(keys[i]);
    assert_int_equal(r->put(rt, rd, &k, &v, 0), 0);
  }
  assert_int_equal(r->txn_commit(rt), 0);

  const unsigned tflags = with_deletes ? 0 : MDB_RDONLY;
  t = tu_begin(fx, NULL, tflags);
  assert_int_equal(r->txn_begin(renv, NULL, tflags, &rt), 0);
  MDB_cursor *sc, *rc_;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &sc), 0);
  assert_int_equal(r->cursor_open(rt, rd, &rc_), 0);

  static const char *const probes[] = {"",
                                       "0",
                                       "A",
                                       "Z",
                                       "_",
                                       "_a",
                                       "_trlmdb",
                                       "_trlmdb!",
                                       "_trlmdb_",
                                       "_trlmdb_meta",
                                       "_trlmdb_recent",
                                       "_trlmdb_time",
                                       "_trlmdb_timf",
                                       "_trlmdb~",
                                       "_u",
                                       "a",
                                       "z",
                                       "zz",
                                       "\x7f"};
  static const int ops[] = {
      MDB_FIRST, MDB_LAST,    MDB_NEXT,       MDB_NEXT,       MDB_NEXT,        MDB_PREV,
      MDB_PREV,  MDB_PREV,    MDB_NEXT_NODUP, MDB_PREV_NODUP, MDB_GET_CURRENT, MDB_GET_CURRENT,
      MDB_SET,   MDB_SET_KEY, MDB_SET_RANGE,  MDB_SET_RANGE,  OP_DEL,          OP_DEL};
  const int nops =
      with_deletes ? (int)(sizeof ops / sizeof ops[0]) : (int)(sizeof ops / sizeof ops[0]) - 2;
  char trace[4096] = "";
  int mismatch = 0;
  unsigned x = seed * 2654435761u + 1;
  for (int step = 0; step < steps; ++step) {
    x = x * 1103515245u + 12345u;
    int op = ops[(x >> 8) % (unsigned)nops];
    const char *probe = probes[(x >> 20) % (sizeof probes / sizeof probes[0])];
    cur_result a, b;
    char line[96];
    if (op == OP_DEL) {
      int ra = mdb_cursor_del(sc, 0), rb = r->cursor_del(rc_, 0);
      snprintf(line, sizeof line, "DEL->%d/%d ", ra, rb);
      if (strlen(trace) + strlen(line) < sizeof trace) strcat(trace, line);
      if (ra != rb) {
        print_message(
            "keys %s.., seed %u, step %d: mdb_cursor_del: shim %d (%s), real LMDB %d (%s)\n  "
            "trace: %s\n",
            nkeys ? keys[0] : "(none)", seed, step, ra, mdb_strerror(ra), rb, mdb_strerror(rb),
            trace);
        mismatch = 1;
        break;
      }
      continue;
    }
    MDB_val ka = tu_str(probe), kb = tu_str(probe), da = {0, NULL}, db = {0, NULL};
    int ra = mdb_cursor_get(sc, &ka, &da, (MDB_cursor_op)op);
    int rb = r->cursor_get(rc_, &kb, &db, (MDB_cursor_op)op);
    const int key_out = op != MDB_SET;
    cur_record(&a, ra, &ka, &da, key_out);
    cur_record(&b, rb, &kb, &db, key_out);
    int is_set = op == MDB_SET || op == MDB_SET_KEY || op == MDB_SET_RANGE;
    snprintf(line, sizeof line, "%s%s%s%s->%d ", op_name(op), is_set ? "(" : "",
             is_set ? probe : "", is_set ? ")" : "", rb);
    if (strlen(trace) + strlen(line) < sizeof trace) strcat(trace, line);
    if (a.rc != b.rc || a.klen != b.klen || a.dlen != b.dlen || memcmp(a.k, b.k, a.klen) ||
        memcmp(a.d, b.d, a.dlen)) {
      print_message(
          "keys %s.., seed %u, step %d: %s: shim rc %d key %s, real LMDB rc %d key %s\n  trace: "
          "%s\n",
          nkeys ? keys[0] : "(none)", seed, step, op_name(op), a.rc,
          a.rc ? "-" : tu_xkey_str(a.k, a.klen), b.rc, b.rc ? "-" : tu_xkey_str(b.k, b.klen),
          trace);
      mismatch = 1;
      break;
    }
  }
  mdb_cursor_close(sc);
  r->cursor_close(rc_);
  mdb_txn_abort(t);
  r->txn_abort(rt);
  r->env_close(renv);
  tu_fx_free(ref);
  return mismatch;
}

static const char *const kSetBoth[] = {"A", "Z", "_a", "_trlmdb", "_u", "a", "z"};
static const char *const kSetBefore[] = {"A", "B", "C"};
static const char *const kSetAfter[] = {"a", "b", "c"};
static const char *const kSetTight[] = {"_trlmdb!", "_trlmdb~"};
static const char *const kSetOne[] = {"_trlmdb"};

typedef struct {
  const char *const *keys;
  int n;
} key_set;

static const key_set kKeySets[] = {{kSetBoth, 7},  {kSetBefore, 3}, {kSetAfter, 3},
                                   {kSetTight, 2}, {kSetOne, 1},    {NULL, 0}};

static void run_differential(int with_deletes) {
  int bad = 0, runs = 0;
  unsigned seeds = getenv("TU_DIFF_SEEDS") ? (unsigned)atoi(getenv("TU_DIFF_SEEDS")) : 20;
  for (size_t s = 0; s < sizeof kKeySets / sizeof kKeySets[0]; ++s)
    for (unsigned seed = 1; seed <= seeds; ++seed) {
      tu_fx *f = tu_fx_new();
      tu_open(f, 0);
      int m = cursor_differential(f, kKeySets[s].keys, kKeySets[s].n, seed, 60, with_deletes);
      tu_fx_free(f);
      ++runs;
      bad += m;
      if (bad >= 8) break;
    }
  if (bad)
    fail_msg("%d of %d cursor sequences differ from real LMDB (first ones above)", bad, runs);
}

static void test_cursor_differential_readonly(void **state) {
  (void)state;
  run_differential(0);
}

static void test_cursor_differential_with_deletes(void **state) {
  (void)state;
  run_differential(1);
}

/* Minimal cases found by the differential tests above. Each puts the same
 * user keys in the main DB and runs a short cursor sequence; the expected
 * results are real LMDB's (the baseline build checks them against it). */
static MDB_cursor *main_cursor_with(tu_fx *fx, const char *const *keys, int n, unsigned tflags,
                                    MDB_txn **txn) {
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  for (int i = 0; i < n; ++i) tu_put(t, d, keys[i], keys[i], 0);
  tu_commit(t);
  *txn = tu_begin(fx, NULL, tflags);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(*txn, main_dbi(*txn), &c), 0);
  return c;
}

static void test_cursor_del_after_set_range_past_visible_end(void **state) {
  /* LMDB: SET_RANGE past the last key leaves the cursor past the end, and a
   * cursor_del there fails with MDB_NOTFOUND, deleting nothing. */
  FX;
  static const char *const keys[] = {"A", "B", "C"};
  MDB_txn *t;
  MDB_cursor *c = main_cursor_with(fx, keys, 3, 0, &t);
  MDB_val k = tu_str("_trlmdb_"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), MDB_NOTFOUND);
  tu_assert_rc(mdb_cursor_del(c, 0), MDB_NOTFOUND);
  mdb_cursor_close(c);
  tu_commit(t);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, main_dbi(t), &st), 0);
  assert_int_equal(st.ms_entries, 3); /* nothing was deleted */
  mdb_txn_abort(t);
}

static void test_cursor_prev_after_set_range_past_visible_end(void **state) {
  FX;
  static const char *const keys[] = {"A", "B", "C"};
  MDB_txn *t;
  MDB_cursor *c = main_cursor_with(fx, keys, 3, MDB_RDONLY, &t);
  MDB_val k = tu_str("_trlmdb_time"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_RANGE), MDB_NOTFOUND);
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT), MDB_NOTFOUND);
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_NEXT), MDB_NOTFOUND);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_PREV), &k, "C", "PREV after SET_RANGE past the end");
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_cursor_next_past_visible_end_then_prev(void **state) {
  FX;
  static const char *const keys[] = {"A", "B", "C"};
  MDB_txn *t;
  MDB_cursor *c = main_cursor_with(fx, keys, 3, MDB_RDONLY, &t);
  MDB_val k, v;
  expect_key(mdb_cursor_get(c, &k, &v, MDB_LAST), &k, "C", "LAST");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_NEXT), MDB_NOTFOUND);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT), &k, "C",
             "GET_CURRENT after NEXT at the end");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_PREV), &k, "B", "PREV after NEXT at the end");
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_cursor_next_after_failed_set(void **state) {
  /* LMDB: a failed MDB_SET leaves the cursor at the insertion point and the
   * next MDB_NEXT moves one past it. */
  FX;
  static const char *const keys[] = {"a", "b", "c"};
  MDB_txn *t;
  MDB_cursor *c = main_cursor_with(fx, keys, 3, MDB_RDONLY, &t);
  MDB_val k, v;
  expect_key(mdb_cursor_get(c, &k, &v, MDB_FIRST), &k, "a", "FIRST");
  k = tu_str("_trlmdb_");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), MDB_NOTFOUND);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_NEXT), &k, "b", "NEXT after a failed SET");
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_cursor_get_current_after_failed_set_key(void **state) {
  FX;
  MDB_txn *t;
  MDB_cursor *c = main_cursor_with(fx, kUserKeys, kNumUserKeys, MDB_RDONLY, &t);
  MDB_val k, v;
  expect_key(mdb_cursor_get(c, &k, &v, MDB_LAST), &k, "z", "LAST");
  k = tu_str("_trlmdb!");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY), MDB_NOTFOUND);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT), &k, "_u",
             "GET_CURRENT after a failed SET_KEY");
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_cursor_del_last_visible_then_get_current(void **state) {
  /* Deleting the last key before the reserved block: LMDB's cursor then
   * stands on the next key. */
  FX;
  MDB_txn *t;
  MDB_cursor *c = main_cursor_with(fx, kUserKeys, kNumUserKeys, 0, &t);
  MDB_val k = tu_str("_trlmdb"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), 0);
  tu_assert_rc(mdb_cursor_del(c, 0), 0);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT), &k, "_u",
             "GET_CURRENT after deleting _trlmdb");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_NEXT), &k, "a", "NEXT after GET_CURRENT");
  mdb_cursor_close(c);
  /* Delete "_a" (now right before the reserved block): NEXT gives "_u". */
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  k = tu_str("_a");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), 0);
  tu_assert_rc(mdb_cursor_del(c, 0), 0);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_NEXT), &k, "_u", "NEXT after deleting _a");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_PREV), &k, "Z", "PREV after that");
  mdb_cursor_close(c);
  mdb_txn_abort(t);
}

static void test_maxdbs_user_limit_readonly_env(void **state) {
  FX;
  /* Three named databases exist; a read-only open with maxdbs 2 may open
   * two of them, like real LMDB, whatever the shim opens for itself. */
  fx->maxdbs = 8;
  tu_open(fx, 0);
  tu_put_commit(fx, "a", MDB_CREATE, "k", "v");
  tu_put_commit(fx, "b", MDB_CREATE, "k", "v");
  tu_put_commit(fx, "c", MDB_CREATE, "k", "v");
  tu_close(fx);
  fx->maxdbs = 2;
  tu_open(fx, MDB_RDONLY);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d;
  tu_assert_rc(mdb_dbi_open(t, "a", 0, &d), 0);
  tu_assert_rc(mdb_dbi_open(t, "b", 0, &d), 0);
  tu_assert_rc(mdb_dbi_open(t, "c", 0, &d), MDB_DBS_FULL);
  mdb_txn_abort(t);
}

static void test_maxdbs_user_limit_first_txn_readonly(void **state) {
  /* The same in a read-write environment whose first transaction after the
   * open is read-only (the shim may not have opened its databases yet). */
  FX;
  fx->maxdbs = 8;
  tu_open(fx, 0);
  tu_put_commit(fx, "a", MDB_CREATE, "k", "v");
  tu_put_commit(fx, "b", MDB_CREATE, "k", "v");
  tu_put_commit(fx, "c", MDB_CREATE, "k", "v");
  tu_close(fx);
  fx->maxdbs = 2;
  tu_open(fx, 0);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d;
  tu_assert_rc(mdb_dbi_open(t, "a", 0, &d), 0);
  tu_assert_rc(mdb_dbi_open(t, "b", 0, &d), 0);
  tu_assert_rc(mdb_dbi_open(t, "c", 0, &d), MDB_DBS_FULL);
  mdb_txn_abort(t);
  /* And writing still works afterwards, with bookkeeping. */
  t = tu_begin(fx, NULL, 0);
  tu_put(t, tu_dbi_in(t, "a", 0), "k2", "v", 0);
  tu_commit(t);
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
#ifndef TU_BASELINE
  assert_non_null(tu_find(&s.time, "a", "k2", 2));
#endif
  tu_snap_free(&s);
}

static void test_db_name_length_limit(void **state) {
  FX;
  /* The database marker is the xkey name "\0": a name of 511 bytes (valid in
   * LMDB) cannot be stamped, so the shim refuses it (honest difference). */
  char name[512];
  memset(name, 'n', sizeof name);
  name[510] = 0;
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d;
  tu_assert_rc(mdb_dbi_open(t, name, MDB_CREATE, &d), 0);
  name[510] = 'n';
  name[511] = 0;
#ifdef TU_BASELINE
  tu_assert_rc(mdb_dbi_open(t, name, MDB_CREATE, &d), 0);
#else
  tu_assert_rc(mdb_dbi_open(t, name, MDB_CREATE, &d), MDB_BAD_VALSIZE);
#endif
  tu_commit(t);
  tu_snap s0, s;
  memset(&s0, 0, sizeof s0);
  tu_snap_take(fx, &s);
  name[510] = 0;
  tu_expect e[] = {{name, "", 0, TU_OP_PUT}};
  tu_expect_stamps(&s0, &s, e, 1);
  tu_snap_free(&s);
}

static void test_env_open_errors_pass_through(void **state) {
  FX;
  char missing[300];
  snprintf(missing, sizeof missing, "%s/does/not/exist", fx->dir);
  MDB_env *env;
  tu_assert_rc(mdb_env_create(&env), 0);
  tu_assert_rc(mdb_env_open(env, missing, 0, 0644), ENOENT);
  mdb_env_close(env);
  /* Read-only open of a directory with no environment in it. */
  char empty[300];
  snprintf(empty, sizeof empty, "%s/empty", fx->dir);
  assert_int_equal(mkdir(empty, 0755), 0);
  tu_assert_rc(mdb_env_create(&env), 0);
  tu_assert_rc(mdb_env_open(env, empty, MDB_RDONLY, 0644), ENOENT);
  mdb_env_close(env);
}

/* ---- maxdbs -------------------------------------------------------------- */

static void test_maxdbs_user_limit_is_kept(void **state) {
  FX;
  fx->maxdbs = 2;
  tu_open(fx, 0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi a, b, c;
  tu_assert_rc(mdb_dbi_open(t, "a", MDB_CREATE, &a), 0);
  tu_assert_rc(mdb_dbi_open(t, "b", MDB_CREATE, &b), 0);
  tu_assert_rc(mdb_dbi_open(t, "c", MDB_CREATE, &c), MDB_DBS_FULL);
  tu_assert_rc(mdb_dbi_open(t, "c", 0, &c), MDB_DBS_FULL);
  tu_assert_rc(mdb_dbi_open(t, "a", 0, &c), 0); /* already open: fine */
  assert_int_equal(c, a);
  tu_commit(t);
  /* After a restart, the same two open, the third does not. */
  tu_reopen(fx);
  t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_dbi_open(t, "b", 0, &b), 0);
  tu_assert_rc(mdb_dbi_open(t, "a", 0, &a), 0);
  tu_assert_rc(mdb_dbi_open(t, "c", MDB_CREATE, &c), MDB_DBS_FULL);
  tu_commit(t);
}

static void test_maxdbs_never_called(void **state) {
  FX;
  /* Real LMDB (0.9.24): without mdb_env_set_maxdbs, the first named database
   * fails with MDB_DBS_FULL, with or without MDB_CREATE. */
  fx->maxdbs = -1;
  tu_open(fx, 0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d;
  tu_assert_rc(mdb_dbi_open(t, "a", MDB_CREATE, &d), MDB_DBS_FULL);
  tu_assert_rc(mdb_dbi_open(t, "a", 0, &d), MDB_DBS_FULL);
  tu_assert_rc(mdb_dbi_open(t, NULL, 0, &d), 0);
  tu_put(t, d, "k", "v", 0); /* the main database works, with bookkeeping */
  tu_commit(t);
  tu_snap s0, s;
  memset(&s0, 0, sizeof s0);
  tu_snap_take(fx, &s);
  tu_expect e[] = {TU_X("", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s, e, 1);
  tu_snap_free(&s);
}

static void test_maxdbs_one(void **state) {
  FX;
  fx->maxdbs = 1;
  tu_open(fx, 0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d;
  tu_assert_rc(mdb_dbi_open(t, "only", MDB_CREATE | MDB_DUPSORT, &d), 0);
  tu_put(t, d, "k", "v", 0);
  tu_assert_rc(mdb_dbi_open(t, "second", MDB_CREATE, &d), MDB_DBS_FULL);
  tu_commit(t);
}

static void test_maxdbs_after_open_is_einval(void **state) {
  FX;
  /* LMDB refuses mdb_env_set_maxdbs on an open environment. */
  tu_assert_rc(mdb_env_set_maxdbs(fx->env, 50), EINVAL);
}

/* ---- env-level transparency ---------------------------------------------- */

static void test_userctx_round_trip(void **state) {
  FX;
  int a = 1, b = 2;
  MDB_env *env;
  tu_assert_rc(mdb_env_create(&env), 0);
  assert_null(mdb_env_get_userctx(env));
  tu_assert_rc(mdb_env_set_userctx(env, &a), 0);
  assert_ptr_equal(mdb_env_get_userctx(env), &a);
  tu_assert_rc(mdb_env_set_maxdbs(env, 4), 0);
  tu_assert_rc(mdb_env_open(env, fx->dir, 0, 0644), 0);
  assert_ptr_equal(mdb_env_get_userctx(env), &a);
  tu_assert_rc(mdb_env_set_userctx(env, &b), 0);
  assert_ptr_equal(mdb_env_get_userctx(env), &b);
  /* Writes (which the shim bookkeeps) leave it alone. */
  MDB_txn *t;
  MDB_dbi d;
  tu_assert_rc(mdb_txn_begin(env, NULL, 0, &t), 0);
  tu_assert_rc(mdb_dbi_open(t, "db", MDB_CREATE, &d), 0);
  tu_put(t, d, "k", "v", 0);
  tu_assert_rc(mdb_txn_commit(t), 0);
  assert_ptr_equal(mdb_env_get_userctx(env), &b);
  tu_assert_rc(mdb_env_set_userctx(env, NULL), 0);
  assert_null(mdb_env_get_userctx(env));
  mdb_env_close(env);
}

static void test_txn_ids_match_lmdb(void **state) {
  /* The shim must not add transactions of its own: the ids a program sees
   * are LMDB's (fresh environment: first write txn is 1, and so on). */
  FX;
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  assert_int_equal(mdb_txn_id(t), 0);
  mdb_txn_abort(t);
  t = tu_begin(fx, NULL, 0);
  assert_int_equal(mdb_txn_id(t), 1);
  tu_put(t, main_dbi(t), "k", "v", 0);
  tu_commit(t);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  assert_int_equal(mdb_txn_id(t), 1);
  mdb_txn_abort(t);
  t = tu_begin(fx, NULL, 0);
  assert_int_equal(mdb_txn_id(t), 2);
  tu_dbi_in(t, "db", MDB_CREATE);
  tu_commit(t);
  tu_reopen(fx);
  t = tu_begin(fx, NULL, 0);
  assert_int_equal(mdb_txn_id(t), 3);
  mdb_txn_abort(t);
  MDB_envinfo info;
  tu_assert_rc(mdb_env_info(fx->env, &info), 0);
  assert_int_equal(info.me_last_txnid, 2);
}

static void test_handles_pass_through(void **state) {
  FX;
  MDB_txn *t = tu_begin(fx, NULL, 0);
  assert_ptr_equal(mdb_txn_env(t), fx->env);
  MDB_dbi d = tu_dbi_in(t, "db", MDB_CREATE);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  assert_ptr_equal(mdb_cursor_txn(c), t);
  assert_int_equal(mdb_cursor_dbi(c), d);
  mdb_cursor_close(c);
  MDB_txn *child = tu_begin(fx, t, 0);
  assert_ptr_equal(mdb_txn_env(child), fx->env);
  mdb_txn_abort(child);
  tu_commit(t);
  const char *path = NULL;
  tu_assert_rc(mdb_env_get_path(fx->env, &path), 0);
  assert_string_equal(path, fx->dir);
  assert_int_equal(mdb_env_get_maxkeysize(fx->env), 511);
  int maj, min, pat;
  mdb_version(&maj, &min, &pat);
  assert_int_equal(maj, MDB_VERSION_MAJOR);
  assert_int_equal(min, MDB_VERSION_MINOR);
}

typedef struct {
  const char *dir;
  int errors;
  int first_rc;
  const char *first_what;
} workload;

#define W_CHECK(w, expr)                  \
  do {                                    \
    int rc_ = (expr);                     \
    if (rc_ != 0 && (w)->errors++ == 0) { \
      (w)->first_rc = rc_;                \
      (w)->first_what = #expr;            \
    }                                     \
  } while (0)

static void run_workload(void *arg) {
  workload *w = arg;
  MDB_env *env;
  MDB_txn *t, *c;
  MDB_dbi m, d;
  W_CHECK(w, mdb_env_create(&env));
  W_CHECK(w, mdb_env_set_maxdbs(env, 4));
  W_CHECK(w, mdb_env_open(env, w->dir, 0, 0644));
  W_CHECK(w, mdb_txn_begin(env, NULL, 0, &t));
  W_CHECK(w, mdb_dbi_open(t, NULL, 0, &m));
  W_CHECK(w, mdb_dbi_open(t, "dups", MDB_CREATE | MDB_DUPSORT, &d));
  for (int i = 0; i < 100; ++i) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    MDB_val k = tu_str(key), v = tu_str("v");
    W_CHECK(w, mdb_put(t, m, &k, &v, 0));
    W_CHECK(w, mdb_put(t, d, &k, &v, 0));
  }
  MDB_val k = tu_str("k000"), v = tu_str("v2");
  W_CHECK(w, mdb_del(t, m, &k, NULL));
  W_CHECK(w, mdb_put(t, m, &k, &v, MDB_NOOVERWRITE));
  v = tu_str("v3");
  W_CHECK(w, mdb_put(t, m, &k, &v, MDB_NOOVERWRITE) == MDB_KEYEXIST ? 0 : -1); /* error path */
  W_CHECK(w, mdb_txn_begin(env, t, 0, &c));
  k = tu_str("child");
  v = tu_str("1");
  W_CHECK(w, mdb_put(c, m, &k, &v, 0));
  mdb_txn_abort(c);
  W_CHECK(w, mdb_drop(t, d, 0));
  W_CHECK(w, mdb_txn_commit(t));
  MDB_val bad = tu_str("_trlmdb_x");
  W_CHECK(w, mdb_txn_begin(env, NULL, 0, &t));
  v = tu_str("v");
  (void)mdb_put(t, m, &bad, &v, 0); /* EACCES under the shim: an error, still no stdout */
  mdb_txn_abort(t);
  mdb_env_close(env);
}

static void test_nothing_written_to_stdout(void **state) {
  FX;
  tu_close(fx); /* the workload opens the environment itself */
  workload w = {fx->dir, 0, 0, NULL};
  long n = tu_stdout_bytes_during(run_workload, &w);
  if (w.errors)
    fail_msg("workload: %d errors, first %s = %d (%s)", w.errors, w.first_what, w.first_rc,
             mdb_strerror(w.first_rc));
  assert_int_equal(n, 0);
}

static void test_nothing_written_to_stdout_child_process(void **state) {
  /* The same in a process of its own whose stdout is a pipe: includes the
   * library's constructors/destructors and exit-time flushing. */
  FX;
  tu_close(fx);
  int p[2];
  assert_int_equal(pipe(p), 0);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    close(p[0]);
    dup2(p[1], 1);
    close(p[1]);
    workload w = {fx->dir, 0, 0, NULL};
    run_workload(&w);
    exit(w.errors ? 3 : 0);
  }
  close(p[1]);
  char buf[256];
  long total = 0;
  ssize_t r;
  while ((r = read(p[0], buf, sizeof buf)) > 0) total += r;
  close(p[0]);
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
  assert_int_equal(total, 0);
}

/* ---- key length: the documented honest difference ------------------------ */

static void key_length_case(tu_fx *fx, const char *db, size_t max_ok) {
  char *key = malloc(600);
  memset(key, 'k', 600);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, db, db ? MDB_CREATE : 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  MDB_val k = tu_mem(key, max_ok), v = tu_str("v");
  tu_assert_rc(mdb_put(t, d, &k, &v, 0), 0);
  k = tu_mem(key, max_ok + 1);
  v = tu_str("v");
#ifdef TU_BASELINE
  int want = max_ok + 1 <= 511 ? 0 : MDB_BAD_VALSIZE;
#else
  int want = MDB_BAD_VALSIZE; /* xkey = db "\0" key would exceed 511 bytes */
#endif
  tu_assert_rc(mdb_put(t, d, &k, &v, 0), want);
  key[0] = 'c'; /* a different key, through the cursor */
  k = tu_mem(key, max_ok + 1);
  v = tu_str("v");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, 0), want);
  mdb_cursor_close(c);
  /* 512 fails in LMDB too. */
  k = tu_mem(key, 512);
  tu_assert_rc(mdb_put(t, d, &k, &v, 0), MDB_BAD_VALSIZE);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  key[0] = 'k';
  tu_expect e[2];
  size_t n = 0;
  if (db) e[n++] = (tu_expect){db, "", 0, TU_OP_PUT};
  e[n++] = (tu_expect){db ? db : "", key, max_ok, TU_OP_PUT};
  tu_expect_stamps(&s0, &s1, e, n);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  free(key);
}

static void test_key_length_main_db(void **state) {
  FX;
  key_length_case(fx, NULL, 511 - 0 - 1);
}

static void test_key_length_named_db(void **state) {
  FX;
  key_length_case(fx, "db1", 511 - 3 - 1);
}

/* ---- read-only environments and environments written without the shim --- */

static void test_readonly_env(void **state) {
  FX;
  seed_main(fx);
  tu_close(fx);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  tu_open(fx, MDB_RDONLY);
  MDB_txn *t;
  tu_assert_rc(mdb_txn_begin(fx->env, NULL, 0, &t), EACCES); /* as LMDB: no write txn */
  t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d = main_dbi(t);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, d, &st), 0);
  assert_int_equal(st.ms_entries, kNumUserKeys);
  MDB_val k = tu_str("_trlmdb_time"), v;
  tu_assert_rc(mdb_get(t, d, &k, &v), MDB_NOTFOUND);
  k = tu_str("a");
  tu_assert_rc(mdb_get(t, d, &k, &v), 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  int n = 0;
  for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
    ++n;
  assert_int_equal(n, kNumUserKeys);
  mdb_cursor_close(c);
  k = tu_str("x");
  v = tu_str("1");
  tu_assert_rc(mdb_put(t, d, &k, &v, 0), EACCES);
  mdb_txn_abort(t);
  tu_close(fx);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_env_written_without_shim(void **state) {
  FX;
  tu_close(fx);
  /* Create the environment with the real LMDB only: no reserved databases. */
  const tu_real_lmdb *r = tu_real();
  MDB_env *env;
  MDB_txn *t;
  MDB_dbi d;
  assert_int_equal(r->env_create(&env), 0);
  assert_int_equal(r->env_open(env, fx->dir, 0, 0644), 0);
  assert_int_equal(r->txn_begin(env, NULL, 0, &t), 0);
  assert_int_equal(r->dbi_open(t, NULL, 0, &d), 0);
  MDB_val k = tu_str("old"), v = tu_str("1");
  assert_int_equal(r->put(t, d, &k, &v, 0), 0);
  assert_int_equal(r->txn_commit(t), 0);
  r->env_close(env);
  /* Read-only under the shim: works, nothing created. */
  tu_open(fx, MDB_RDONLY);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  d = main_dbi(t);
  k = tu_str("old");
  tu_assert_rc(mdb_get(t, d, &k, &v), 0);
  mdb_txn_abort(t);
  tu_close(fx);
  /* Read-write under the shim: the program's writes are bookkept. */
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "new", "1");
  t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  expect_key(mdb_cursor_get(c, &k, &v, MDB_FIRST), &k, "new", "FIRST");
  expect_key(mdb_cursor_get(c, &k, &v, MDB_NEXT), &k, "old", "NEXT");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_NEXT), MDB_NOTFOUND);
  mdb_cursor_close(c);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, main_dbi(t), &st), 0);
  assert_int_equal(st.ms_entries, 2);
  mdb_txn_abort(t);
  tu_snap s;
  tu_snap_take(fx, &s);
#ifndef TU_BASELINE
  assert_true(s.reserved_present);
  const tu_entry *e = tu_find(&s.time, "", "new", 3);
  assert_non_null(e);
  assert_int_equal(e->ts[11], TU_OP_PUT);
  /* "old" was written around the shim: no stamp (trlmdb adopt's job). */
  assert_null(tu_find(&s.time, "", "old", 3));
#endif
  tu_snap_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
#define TC(f) cmocka_unit_test_setup_teardown(f, tu_setup_closed, tu_teardown)
      T(test_cursor_on_main_skips_reserved),
      T(test_cursor_positioning_around_reserved),
      T(test_cursor_on_main_without_user_keys),
      T(test_fresh_env_main_is_empty),
      T(test_get_reserved_name_is_notfound),
      T(test_stat_main_counts_only_user_entries),
      T(test_dbi_open_reserved_is_eacces),
      T(test_dbi_open_similar_names_allowed),
      T(test_put_reserved_key_on_main_is_eacces),
      T(test_reserved_looking_key_in_named_db_is_allowed),
      T(test_del_reserved_key_on_main_is_refused),
      T(test_cursor_differential_readonly),
      T(test_cursor_differential_with_deletes),
      T(test_cursor_del_after_set_range_past_visible_end),
      T(test_cursor_prev_after_set_range_past_visible_end),
      T(test_cursor_next_past_visible_end_then_prev),
      T(test_cursor_next_after_failed_set),
      T(test_cursor_get_current_after_failed_set_key),
      T(test_cursor_del_last_visible_then_get_current),
      TC(test_maxdbs_user_limit_readonly_env),
      TC(test_maxdbs_user_limit_first_txn_readonly),
      T(test_db_name_length_limit),
      TC(test_env_open_errors_pass_through),
      TC(test_maxdbs_user_limit_is_kept),
      TC(test_maxdbs_never_called),
      TC(test_maxdbs_one),
      T(test_maxdbs_after_open_is_einval),
      TC(test_userctx_round_trip),
      T(test_handles_pass_through),
      T(test_txn_ids_match_lmdb),
      T(test_nothing_written_to_stdout),
      T(test_nothing_written_to_stdout_child_process),
      T(test_key_length_main_db),
      T(test_key_length_named_db),
      T(test_readonly_env),
      T(test_env_written_without_shim),
#undef T
#undef TC
  };
  return cmocka_run_group_tests_name("trlmdb ABI transparency", tests, NULL, NULL);
}
