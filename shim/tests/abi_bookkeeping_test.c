/* cmocka tests of the shim's bookkeeping (issue 2, "Bookkeeping"; DESIGN.md
 * sections 1-2): every successful change through every write entry point and
 * flag stamps exactly its xkeys with a fresh timestamp in _trlmdb_time and
 * _trlmdb_recent, in the same transaction; failed calls write nothing and
 * return what LMDB returns; a transaction's bookkeeping goes with it.
 *
 * Each test runs in its own temporary directory. The bookkeeping is read with
 * the real LMDB after closing the environment under the shim (tu_snap_take).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi_testutil.h"

#ifndef TU_BASELINE
#include <trlmdb.h>
#endif

#define FX tu_fx *fx = *state

static MDB_dbi main_dbi(MDB_txn *t) { return tu_dbi_in(t, NULL, 0); }

/* Puts key=val into db (NULL = main) with `dbflags` and commits. */
static void seed(tu_fx *fx, const char *db, unsigned dbflags, const char *const *kv, size_t n) {
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, db, dbflags);
  for (size_t i = 0; i + 1 < n; i += 2) tu_put(t, d, kv[i], kv[i + 1], 0);
  tu_commit(t);
}

static void check_value(tu_fx *fx, const char *db, const char *key, const char *want) {
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d = tu_dbi_in(t, db, 0);
  MDB_val k = tu_str(key), v;
  int rc = mdb_get(t, d, &k, &v);
  if (want == NULL) {
    tu_assert_rc(rc, MDB_NOTFOUND);
  } else {
    tu_assert_rc(rc, 0);
    assert_int_equal(v.mv_size, strlen(want));
    assert_memory_equal(v.mv_data, want, strlen(want));
  }
  mdb_txn_abort(t);
}

/* ---- mdb_put ------------------------------------------------------------- */

static void test_put_main_db(void **state) {
  FX;
  tu_snap s0, s1, s2;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  tu_put(t, d, "k1", "v1", 0);
  tu_put(t, d, "k2", "v2", 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect s1e[] = {TU_X("", "k1", TU_OP_PUT), TU_X("", "k2", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, s1e, 2);
  /* Overwriting re-stamps with a newer ts; the untouched key keeps its own. */
  t = tu_begin(fx, NULL, 0);
  d = main_dbi(t);
  tu_put(t, d, "k1", "v1b", 0);
  tu_commit(t);
  tu_snap_take(fx, &s2);
  tu_expect s2e[] = {TU_X("", "k1", TU_OP_PUT)};
  tu_expect_stamps(&s1, &s2, s2e, 1);
  check_value(fx, NULL, "k1", "v1b");
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  tu_snap_free(&s2);
}

static void test_put_same_value_restamps(void **state) {
  FX;
  static const char *const kv[] = {"k", "v"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_put(t, main_dbi(t), "k", "v", 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_binary_keys_named_and_integerkey(void **state) {
  FX;
  tu_snap s0, s1;
  tu_dbi(fx, "db", MDB_CREATE);
  tu_dbi(fx, "ints", MDB_CREATE | MDB_INTEGERKEY);
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi db = tu_dbi_in(t, "db", 0), ints = tu_dbi_in(t, "ints", 0), m = main_dbi(t);
  MDB_val k = tu_mem("a\0b", 3), v = tu_str("x");
  tu_assert_rc(mdb_put(t, db, &k, &v, 0), 0);
  k = tu_mem("\0", 1); /* a key that is a single NUL byte, in the main DB */
  tu_assert_rc(mdb_put(t, m, &k, &v, 0), 0);
  k = tu_mem("\xff\xfe", 2);
  tu_assert_rc(mdb_put(t, m, &k, &v, 0), 0);
  uint64_t ik = 0x0102030405060708ull; /* native byte order, as INTEGERKEY stores it */
  k = tu_mem(&ik, sizeof ik);
  tu_assert_rc(mdb_put(t, ints, &k, &v, 0), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {{"db", "a\0b", 3, TU_OP_PUT},
                   {"", "\0", 1, TU_OP_PUT},
                   {"", "\xff\xfe", 2, TU_OP_PUT},
                   {"ints", &ik, sizeof ik, TU_OP_PUT}};
  tu_expect_stamps(&s0, &s1, e, 4);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_nooverwrite(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_put(t, main_dbi(t), "new", "v", MDB_NOOVERWRITE);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "new", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_nodupdata(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_put(t, tu_dbi_in(t, "dups", 0), "k", "2", MDB_NODUPDATA);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_dupsort_new_dup_restamps_key(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "other", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_put(t, tu_dbi_in(t, "dups", 0), "k", "0", 0); /* sorts before the existing dup */
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_reserve(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("r"), v = {5, NULL};
  tu_assert_rc(mdb_put(t, main_dbi(t), &k, &v, MDB_RESERVE), 0);
  assert_non_null(v.mv_data);
  assert_int_equal(v.mv_size, 5);
  memcpy(v.mv_data, "hello", 5);
  tu_commit(t);
  check_value(fx, NULL, "r", "hello");
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "r", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_append(void **state) {
  FX;
  static const char *const kv[] = {"a", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  tu_put(t, d, "b", "2", MDB_APPEND);
  tu_put(t, d, "c", "3", MDB_APPEND);
  tu_put(t, d, "d", "4", MDB_APPEND);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "b", TU_OP_PUT), TU_X("", "c", TU_OP_PUT), TU_X("", "d", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 3);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_appenddup(void **state) {
  FX;
  tu_dbi(fx, "dups", MDB_CREATE | MDB_DUPSORT);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "dups", 0);
  tu_put(t, d, "k", "1", MDB_APPENDDUP);
  tu_put(t, d, "k", "2", MDB_APPENDDUP);
  tu_put(t, d, "l", "1", MDB_APPENDDUP);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_PUT), TU_X("dups", "l", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_put_many_keys_one_txn(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  enum { N = 1000 };
  static char keys[N][16];
  tu_expect e[N];
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  for (int i = 0; i < N; ++i) {
    /* Written in a scrambled order, with repeats. */
    int j = (i * 7919) % N;
    snprintf(keys[j], sizeof keys[j], "key%05d", j);
    tu_put(t, d, keys[j], "v", 0);
    if (i % 10 == 0) tu_put(t, d, keys[j], "again", 0);
  }
  tu_commit(t);
  for (int i = 0; i < N; ++i) e[i] = (tu_expect){"", keys[i], strlen(keys[i]), TU_OP_PUT};
  tu_snap_take(fx, &s1);
  tu_expect_stamps(&s0, &s1, e, N);
#ifndef TU_BASELINE
  assert_int_equal(s1.time.n, s0.time.n + N);
#endif
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- mdb_cursor_put ------------------------------------------------------ */

static void test_cursor_put_plain(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k = tu_str("c1"), v = tu_str("v");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, 0), 0);
  k = tu_str("c0");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, 0), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "c0", TU_OP_PUT), TU_X("", "c1", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_put_current(void **state) {
  FX;
  static const char *const kv[] = {"a", "1", "b", "2", "c", "3"};
  seed(fx, NULL, 0, kv, 6);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k = tu_str("b"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY), 0);
  MDB_val nv = tu_str("9");
  tu_assert_rc(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  check_value(fx, NULL, "b", "9");
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "b", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_put_current_dupfixed(void **state) {
  FX;
  static const char *const kv[] = {"k", "1111", "k", "2222", "z", "0000"};
  seed(fx, "fixed", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, kv, 6);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, tu_dbi_in(t, "fixed", 0), &c), 0);
  MDB_val k = tu_str("k"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY), 0);
  /* CURRENT on a DUPSORT db must keep the sort position: same value. */
  MDB_val nv = tu_str("1111");
  tu_assert_rc(mdb_cursor_put(c, &k, &nv, MDB_CURRENT), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("fixed", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_put_nodupdata(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, tu_dbi_in(t, "dups", 0), &c), 0);
  MDB_val k = tu_str("k"), v = tu_str("2");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_NODUPDATA), 0);
  k = tu_str("m");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_NODUPDATA), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_PUT), TU_X("dups", "m", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_put_multiple_dupfixed(void **state) {
  FX;
  tu_dbi(fx, "fixed", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "fixed", 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  uint32_t items[4] = {1, 2, 3, 4};
  MDB_val k = tu_str("multi");
  MDB_val data[2] = {{sizeof items[0], items}, {4, NULL}};
  tu_assert_rc(mdb_cursor_put(c, &k, data, MDB_MULTIPLE), 0);
  /* LMDB reports how many items it wrote; the shim must not change that. */
  assert_int_equal(data[1].mv_size, 4);
  size_t count = 0;
  tu_assert_rc(mdb_cursor_count(c, &count), 0);
  assert_int_equal(count, 4);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("fixed", "multi", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_put_append_and_reserve(void **state) {
  FX;
  static const char *const kv[] = {"a", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k = tu_str("b"), v = tu_str("2");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_APPEND), 0);
  k = tu_str("c");
  v.mv_size = 3;
  v.mv_data = NULL;
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_RESERVE), 0);
  memcpy(v.mv_data, "res", 3);
  mdb_cursor_close(c);
  tu_commit(t);
  check_value(fx, NULL, "c", "res");
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "b", TU_OP_PUT), TU_X("", "c", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_put_appenddup(void **state) {
  FX;
  tu_dbi(fx, "dups", MDB_CREATE | MDB_DUPSORT);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, tu_dbi_in(t, "dups", 0), &c), 0);
  MDB_val k = tu_str("k"), v = tu_str("1");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_APPENDDUP), 0);
  v = tu_str("2");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_APPENDDUP), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- mdb_del / mdb_cursor_del -------------------------------------------- */

static void test_del_without_data(void **state) {
  FX;
  static const char *const kv[] = {"a", "1", "b", "2"};
  seed(fx, NULL, 0, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("a");
  tu_assert_rc(mdb_del(t, main_dbi(t), &k, NULL), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "a", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_del_with_data_not_dupsort(void **state) {
  FX;
  /* LMDB ignores the data argument on a database without DUPSORT. */
  static const char *const kv[] = {"a", "1"};
  seed(fx, "plain", MDB_CREATE, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("a"), v = tu_str("not-the-value");
  tu_assert_rc(mdb_del(t, tu_dbi_in(t, "plain", 0), &k, &v), 0);
  tu_commit(t);
  check_value(fx, "plain", "a", NULL);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("plain", "a", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_del_dupsort_one_then_last(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "k", "2", "x", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 6);
  tu_snap s0, s1, s2;
  tu_snap_take(fx, &s0);
  /* Deleting one of two duplicates: the key still exists, LSB 1. */
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("k"), v = tu_str("1");
  tu_assert_rc(mdb_del(t, tu_dbi_in(t, "dups", 0), &k, &v), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e1[] = {TU_X("dups", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e1, 1);
  /* Deleting the last duplicate: the key is gone, LSB 0. */
  t = tu_begin(fx, NULL, 0);
  k = tu_str("k");
  v = tu_str("2");
  tu_assert_rc(mdb_del(t, tu_dbi_in(t, "dups", 0), &k, &v), 0);
  tu_commit(t);
  tu_snap_take(fx, &s2);
  tu_expect e2[] = {TU_X("dups", "k", TU_OP_DEL)};
  tu_expect_stamps(&s1, &s2, e2, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  tu_snap_free(&s2);
}

static void test_del_dupsort_both_dups_same_txn(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "k", "2"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "dups", 0);
  MDB_val k = tu_str("k"), v = tu_str("1");
  tu_assert_rc(mdb_del(t, d, &k, &v), 0);
  k = tu_str("k");
  v = tu_str("2");
  tu_assert_rc(mdb_del(t, d, &k, &v), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_del_dupsort_without_data(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "k", "2", "k", "3"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 6);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("k");
  tu_assert_rc(mdb_del(t, tu_dbi_in(t, "dups", 0), &k, NULL), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_del_plain(void **state) {
  FX;
  static const char *const kv[] = {"a", "1", "b", "2"};
  seed(fx, NULL, 0, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k = tu_str("b"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), 0);
  tu_assert_rc(mdb_cursor_del(c, 0), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "b", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_del_dupsort_one_then_nodupdata(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "k", "2", "k", "3", "m", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 8);
  tu_snap s0, s1, s2;
  tu_snap_take(fx, &s0);
  /* Flag 0 deletes the current duplicate only: the key stays, LSB 1. */
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, tu_dbi_in(t, "dups", 0), &c), 0);
  MDB_val k = tu_str("k"), v = tu_str("2");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_GET_BOTH), 0);
  tu_assert_rc(mdb_cursor_del(c, 0), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e1[] = {TU_X("dups", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e1, 1);
  /* MDB_NODUPDATA deletes every duplicate of the key: LSB 0. */
  t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_cursor_open(t, tu_dbi_in(t, "dups", 0), &c), 0);
  k = tu_str("k");
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET), 0);
  tu_assert_rc(mdb_cursor_del(c, MDB_NODUPDATA), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  check_value(fx, "dups", "k", NULL);
  tu_snap_take(fx, &s2);
  tu_expect e2[] = {TU_X("dups", "k", TU_OP_DEL)};
  tu_expect_stamps(&s1, &s2, e2, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  tu_snap_free(&s2);
}

static void test_cursor_del_last_dup_with_flag_zero(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, tu_dbi_in(t, "dups", 0), &c), 0);
  MDB_val k = tu_str("k"), v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_SET_KEY), 0);
  tu_assert_rc(mdb_cursor_del(c, 0), 0);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("dups", "k", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_cursor_del_walk_deletes_everything(void **state) {
  FX;
  static const char *const kv[] = {"a", "1", "b", "2", "c", "3"};
  seed(fx, NULL, 0, kv, 6);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k, v;
  int n = 0;
  while (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0) {
    tu_assert_rc(mdb_cursor_del(c, 0), 0);
    if (++n > 10) fail_msg("the cursor keeps finding keys after deleting them");
  }
  assert_int_equal(n, 3);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "a", TU_OP_DEL), TU_X("", "b", TU_OP_DEL), TU_X("", "c", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 3);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- mdb_drop and database creation -------------------------------------- */

static void test_create_named_db_writes_marker(void **state) {
  FX;
  tu_snap s0, s1, s2;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_dbi_in(t, "db", MDB_CREATE);
  tu_dbi_in(t, "dups", MDB_CREATE | MDB_DUPSORT);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_MARKER("db", TU_OP_PUT), TU_MARKER("dups", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  /* Opening existing databases (with or without MDB_CREATE) re-stamps nothing. */
  t = tu_begin(fx, NULL, 0);
  tu_dbi_in(t, "db", MDB_CREATE);
  tu_dbi_in(t, "dups", 0);
  tu_commit(t);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  tu_dbi_in(t, "db", 0);
  mdb_txn_abort(t);
  tu_snap_take(fx, &s2);
  tu_expect_unchanged(&s1, &s2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  tu_snap_free(&s2);
}

static void test_create_named_db_with_puts_same_txn(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "db", MDB_CREATE);
  tu_put(t, d, "k", "v", 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_MARKER("db", TU_OP_PUT), TU_X("db", "k", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_create_named_db_aborted_leaves_no_marker(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "db", MDB_CREATE);
  tu_put(t, d, "k", "v", 0);
  mdb_txn_abort(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  assert_null(tu_find(&s1.time, "db", "", 0));
  t = tu_begin(fx, NULL, MDB_RDONLY);
  tu_assert_rc(mdb_dbi_open(t, "db", 0, &d), MDB_NOTFOUND);
  mdb_txn_abort(t);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_drop_empty_named(void **state) {
  FX;
  static const char *const kv[] = {"a", "1", "b", "2", "b", "3", "c", "4"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 8);
  static const char *const other[] = {"a", "1"};
  seed(fx, "other", MDB_CREATE, other, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_drop(t, tu_dbi_in(t, "dups", 0), 0), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  /* Every key tombstoned; the marker stays a put with its creation stamp. */
  tu_expect e[] = {TU_X("dups", "a", TU_OP_DEL), TU_X("dups", "b", TU_OP_DEL),
                   TU_X("dups", "c", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 3);
#ifndef TU_BASELINE
  const tu_entry *m = tu_find(&s1.time, "dups", "", 0);
  assert_non_null(m);
  assert_int_equal(m->ts[11], TU_OP_PUT);
#endif
  /* The database is still there, empty, with its flags. */
  t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d = tu_dbi_in(t, "dups", 0);
  MDB_stat st;
  tu_assert_rc(mdb_stat(t, d, &st), 0);
  assert_int_equal(st.ms_entries, 0);
  unsigned flags = 0;
  tu_assert_rc(mdb_dbi_flags(t, d, &flags), 0);
  assert_true(flags & MDB_DUPSORT);
  mdb_txn_abort(t);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_drop_delete_named(void **state) {
  FX;
  static const char *const kv[] = {"a", "1", "b", "2"};
  seed(fx, "db", MDB_CREATE, kv, 4);
  tu_snap s0, s1, s2;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_drop(t, tu_dbi_in(t, "db", 0), 1), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_MARKER("db", TU_OP_DEL), TU_X("db", "a", TU_OP_DEL),
                   TU_X("db", "b", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 3);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d;
  tu_assert_rc(mdb_dbi_open(t, "db", 0, &d), MDB_NOTFOUND);
  mdb_txn_abort(t);
  /* Re-creating it stamps the marker as a put again, newer. */
  t = tu_begin(fx, NULL, 0);
  tu_dbi_in(t, "db", MDB_CREATE);
  tu_commit(t);
  tu_snap_take(fx, &s2);
  tu_expect e2[] = {TU_MARKER("db", TU_OP_PUT)};
  tu_expect_stamps(&s1, &s2, e2, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  tu_snap_free(&s2);
}

static void test_drop_after_puts_in_same_txn(void **state) {
  FX;
  static const char *const kv[] = {"a", "1"};
  seed(fx, "db", MDB_CREATE, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "db", 0);
  tu_put(t, d, "new", "1", 0); /* put then drop in one txn: the drop wins */
  tu_assert_rc(mdb_drop(t, d, 1), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_MARKER("db", TU_OP_DEL), TU_X("db", "a", TU_OP_DEL),
                   TU_X("db", "new", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 3);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_drop_empty_main(void **state) {
  FX;
  static const char *const kv[] = {"A", "1", "z", "2"};
  seed(fx, NULL, 0, kv, 4);
  tu_snap s0, s1, s2;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_drop(t, main_dbi(t), 0), 0);
  tu_commit(t);
  /* The user's keys are gone; the reserved databases survive. */
  t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, main_dbi(t), &c), 0);
  MDB_val k, v;
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_FIRST), MDB_NOTFOUND);
  mdb_cursor_close(c);
  mdb_txn_abort(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "A", TU_OP_DEL), TU_X("", "z", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 2);
  /* And the environment keeps working. */
  tu_put_commit(fx, NULL, 0, "n", "1");
  tu_snap_take(fx, &s2);
  tu_expect e2[] = {TU_X("", "n", TU_OP_PUT)};
  tu_expect_stamps(&s1, &s2, e2, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
  tu_snap_free(&s2);
}

static void test_drop_and_recreate_same_txn(void **state) {
  FX;
  static const char *const kv[] = {"old", "1"};
  seed(fx, "db", MDB_CREATE, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_assert_rc(mdb_drop(t, tu_dbi_in(t, "db", 0), 1), 0);
  MDB_dbi d = tu_dbi_in(t, "db", MDB_CREATE);
  tu_put(t, d, "new", "1", 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_MARKER("db", TU_OP_PUT), TU_X("db", "old", TU_OP_DEL),
                   TU_X("db", "new", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 3);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_drop_abort(void **state) {
  FX;
  static const char *const kv[] = {"a", "1"};
  seed(fx, "db", MDB_CREATE, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(p, "db", 0);
  tu_put(p, d, "b", "1", 0);
  MDB_txn *c = tu_begin(fx, p, 0);
  /* del=0: with del=1 LMDB itself invalidates the parent's handle on abort. */
  tu_assert_rc(mdb_drop(c, d, 0), 0);
  mdb_txn_abort(c);
  tu_put(p, d, "c", "1", 0);
  tu_commit(p);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("db", "b", TU_OP_PUT), TU_X("db", "c", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_drop_commit(void **state) {
  FX;
  static const char *const kv[] = {"a", "1"};
  seed(fx, "db", MDB_CREATE, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(p, "db", 0);
  tu_put(p, d, "b", "1", 0); /* put by the parent, dropped by the child */
  MDB_txn *c = tu_begin(fx, p, 0);
  tu_assert_rc(mdb_drop(c, d, 0), 0);
  tu_commit(c);
  tu_commit(p);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("db", "a", TU_OP_DEL), TU_X("db", "b", TU_OP_DEL)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_drop_delete_abort_bad_dbi(void **state) {
  /* LMDB: a child that deletes a database (drop del=1) and aborts leaves the
   * parent's handle stale; after a write through it the parent's commit fails
   * with MDB_BAD_DBI. The shim must return the same, and write nothing. */
  FX;
  static const char *const kv[] = {"a", "1"};
  seed(fx, "db", MDB_CREATE, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(p, "db", 0);
  tu_put(p, d, "b", "1", 0);
  MDB_txn *c = tu_begin(fx, p, 0);
  tu_assert_rc(mdb_drop(c, d, 1), 0);
  mdb_txn_abort(c);
  tu_put(p, tu_dbi_in(p, NULL, 0), "m", "1", 0);
  tu_put(p, d, "c", "1", 0); /* through the stale handle: LMDB accepts it here */
  tu_assert_rc(mdb_txn_commit(p), MDB_BAD_DBI);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- failed calls -------------------------------------------------------- */

static void test_fail_keyexist_nooverwrite(void **state) {
  FX;
  static const char *const kv[] = {"k", "old"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  MDB_val k = tu_str("k"), v = tu_str("new");
  tu_assert_rc(mdb_put(t, d, &k, &v, MDB_NOOVERWRITE), MDB_KEYEXIST);
  /* LMDB returns the existing value in data. */
  assert_int_equal(v.mv_size, 3);
  assert_memory_equal(v.mv_data, "old", 3);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  k = tu_str("k");
  v = tu_str("new");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_NOOVERWRITE), MDB_KEYEXIST);
  mdb_cursor_close(c);
  tu_commit(t);
  check_value(fx, NULL, "k", "old");
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_fail_keyexist_nodupdata(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "dups", 0);
  MDB_val k = tu_str("k"), v = tu_str("1");
  tu_assert_rc(mdb_put(t, d, &k, &v, MDB_NODUPDATA), MDB_KEYEXIST);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  k = tu_str("k");
  v = tu_str("1");
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_NODUPDATA), MDB_KEYEXIST);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_fail_keyexist_append_out_of_order(void **state) {
  FX;
  static const char *const kv[] = {"m", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("a"), v = tu_str("1");
  tu_assert_rc(mdb_put(t, main_dbi(t), &k, &v, MDB_APPEND), MDB_KEYEXIST);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_fail_notfound_del(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, "dups", MDB_CREATE | MDB_DUPSORT, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("nope");
  tu_assert_rc(mdb_del(t, main_dbi(t), &k, NULL), MDB_NOTFOUND);
  MDB_dbi d = tu_dbi_in(t, "dups", 0);
  k = tu_str("nope");
  tu_assert_rc(mdb_del(t, d, &k, NULL), MDB_NOTFOUND);
  k = tu_str("k");
  MDB_val v = tu_str("2"); /* the key exists, this duplicate does not */
  tu_assert_rc(mdb_del(t, d, &k, &v), MDB_NOTFOUND);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_fail_eacces_readonly_txn(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d = main_dbi(t);
  MDB_val k = tu_str("k"), v = tu_str("2");
  tu_assert_rc(mdb_put(t, d, &k, &v, 0), EACCES);
  k = tu_str("k");
  tu_assert_rc(mdb_del(t, d, &k, NULL), EACCES);
  tu_assert_rc(mdb_drop(t, d, 0), EACCES);
  MDB_dbi nd;
  tu_assert_rc(mdb_dbi_open(t, "newdb", MDB_CREATE, &nd), EACCES);
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  tu_assert_rc(mdb_cursor_get(c, &k, &v, MDB_FIRST), 0);
  MDB_val k2 = tu_str("k2"), v2 = tu_str("v");
  tu_assert_rc(mdb_cursor_put(c, &k2, &v2, 0), EACCES);
  tu_assert_rc(mdb_cursor_del(c, 0), EACCES);
  mdb_cursor_close(c);
  mdb_txn_abort(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_fail_einval(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  MDB_val k = tu_str("x"), v = tu_str("1");
  tu_assert_rc(mdb_put(t, 77, &k, &v, 0), EINVAL); /* no such handle */
  tu_assert_rc(mdb_del(t, 77, &k, NULL), EINVAL);
  tu_assert_rc(mdb_drop(t, d, 2), EINVAL); /* del must be 0 or 1 */
  MDB_cursor *c;
  tu_assert_rc(mdb_cursor_open(t, d, &c), 0);
  /* An unpositioned cursor has no current item. */
  tu_assert_rc(mdb_cursor_put(c, &k, &v, MDB_CURRENT), EINVAL);
  tu_assert_rc(mdb_cursor_del(c, 0), EINVAL);
  mdb_cursor_close(c);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_fail_bad_valsize_empty_key(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_val k = {0, ""}, v = tu_str("1");
  tu_assert_rc(mdb_put(t, main_dbi(t), &k, &v, 0), MDB_BAD_VALSIZE);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_failed_calls_mixed_with_successful(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  MDB_val k = tu_str("k"), v = tu_str("2");
  tu_assert_rc(mdb_put(t, d, &k, &v, MDB_NOOVERWRITE), MDB_KEYEXIST);
  tu_put(t, d, "ok", "1", 0);
  k = tu_str("missing");
  tu_assert_rc(mdb_del(t, d, &k, NULL), MDB_NOTFOUND);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "ok", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- transactions -------------------------------------------------------- */

static void test_abort_top_level_leaves_nothing(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  tu_put(t, d, "a", "1", 0);
  MDB_val k = tu_str("k");
  tu_assert_rc(mdb_del(t, d, &k, NULL), 0);
  MDB_dbi nd = tu_dbi_in(t, "newdb", MDB_CREATE);
  tu_put(t, nd, "x", "1", 0);
  mdb_txn_abort(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_abort_then_commit_has_only_second_txn(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_put(t, main_dbi(t), "aborted", "1", 0);
  mdb_txn_abort(t);
  t = tu_begin(fx, NULL, 0);
  tu_put(t, main_dbi(t), "committed", "1", 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "committed", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_abort(void **state) {
  FX;
  static const char *const kv[] = {"both", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(p);
  tu_put(p, d, "parent", "1", 0);
  tu_put(p, d, "both", "2", 0);
  MDB_txn *c = tu_begin(fx, p, 0);
  tu_put(c, d, "child", "1", 0);
  MDB_val k = tu_str("both");
  tu_assert_rc(mdb_del(c, d, &k, NULL), 0); /* the child deletes what the parent put */
  mdb_txn_abort(c);
  tu_commit(p);
  check_value(fx, NULL, "both", "2");
  check_value(fx, NULL, "child", NULL);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "parent", TU_OP_PUT), TU_X("", "both", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  assert_null(tu_find(&s1.time, "", "child", 5));
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_commit_parent_commit(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(p);
  tu_put(p, d, "parent", "1", 0);
  MDB_txn *c = tu_begin(fx, p, 0);
  tu_put(c, d, "child", "1", 0);
  MDB_dbi nd = tu_dbi_in(c, "childdb", MDB_CREATE);
  tu_put(c, nd, "x", "1", 0);
  tu_commit(c);
  tu_put(p, d, "after", "1", 0);
  tu_commit(p);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "parent", TU_OP_PUT), TU_X("", "child", TU_OP_PUT),
                   TU_X("", "after", TU_OP_PUT), TU_MARKER("childdb", TU_OP_PUT),
                   TU_X("childdb", "x", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 5);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_commit_parent_abort(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(p);
  tu_put(p, d, "parent", "1", 0);
  MDB_txn *c = tu_begin(fx, p, 0);
  tu_put(c, d, "child", "1", 0);
  tu_commit(c);
  mdb_txn_abort(p);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_child_last_op_wins(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "j", "1"};
  seed(fx, NULL, 0, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(p);
  tu_put(p, d, "k", "2", 0);
  MDB_val k = tu_str("j");
  tu_assert_rc(mdb_del(p, d, &k, NULL), 0);
  MDB_txn *c = tu_begin(fx, p, 0);
  k = tu_str("k");
  tu_assert_rc(mdb_del(c, d, &k, NULL), 0);
  tu_put(c, d, "j", "again", 0);
  tu_commit(c);
  tu_commit(p);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "k", TU_OP_DEL), TU_X("", "j", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_nested_grandchild(void **state) {
  FX;
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *p = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(p);
  MDB_txn *c = tu_begin(fx, p, 0);
  tu_put(c, d, "c", "1", 0);
  MDB_txn *g = tu_begin(fx, c, 0);
  tu_put(g, d, "g-aborted", "1", 0);
  mdb_txn_abort(g);
  g = tu_begin(fx, c, 0);
  tu_put(g, d, "g", "1", 0);
  tu_commit(g);
  tu_commit(c);
  tu_commit(p);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "c", TU_OP_PUT), TU_X("", "g", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_same_txn_last_op_wins(void **state) {
  FX;
  static const char *const kv[] = {"k", "1", "j", "1"};
  seed(fx, NULL, 0, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  tu_put(t, d, "k", "2", 0);
  MDB_val k = tu_str("k");
  tu_assert_rc(mdb_del(t, d, &k, NULL), 0); /* put then delete: delete */
  k = tu_str("j");
  tu_assert_rc(mdb_del(t, d, &k, NULL), 0);
  tu_put(t, d, "j", "2", 0); /* delete then put: put */
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect e[] = {TU_X("", "k", TU_OP_DEL), TU_X("", "j", TU_OP_PUT)};
  tu_expect_stamps(&s0, &s1, e, 2);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_txn_reset_renew_readonly_writes_nothing(void **state) {
  FX;
  static const char *const kv[] = {"k", "1"};
  seed(fx, NULL, 0, kv, 2);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  MDB_dbi d = main_dbi(t);
  MDB_val k = tu_str("k"), v;
  tu_assert_rc(mdb_get(t, d, &k, &v), 0);
  mdb_txn_reset(t);
  tu_assert_rc(mdb_txn_renew(t), 0);
  k = tu_str("k");
  tu_assert_rc(mdb_get(t, d, &k, &v), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

/* ---- large transactions (the shim may flush its pending set early) ------- */

enum { kLargeN = 270000 }; /* more than 2^18 records */

static void large_txn(tu_fx *fx, MDB_txn *t) {
  MDB_dbi d = main_dbi(t);
  char key[16];
  for (int i = 0; i < kLargeN; ++i) {
    snprintf(key, sizeof key, "L%07d", (int)(((unsigned)i * 7919u) % kLargeN));
    tu_put(t, d, key, "v", 0);
  }
  (void)fx;
}

static void test_large_txn_commit(void **state) {
  FX;
  tu_close(fx);
  fx->mapsize = (size_t)1 << 30;
  tu_open(fx, 0);
  static const char *const kv[] = {"L0000000", "old", "zdel", "1"};
  seed(fx, NULL, 0, kv, 4);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  large_txn(fx, t);
  /* After the bulk: re-put one key, delete another; the last op wins. */
  MDB_dbi d = main_dbi(t);
  tu_put(t, d, "L0000001", "again", 0);
  MDB_val k = tu_str("zdel");
  tu_assert_rc(mdb_del(t, d, &k, NULL), 0);
  tu_commit(t);
  tu_snap_take(fx, &s1);
  tu_expect *e = calloc(kLargeN + 1, sizeof *e);
  static char keys[kLargeN][10];
  for (int i = 0; i < kLargeN; ++i) {
    snprintf(keys[i], sizeof keys[i], "L%07d", i);
    e[i] = (tu_expect){"", keys[i], 8, TU_OP_PUT};
  }
  e[kLargeN] = (tu_expect){"", "zdel", 4, TU_OP_DEL};
  tu_expect_stamps(&s0, &s1, e, kLargeN + 1);
  free(e);
#ifndef TU_BASELINE
  assert_int_equal(s1.time.n, kLargeN + 1);
  assert_true(s1.clock >= tu_max_time(&s1.time));
#endif
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_large_txn_abort(void **state) {
  FX;
  tu_close(fx);
  fx->mapsize = (size_t)1 << 30;
  tu_open(fx, 0);
  tu_snap s0, s1;
  tu_snap_take(fx, &s0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  large_txn(fx, t);
  mdb_txn_abort(t);
  int last_rc = MDB_NOTFOUND;
#ifndef TU_BASELINE
  unsigned char ts[TRLMDB_TS_SIZE];
  last_rc = trlmdb_last_commit_ts(fx->env, ts);
#endif
  tu_snap_take(fx, &s1);
  tu_expect_unchanged(&s0, &s1);
  /* Nothing was committed by this process, even if the shim wrote part of
   * the bookkeeping early inside the aborted transaction. */
  if (last_rc != MDB_NOTFOUND)
    fail_msg(
        "trlmdb_last_commit_ts after aborting the only write txn returned %d (%s), expected "
        "MDB_NOTFOUND",
        last_rc, mdb_strerror(last_rc));
  tu_snap_free(&s0);
  tu_snap_free(&s1);
}

static void test_large_txn_then_child_abort(void **state) {
  FX;
  tu_close(fx);
  fx->mapsize = (size_t)1 << 30;
  tu_open(fx, 0);
  MDB_txn *t = tu_begin(fx, NULL, 0);
  large_txn(fx, t);
  MDB_txn *c = tu_begin(fx, t, 0);
  MDB_dbi d = main_dbi(c);
  tu_put(c, d, "child", "1", 0);
  MDB_val k = tu_str("L0000005");
  tu_assert_rc(mdb_del(c, d, &k, NULL), 0);
  mdb_txn_abort(c);
  tu_commit(t);
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
#ifndef TU_BASELINE
  assert_int_equal(s.time.n, kLargeN);
  assert_null(tu_find(&s.time, "", "child", 5));
  const tu_entry *e = tu_find(&s.time, "", "L0000005", 8);
  assert_non_null(e);
  assert_int_equal(e->ts[11], TU_OP_PUT);
#endif
  tu_snap_free(&s);
}

/* ---- format details ------------------------------------------------------ */

static void test_ts_format_and_node_word(void **state) {
  FX;
  SHIM_ONLY();
  tu_put_commit(fx, NULL, 0, "k", "v");
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
  const tu_entry *e = tu_find(&s.time, "", "k", 1);
  assert_non_null(e);
  assert_int_equal(e->xlen, 2); /* "\0k" */
  assert_memory_equal(e->xkey, "\0k", 2);
  /* Seconds since 1970, big-endian: close to now. */
  uint32_t secs = (uint32_t)(tu_ts_time(e->ts) >> 32);
  time_t now = time(NULL);
  assert_true(secs + 10 >= (uint32_t)now && secs <= (uint32_t)now + 10);
  /* Node word: upper 24 bits are the meta node word, LSB 0x01 for a put. */
  assert_int_equal(tu_ts_node(e->ts) & ~0xffu, s.node);
  assert_int_equal(e->ts[11], 0x01);
  assert_int_equal(s.node_size, 4);
  assert_int_equal(s.clock_size, 8);
  /* The node word is stable across a reopen. */
  tu_put_commit(fx, NULL, 0, "k2", "v");
  tu_snap s2;
  tu_snap_take(fx, &s2);
  assert_int_equal(s2.node, s.node);
  tu_snap_free(&s);
  tu_snap_free(&s2);
}

static void test_distinct_ts_within_txn(void **state) {
  /* DESIGN.md section 2: every ts a node issues is greater than every ts it
   * issued before, so the keys of one transaction get distinct times. */
  FX;
  SHIM_ONLY();
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  char key[16];
  for (int i = 0; i < 50; ++i) {
    snprintf(key, sizeof key, "k%02d", i);
    tu_put(t, d, key, "v", 0);
  }
  tu_commit(t);
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
  assert_int_equal(s.time.n, 50);
  for (size_t i = 0; i < s.time.n; ++i)
    for (size_t j = i + 1; j < s.time.n; ++j)
      if (tu_ts_time(s.time.v[i].ts) == tu_ts_time(s.time.v[j].ts))
        fail_msg("%s and %s have the same time", tu_xkey_str(s.time.v[i].xkey, s.time.v[i].xlen),
                 tu_xkey_str(s.time.v[j].xkey, s.time.v[j].xlen));
  tu_snap_free(&s);
}

static void test_recent_equals_time_after_workload(void **state) {
  FX;
  SHIM_ONLY();
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi m = main_dbi(t), d = tu_dbi_in(t, "dups", MDB_CREATE | MDB_DUPSORT);
  for (int i = 0; i < 20; ++i) {
    char key[8];
    snprintf(key, sizeof key, "k%d", i);
    tu_put(t, m, key, "v", 0);
    tu_put(t, d, key, "1", 0);
    tu_put(t, d, key, "2", 0);
  }
  tu_commit(t);
  t = tu_begin(fx, NULL, 0);
  m = main_dbi(t);
  d = tu_dbi_in(t, "dups", 0);
  for (int i = 0; i < 20; i += 3) {
    char key[8];
    snprintf(key, sizeof key, "k%d", i);
    MDB_val k = tu_str(key), v = tu_str("1");
    tu_assert_rc(mdb_del(t, m, &k, NULL), 0);
    tu_assert_rc(mdb_del(t, d, &k, &v), 0);
  }
  tu_commit(t);
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s); /* includes _trlmdb_recent == _trlmdb_time */
  assert_int_equal(s.recent.n, s.time.n);
  assert_int_equal(s.time.n, 1 + 20 + 20); /* marker, main keys, dups keys */
  tu_snap_free(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, tu_setup, tu_teardown)
      T(test_put_main_db),
      T(test_put_same_value_restamps),
      T(test_put_binary_keys_named_and_integerkey),
      T(test_put_nooverwrite),
      T(test_put_nodupdata),
      T(test_put_dupsort_new_dup_restamps_key),
      T(test_put_reserve),
      T(test_put_append),
      T(test_put_appenddup),
      T(test_put_many_keys_one_txn),
      T(test_cursor_put_plain),
      T(test_cursor_put_current),
      T(test_cursor_put_current_dupfixed),
      T(test_cursor_put_nodupdata),
      T(test_cursor_put_multiple_dupfixed),
      T(test_cursor_put_append_and_reserve),
      T(test_cursor_put_appenddup),
      T(test_del_without_data),
      T(test_del_with_data_not_dupsort),
      T(test_del_dupsort_one_then_last),
      T(test_del_dupsort_both_dups_same_txn),
      T(test_del_dupsort_without_data),
      T(test_cursor_del_plain),
      T(test_cursor_del_dupsort_one_then_nodupdata),
      T(test_cursor_del_last_dup_with_flag_zero),
      T(test_cursor_del_walk_deletes_everything),
      T(test_create_named_db_writes_marker),
      T(test_create_named_db_with_puts_same_txn),
      T(test_create_named_db_aborted_leaves_no_marker),
      T(test_drop_empty_named),
      T(test_drop_delete_named),
      T(test_drop_after_puts_in_same_txn),
      T(test_drop_empty_main),
      T(test_drop_and_recreate_same_txn),
      T(test_nested_child_drop_abort),
      T(test_nested_child_drop_commit),
      T(test_nested_child_drop_delete_abort_bad_dbi),
      T(test_fail_keyexist_nooverwrite),
      T(test_fail_keyexist_nodupdata),
      T(test_fail_keyexist_append_out_of_order),
      T(test_fail_notfound_del),
      T(test_fail_eacces_readonly_txn),
      T(test_fail_einval),
      T(test_fail_bad_valsize_empty_key),
      T(test_failed_calls_mixed_with_successful),
      T(test_abort_top_level_leaves_nothing),
      T(test_abort_then_commit_has_only_second_txn),
      T(test_nested_child_abort),
      T(test_nested_child_commit_parent_commit),
      T(test_nested_child_commit_parent_abort),
      T(test_nested_child_last_op_wins),
      T(test_nested_grandchild),
      T(test_same_txn_last_op_wins),
      T(test_txn_reset_renew_readonly_writes_nothing),
      T(test_large_txn_commit),
      T(test_large_txn_abort),
      T(test_large_txn_then_child_abort),
      T(test_ts_format_and_node_word),
      T(test_distinct_ts_within_txn),
      T(test_recent_equals_time_after_workload),
#undef T
  };
  return cmocka_run_group_tests_name("trlmdb ABI bookkeeping", tests, NULL, NULL);
}
