/* Helpers for the cmocka tests of trlmdb's C ABI.
 *
 * The programs are linked against libtrlmdb (-ltrlmdb): every mdb_* call in a
 * test goes through the shim. The reserved databases are hidden by the shim,
 * so to inspect them a test closes the environment under the shim and reopens
 * it with the REAL LMDB, whose functions come from
 * dlopen(TRLMDB_REAL_LMDB_PATH) (LMDB forbids opening one environment twice in
 * a process). tu_snap_take() does exactly that and reads _trlmdb_time,
 * _trlmdb_recent and _trlmdb_meta into memory, and also checks the DESIGN.md
 * section 1 invariant (k in D <=> _trlmdb_time[D\0k] has LSB 1).
 */
#ifndef TRLMDB_ABI_TESTUTIL_H
#define TRLMDB_ABI_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka.h needs the headers above first. */
#include <cmocka.h>
#include <lmdb.h>

#define TU_TS_SIZE 12
#define TU_OP_DEL 0
#define TU_OP_PUT 1

/* Built against the real liblmdb instead of the shim (TU_BASELINE): the
 * bookkeeping checks are no-ops and shim-only tests are skipped, so the
 * LMDB behaviour the tests assume is checked against LMDB itself. */
#ifdef TU_BASELINE
#define SHIM_ONLY() skip()
#else
#define SHIM_ONLY() ((void)0)
#endif

/* ---- The real LMDB, for inspection only ---------------------------------- */
typedef struct {
  __typeof__(&mdb_env_create) env_create;
  __typeof__(&mdb_env_set_maxdbs) env_set_maxdbs;
  __typeof__(&mdb_env_set_mapsize) env_set_mapsize;
  __typeof__(&mdb_env_open) env_open;
  __typeof__(&mdb_env_close) env_close;
  __typeof__(&mdb_txn_begin) txn_begin;
  __typeof__(&mdb_txn_commit) txn_commit;
  __typeof__(&mdb_txn_abort) txn_abort;
  __typeof__(&mdb_dbi_open) dbi_open;
  __typeof__(&mdb_dbi_flags) dbi_flags;
  __typeof__(&mdb_get) get;
  __typeof__(&mdb_put) put;
  __typeof__(&mdb_del) del;
  __typeof__(&mdb_stat) stat;
  __typeof__(&mdb_cursor_open) cursor_open;
  __typeof__(&mdb_cursor_get) cursor_get;
  __typeof__(&mdb_cursor_close) cursor_close;
  __typeof__(&mdb_cursor_del) cursor_del;
  __typeof__(&mdb_strerror) strerror;
} tu_real_lmdb;

/* Loads the real library once (aborts the test program if it cannot). */
const tu_real_lmdb *tu_real(void);

/* ---- Fixture: one temporary directory and one environment under the shim -- */
typedef struct {
  char dir[256];
  MDB_env *env;
  int maxdbs;         /* passed to mdb_env_set_maxdbs; < 0: never called */
  unsigned env_flags; /* flags of the last tu_open */
  size_t mapsize;     /* 0: LMDB's default */
} tu_fx;

/* cmocka setup/teardown: a fresh directory, environment opened with maxdbs 16. */
int tu_setup(void **state);
/* Same, but the environment is not opened (the test opens it itself). */
int tu_setup_closed(void **state);
int tu_teardown(void **state);

tu_fx *tu_fx_new(void);
void tu_fx_free(tu_fx *fx);
/* Opens fx->env under the shim (asserts success). */
void tu_open(tu_fx *fx, unsigned env_flags);
int tu_open_rc(tu_fx *fx, unsigned env_flags);
void tu_close(tu_fx *fx);
void tu_reopen(tu_fx *fx);

MDB_txn *tu_begin(tu_fx *fx, MDB_txn *parent, unsigned flags);
void tu_commit(MDB_txn *txn);
/* Opens (with flags, e.g. MDB_CREATE) a database in its own committed txn. */
MDB_dbi tu_dbi(tu_fx *fx, const char *name, unsigned flags);
MDB_dbi tu_dbi_in(MDB_txn *txn, const char *name, unsigned flags);

MDB_val tu_str(const char *s); /* strlen-sized MDB_val */
MDB_val tu_mem(const void *p, size_t n);

/* Convenience writes (assert success). */
void tu_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *val, unsigned flags);
void tu_put_commit(tu_fx *fx, const char *db, unsigned dbflags, const char *key, const char *val);

/* Asserts rc == want, printing both as LMDB error strings. */
#define tu_assert_rc(rc, want) tu_assert_rc_((rc), (want), #rc, __FILE__, __LINE__)
void tu_assert_rc_(int rc, int want, const char *expr, const char *file, int line);

/* ---- Snapshots of the bookkeeping ---------------------------------------- */
typedef struct {
  unsigned char *xkey;
  size_t xlen;
  unsigned char ts[TU_TS_SIZE];
} tu_entry;

typedef struct {
  tu_entry *v;
  size_t n;
} tu_table;

typedef struct {
  int reserved_present; /* the three reserved databases exist */
  tu_table time, recent;
  int has_node;
  uint32_t node;
  size_t node_size;
  int has_clock;
  uint64_t clock;
  size_t clock_size;
  size_t meta_entries;
  int violations;       /* DESIGN.md section 1 invariant violations */
  char violation[2048]; /* the first few, human readable */
} tu_snap;

/* Closes fx->env (if open), reads the reserved databases with the real
 * LMDB, and reopens fx->env under the shim with the same flags if it was open.
 * Database handles opened before must be reopened afterwards. */
void tu_snap_take(tu_fx *fx, tu_snap *s);
void tu_snap_free(tu_snap *s);

const tu_entry *tu_find(const tu_table *t, const char *db, const void *key, size_t klen);
const tu_entry *tu_find_x(const tu_table *t, const void *xkey, size_t xlen);
uint64_t tu_ts_time(const unsigned char ts[TU_TS_SIZE]);
uint32_t tu_ts_node(const unsigned char ts[TU_TS_SIZE]);
uint64_t tu_max_time(const tu_table *t);
/* Escaped rendering of an xkey for messages (static buffer, one at a time). */
const char *tu_xkey_str(const void *xkey, size_t xlen);

/* One expected stamp: database name ("" = main), key bytes (klen 0 = the
 * database marker) and TU_OP_PUT / TU_OP_DEL. */
typedef struct {
  const char *db;
  const void *key;
  size_t klen;
  int op;
} tu_expect;

#define TU_X(db, key, op) \
  { (db), (key), sizeof(key) - 1, (op) }
#define TU_MARKER(db, op) \
  { (db), "", 0, (op) }

/* Checks that between `before` and `after` exactly the xkeys of `exp` got a
 * new timestamp, each newer than every timestamp in `before`, with the right
 * op byte and this environment's node word; that nothing disappeared from
 * _trlmdb_time; that _trlmdb_recent equals _trlmdb_time; that the meta clock
 * is at least every issued time; and that the invariant holds. */
#define tu_expect_stamps(before, after, exp, n) \
  tu_expect_stamps_((before), (after), (exp), (n), __FILE__, __LINE__)
void tu_expect_stamps_(const tu_snap *before, const tu_snap *after, const tu_expect *exp, size_t n,
                       const char *file, int line);
/* No bookkeeping change at all between the two snapshots. */
#define tu_expect_unchanged(before, after) \
  tu_expect_stamps_((before), (after), NULL, 0, __FILE__, __LINE__)
/* The checks that need no `before`: recent == time, invariant, meta. */
#define tu_expect_consistent(s) tu_expect_consistent_((s), __FILE__, __LINE__)
void tu_expect_consistent_(const tu_snap *s, const char *file, int line);

void tu_failf(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Runs fn with fd 1 redirected to a file; returns how many bytes it wrote. */
long tu_stdout_bytes_during(void (*fn)(void *), void *arg);

#endif
