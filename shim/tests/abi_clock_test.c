/* cmocka tests of the shim's hybrid logical clock (DESIGN.md section 2: every
 * ts a node issues is greater than every ts it issued or received before, per
 * environment, across restarts, also when the wall clock steps back) and of
 * the trlmdb_* extension API of include/trlmdb.h.
 *
 * The wall clock is shifted with the test-only environment variable
 * TRLMDB_TEST_CLOCK_SHIFT_MS (signed milliseconds, read at mdb_env_open).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <trlmdb.h>
#include <unistd.h>

#include "abi_testutil.h"

#define FX tu_fx *fx = *state

static MDB_dbi main_dbi(MDB_txn *t) { return tu_dbi_in(t, NULL, 0); }

static void set_shift_ms(long long ms) {
  char buf[32];
  snprintf(buf, sizeof buf, "%lld", ms);
  setenv("TRLMDB_TEST_CLOCK_SHIFT_MS", buf, 1);
}

/* The time (seconds<<32|fraction) of the stamp of main-DB key `key`. */
static uint64_t stamp_time(tu_fx *fx, const char *key) {
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
  const tu_entry *e = tu_find(&s.time, "", key, strlen(key));
  if (!e) fail_msg("no stamp for main key \"%s\"", key);
  uint64_t t = tu_ts_time(e->ts);
  tu_snap_free(&s);
  return t;
}

static int64_t secs_of(uint64_t t) { return (int64_t)(t >> 32); }

/* ---- the clock ----------------------------------------------------------- */

static void test_clock_strictly_increasing_many_txns(void **state) {
  FX;
  tu_open(fx, 0);
  enum { N = 300 };
  unsigned char prev[TRLMDB_TS_SIZE] = {0}, ts[TRLMDB_TS_SIZE];
  char key[16];
  for (int i = 0; i < N; ++i) {
    MDB_txn *t = tu_begin(fx, NULL, 0);
    MDB_dbi d = main_dbi(t);
    snprintf(key, sizeof key, "k%04d", i);
    tu_put(t, d, key, "v", 0);
    tu_put(t, d, "same", key, 0);
    tu_commit(t);
    tu_assert_rc(trlmdb_last_commit_ts(fx->env, ts), 0);
    if (memcmp(ts, prev, sizeof ts) <= 0) fail_msg("txn %d: last commit ts did not increase", i);
    memcpy(prev, ts, sizeof ts);
  }
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
  uint64_t last = 0;
  for (int i = 0; i < N; ++i) {
    snprintf(key, sizeof key, "k%04d", i);
    const tu_entry *e = tu_find(&s.time, "", key, strlen(key));
    assert_non_null(e);
    if (tu_ts_time(e->ts) <= last)
      fail_msg("stamp of %s is not newer than the previous txn's", key);
    last = tu_ts_time(e->ts);
  }
  const tu_entry *same = tu_find(&s.time, "", "same", 4);
  assert_non_null(same);
  assert_true(tu_ts_time(same->ts) > last); /* written after k0299 in the last txn */
  tu_snap_free(&s);
}

static void test_clock_across_reopen(void **state) {
  FX;
  uint64_t prev = 0;
  for (int i = 0; i < 5; ++i) {
    char key[8];
    snprintf(key, sizeof key, "r%d", i);
    tu_open(fx, 0);
    tu_put_commit(fx, NULL, 0, key, "v");
    tu_close(fx);
    uint64_t t = stamp_time(fx, key);
    if (t <= prev) fail_msg("after reopen %d: stamp not newer", i);
    prev = t;
  }
}

static void test_clock_close_to_wall_clock(void **state) {
  FX;
  set_shift_ms(0);
  tu_open(fx, 0);
  time_t before = time(NULL);
  tu_put_commit(fx, NULL, 0, "k", "v");
  time_t after = time(NULL);
  tu_close(fx);
  int64_t s = secs_of(stamp_time(fx, "k"));
  if (s < before - 1 || s > after + 1)
    fail_msg("ts seconds %lld not within [%lld, %lld]", (long long)s, (long long)before,
             (long long)after);
}

static void test_clock_shift_knob_is_honoured(void **state) {
  /* Without this, the step-back tests below would prove nothing. */
  FX;
  set_shift_ms(-3600000);
  tu_open(fx, 0);
  time_t now = time(NULL);
  tu_put_commit(fx, NULL, 0, "k", "v");
  tu_close(fx);
  int64_t s = secs_of(stamp_time(fx, "k"));
  if (s < now - 3600 - 5 || s > now - 3600 + 5)
    fail_msg(
        "with TRLMDB_TEST_CLOCK_SHIFT_MS=-3600000 the ts is %lld s from now, expected about -3600",
        (long long)(s - now));
}

static void test_clock_shift_forward_is_honoured(void **state) {
  FX;
  set_shift_ms(7200000);
  tu_open(fx, 0);
  time_t now = time(NULL);
  tu_put_commit(fx, NULL, 0, "k", "v");
  tu_close(fx);
  int64_t s = secs_of(stamp_time(fx, "k"));
  if (s < now + 7200 - 5 || s > now + 7200 + 5)
    fail_msg(
        "with TRLMDB_TEST_CLOCK_SHIFT_MS=7200000 the ts is %lld s from now, expected about +7200",
        (long long)(s - now));
}

static void test_clock_wall_steps_back(void **state) {
  FX;
  set_shift_ms(0);
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "a", "v");
  tu_close(fx);
  uint64_t ta = stamp_time(fx, "a");

  set_shift_ms(-3600000); /* the wall clock stepped back an hour */
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "b", "v");
  tu_close(fx);
  uint64_t tb = stamp_time(fx, "b");
  if (tb <= ta) fail_msg("after the wall clock stepped back, the new ts is not greater");
  /* ... and as close to the (old) wall clock as that allows: not an hour off. */
  assert_true(secs_of(tb) - secs_of(ta) <= 5);

  set_shift_ms(-7200000);
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "c", "v");
  tu_put_commit(fx, NULL, 0, "d", "v");
  tu_close(fx);
  uint64_t tc = stamp_time(fx, "c"), td = stamp_time(fx, "d");
  assert_true(tc > tb);
  assert_true(td > tc);
}

static void test_clock_future_then_present(void **state) {
  FX;
  set_shift_ms(3600000); /* a node whose clock ran an hour ahead */
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "future", "v");
  tu_close(fx);
  uint64_t tf = stamp_time(fx, "future");
  set_shift_ms(0);
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "present", "v");
  tu_close(fx);
  uint64_t tp = stamp_time(fx, "present");
  if (tp <= tf) fail_msg("a write after the clock was corrected is not newer than the future one");
}

/* Run by run_writer_process(): this program re-executed as a separate writer
 * process that puts main-DB `key` into the environment `dir` with its wall
 * clock shifted by `shift_ms`. */
static int child_write_main(const char *dir, const char *key, const char *shift_ms) {
  setenv("TRLMDB_TEST_CLOCK_SHIFT_MS", shift_ms, 1);
  MDB_env *env;
  MDB_txn *t;
  MDB_dbi d;
  int rc = mdb_env_create(&env);
  if (!rc) rc = mdb_env_set_maxdbs(env, 4);
  if (!rc) rc = mdb_env_open(env, dir, 0, 0644);
  if (!rc) rc = mdb_txn_begin(env, NULL, 0, &t);
  if (!rc) rc = mdb_dbi_open(t, NULL, 0, &d);
  MDB_val k = tu_str(key), v = tu_str("v");
  if (!rc) rc = mdb_put(t, d, &k, &v, 0);
  if (!rc) rc = mdb_txn_commit(t);
  mdb_env_close(env);
  if (rc) fprintf(stderr, "child writer: %s\n", mdb_strerror(rc));
  return rc ? 3 : 0;
}

static void run_writer_process(const char *dir, const char *key, long long shift_ms) {
  char shift[32];
  snprintf(shift, sizeof shift, "%lld", shift_ms);
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    execl("/proc/self/exe", "abi_clock_test", "--child-write", dir, key, shift, (char *)NULL);
    _exit(127);
  }
  int status = 0;
  assert_int_equal(waitpid(pid, &status, 0), pid);
  assert_true(WIFEXITED(status));
  assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_clock_other_process_writes_while_open(void **state) {
  /* Another process (clock an hour ahead) writes while this process has the
   * environment open: our next stamp must still be greater, so the persisted
   * high-water mark has to be read at each write, not only at open. */
  FX;
  set_shift_ms(0);
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "p1", "v");
  run_writer_process(fx->dir, "child", 3600000);
  tu_put_commit(fx, NULL, 0, "p2", "v");
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s);
  const tu_entry *c = tu_find(&s.time, "", "child", 5), *p1 = tu_find(&s.time, "", "p1", 2),
                 *p2 = tu_find(&s.time, "", "p2", 2);
  assert_non_null(c);
  assert_non_null(p1);
  assert_non_null(p2);
  assert_true(memcmp(c->ts, p1->ts, TU_TS_SIZE) > 0);
  if (memcmp(p2->ts, c->ts, TU_TS_SIZE) <= 0)
    fail_msg("p2 (%lld s) is not newer than the other process's write (%lld s)",
             (long long)secs_of(tu_ts_time(p2->ts)), (long long)secs_of(tu_ts_time(c->ts)));
  tu_snap_free(&s);
}

static void test_clock_step_back_across_processes(void **state) {
  /* The high-water mark must be persisted in the environment: a process that
   * never saw the earlier stamps in memory still issues greater ones. */
  FX;
  run_writer_process(fx->dir, "child", 3600000);
  uint64_t tchild = stamp_time(fx, "child");
  set_shift_ms(0);
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "parent", "v");
  tu_close(fx);
  uint64_t tparent = stamp_time(fx, "parent");
  if (tparent <= tchild)
    fail_msg(
        "the parent's ts (%lld s) is not greater than the child's (%lld s, clock an hour ahead)",
        (long long)secs_of(tparent), (long long)secs_of(tchild));
}

static void test_clock_meta_high_water_persisted(void **state) {
  FX;
  set_shift_ms(3600000);
  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "k", "v");
  tu_close(fx);
  tu_snap s;
  tu_snap_take(fx, &s);
  tu_expect_consistent(&s); /* includes: meta clock >= every issued time */
  assert_true(s.has_clock);
  assert_int_equal(s.clock_size, 8);
  const tu_entry *e = tu_find(&s.time, "", "k", 1);
  assert_non_null(e);
  assert_true(s.clock >= tu_ts_time(e->ts));
  tu_snap_free(&s);
}

/* ---- trlmdb.h ------------------------------------------------------------ */

static void test_trlmdb_version(void **state) {
  (void)state;
  int maj = -1, min = -1, pat = -1;
  const char *v = trlmdb_version(&maj, &min, &pat);
  assert_non_null(v);
  assert_int_equal(maj, TRLMDB_TEST_VERSION_MAJOR);
  assert_int_equal(min, TRLMDB_TEST_VERSION_MINOR);
  assert_int_equal(pat, TRLMDB_TEST_VERSION_PATCH);
  char want[64];
  snprintf(want, sizeof want, "trlmdb %d.%d.%d", TRLMDB_TEST_VERSION_MAJOR,
           TRLMDB_TEST_VERSION_MINOR, TRLMDB_TEST_VERSION_PATCH);
  if (strncmp(v, want, strlen(want)) != 0)
    fail_msg("trlmdb_version() = \"%s\", expected \"%s...\"", v, want);
  /* NULL outputs are allowed, and the string is static. */
  assert_ptr_equal(trlmdb_version(NULL, NULL, NULL), v);
  /* mdb_version() still reports LMDB's own version. */
  int lmaj, lmin, lpat;
  const char *lv = mdb_version(&lmaj, &lmin, &lpat);
  assert_int_equal(lmaj, MDB_VERSION_MAJOR);
  assert_int_equal(lmin, MDB_VERSION_MINOR);
  assert_int_equal(lpat, MDB_VERSION_PATCH);
  assert_string_equal(lv, MDB_VERSION_STRING);
}

static void test_trlmdb_last_commit_ts(void **state) {
  FX;
  tu_open(fx, 0);
  unsigned char ts[TRLMDB_TS_SIZE];
  tu_assert_rc(trlmdb_last_commit_ts(NULL, ts), EINVAL);
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, NULL), EINVAL);
  /* Nothing committed yet by this process. */
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, ts), MDB_NOTFOUND);
  /* Aborted, read-only and failed-only transactions are not changes. */
  MDB_txn *t = tu_begin(fx, NULL, 0);
  tu_put(t, main_dbi(t), "aborted", "v", 0);
  mdb_txn_abort(t);
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, ts), MDB_NOTFOUND);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  main_dbi(t);
  tu_commit(t);
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, ts), MDB_NOTFOUND);
  t = tu_begin(fx, NULL, 0);
  MDB_val k = tu_str("missing");
  tu_assert_rc(mdb_del(t, main_dbi(t), &k, NULL), MDB_NOTFOUND);
  tu_commit(t);
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, ts), MDB_NOTFOUND);

  /* One change: the ts is that change's stamp, byte for byte. */
  tu_put_commit(fx, NULL, 0, "one", "v");
  unsigned char one[TRLMDB_TS_SIZE];
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, one), 0);
  assert_int_equal(one[11], TU_OP_PUT);
  /* A read-only txn afterwards does not change it. */
  t = tu_begin(fx, NULL, MDB_RDONLY);
  mdb_txn_abort(t);
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, ts), 0);
  assert_memory_equal(ts, one, TRLMDB_TS_SIZE);

  /* A deletion: the ts carries the delete op byte. */
  t = tu_begin(fx, NULL, 0);
  k = tu_str("one");
  tu_assert_rc(mdb_del(t, main_dbi(t), &k, NULL), 0);
  tu_commit(t);
  unsigned char del[TRLMDB_TS_SIZE];
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, del), 0);
  assert_true(memcmp(del, one, TRLMDB_TS_SIZE) > 0);

  /* Several changes: the newest of them. */
  t = tu_begin(fx, NULL, 0);
  MDB_dbi d = main_dbi(t);
  tu_put(t, d, "x", "v", 0);
  tu_put(t, d, "y", "v", 0);
  tu_put(t, d, "a", "v", 0);
  tu_commit(t);
  unsigned char multi[TRLMDB_TS_SIZE];
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, multi), 0);

  tu_snap s;
  tu_snap_take(fx, &s); /* reopens fx->env: check against what is stored */
  tu_expect_consistent(&s);
  const tu_entry *e1 = tu_find(&s.time, "", "one", 3);
  assert_non_null(e1);
  assert_memory_equal(e1->ts, del, TRLMDB_TS_SIZE);
  assert_int_equal(del[11], TU_OP_DEL);
  const unsigned char *newest = NULL;
  static const char *const keys[] = {"x", "y", "a"};
  for (int i = 0; i < 3; ++i) {
    const tu_entry *e = tu_find(&s.time, "", keys[i], 1);
    assert_non_null(e);
    if (!newest || memcmp(e->ts, newest, TRLMDB_TS_SIZE) > 0) newest = e->ts;
  }
  assert_memory_equal(multi, newest, TRLMDB_TS_SIZE);
  tu_snap_free(&s);
}

static void test_trlmdb_key_ts(void **state) {
  FX;
  tu_open(fx, 0);
  unsigned char ts[TRLMDB_TS_SIZE];
  MDB_val k = tu_str("k");
  /* Before anything was ever written: no stamps, and NULL arguments. */
  MDB_txn *t = tu_begin(fx, NULL, MDB_RDONLY);
  tu_assert_rc(trlmdb_key_ts(t, main_dbi(t), &k, ts), MDB_NOTFOUND);
  tu_assert_rc(trlmdb_key_ts(NULL, 1, &k, ts), EINVAL);
  tu_assert_rc(trlmdb_key_ts(t, main_dbi(t), NULL, ts), EINVAL);
  tu_assert_rc(trlmdb_key_ts(t, main_dbi(t), &k, NULL), EINVAL);
  mdb_txn_abort(t);

  tu_put_commit(fx, NULL, 0, "k", "v1");
  unsigned char put1[TRLMDB_TS_SIZE], last[TRLMDB_TS_SIZE];
  tu_assert_rc(trlmdb_last_commit_ts(fx->env, last), 0);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  tu_assert_rc(trlmdb_key_ts(t, main_dbi(t), &k, put1), 0);
  assert_memory_equal(put1, last, TRLMDB_TS_SIZE);
  assert_int_equal(put1[11], TU_OP_PUT);
  MDB_val other = tu_str("other");
  tu_assert_rc(trlmdb_key_ts(t, main_dbi(t), &other, ts), MDB_NOTFOUND);
  mdb_txn_abort(t);

  /* Named database: its marker (empty key) and its keys; a delete leaves a
   * tombstone stamp; in a write txn the txn's own change is not stamped yet. */
  tu_put_commit(fx, "named", MDB_CREATE, "a", "x");
  t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, "named", 0);
  MDB_val a = tu_str("a"), empty = {0, NULL};
  unsigned char before[TRLMDB_TS_SIZE], marker[TRLMDB_TS_SIZE];
  tu_assert_rc(trlmdb_key_ts(t, d, &a, before), 0);
  tu_assert_rc(trlmdb_key_ts(t, d, &empty, marker), 0);
  assert_int_equal(marker[11], TU_OP_PUT);
  tu_assert_rc(mdb_del(t, d, &a, NULL), 0);
  tu_assert_rc(trlmdb_key_ts(t, d, &a, ts), 0);
  assert_memory_equal(ts, before, TRLMDB_TS_SIZE);
  tu_commit(t);
  t = tu_begin(fx, NULL, MDB_RDONLY);
  d = tu_dbi_in(t, "named", 0);
  tu_assert_rc(trlmdb_key_ts(t, d, &a, ts), 0);
  assert_int_equal(ts[11], TU_OP_DEL);
  assert_true(memcmp(ts, before, TRLMDB_TS_SIZE) > 0);
  mdb_txn_abort(t);

  /* What it returns is what _trlmdb_time holds. */
  tu_snap s;
  tu_snap_take(fx, &s);
  const tu_entry *e = tu_find(&s.time, "named", "a", 1);
  assert_non_null(e);
  assert_memory_equal(e->ts, ts, TRLMDB_TS_SIZE);
  tu_snap_free(&s);
}

static void test_trlmdb_env_node(void **state) {
  FX;
  uint32_t node = 0;
  tu_assert_rc(trlmdb_env_node(NULL, &node), EINVAL);
  /* Created but not opened: EINVAL. */
  MDB_env *env;
  tu_assert_rc(mdb_env_create(&env), 0);
  tu_assert_rc(trlmdb_env_node(env, &node), EINVAL);
  mdb_env_close(env);

  tu_open(fx, 0);
  tu_put_commit(fx, NULL, 0, "k", "v");
  tu_assert_rc(trlmdb_env_node(fx->env, &node), 0);
  assert_int_equal(node & 0xff, 0);
  assert_true(node != 0);
  tu_snap s;
  tu_snap_take(fx, &s); /* reopens under the shim */
  tu_expect_consistent(&s);
  assert_int_equal(node, s.node);
  tu_snap_free(&s);
  /* trlmdb.h: only a NULL env or one not open read-write gives EINVAL, so
   * right after reopening (no write txn yet) the stored node word is known. */
  uint32_t again = 0;
  tu_assert_rc(trlmdb_env_node(fx->env, &again), 0);
  assert_int_equal(again, node);
  /* Read-only environments have no node word of their own. */
  tu_close(fx);
  tu_open(fx, MDB_RDONLY);
  tu_assert_rc(trlmdb_env_node(fx->env, &node), EINVAL);
}

static void test_node_word_differs_between_envs(void **state) {
  FX;
  tu_open(fx, 0);
  tu_fx *other = tu_fx_new();
  tu_open(other, 0);
  /* A write first: the shim may create the node word lazily. */
  tu_put_commit(fx, NULL, 0, "k", "v");
  tu_put_commit(other, NULL, 0, "k", "v");
  uint32_t n1 = 0, n2 = 0;
  tu_assert_rc(trlmdb_env_node(fx->env, &n1), 0);
  tu_assert_rc(trlmdb_env_node(other->env, &n2), 0);
  assert_true(n1 != n2);
  tu_fx_free(other);
}

int main(int argc, char **argv) {
  if (argc == 5 && strcmp(argv[1], "--child-write") == 0)
    return child_write_main(argv[2], argv[3], argv[4]);
  const struct CMUnitTest tests[] = {
#define TC(f) cmocka_unit_test_setup_teardown(f, tu_setup_closed, tu_teardown)
      TC(test_clock_strictly_increasing_many_txns),
      TC(test_clock_across_reopen),
      TC(test_clock_close_to_wall_clock),
      TC(test_clock_shift_knob_is_honoured),
      TC(test_clock_shift_forward_is_honoured),
      TC(test_clock_wall_steps_back),
      TC(test_clock_future_then_present),
      TC(test_clock_step_back_across_processes),
      TC(test_clock_other_process_writes_while_open),
      TC(test_clock_meta_high_water_persisted),
      cmocka_unit_test(test_trlmdb_version),
      TC(test_trlmdb_last_commit_ts),
      TC(test_trlmdb_key_ts),
      TC(test_trlmdb_env_node),
      TC(test_node_word_differs_between_envs),
#undef TC
  };
  return cmocka_run_group_tests_name("trlmdb ABI clock and trlmdb.h", tests, NULL, NULL);
}
