/* Helpers for the cmocka tests of trlmdb's C ABI; see abi_testutil.h. */
#define _GNU_SOURCE
#include "abi_testutil.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef TRLMDB_REAL_LMDB_PATH
#error "compile with -DTRLMDB_REAL_LMDB_PATH=\"/path/to/the/system/liblmdb.so.0\""
#endif

/* ---- failures ------------------------------------------------------------ */

void tu_failf(const char *file, int line, const char *fmt, ...) {
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  print_error("%s\n", buf);
  _fail(file, line);
}

void tu_assert_rc_(int rc, int want, const char *expr, const char *file, int line) {
  if (rc != want)
    tu_failf(file, line, "%s returned %d (%s), expected %d (%s)", expr, rc, mdb_strerror(rc), want,
             mdb_strerror(want));
}

/* ---- the real LMDB ------------------------------------------------------- */

static tu_real_lmdb g_real;
static int g_real_loaded;

const tu_real_lmdb *tu_real(void) {
  if (g_real_loaded) return &g_real;
  void *h = dlopen(TRLMDB_REAL_LMDB_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "cannot dlopen the real LMDB %s: %s\n", TRLMDB_REAL_LMDB_PATH, dlerror());
    abort();
  }
#define TU_LOAD(field, sym)                                         \
  do {                                                              \
    *(void **)&g_real.field = dlsym(h, #sym);                       \
    if (!g_real.field) {                                            \
      fprintf(stderr, "real LMDB lacks %s: %s\n", #sym, dlerror()); \
      abort();                                                      \
    }                                                               \
  } while (0)
  TU_LOAD(env_create, mdb_env_create);
  TU_LOAD(env_set_maxdbs, mdb_env_set_maxdbs);
  TU_LOAD(env_set_mapsize, mdb_env_set_mapsize);
  TU_LOAD(env_open, mdb_env_open);
  TU_LOAD(env_close, mdb_env_close);
  TU_LOAD(txn_begin, mdb_txn_begin);
  TU_LOAD(txn_commit, mdb_txn_commit);
  TU_LOAD(txn_abort, mdb_txn_abort);
  TU_LOAD(dbi_open, mdb_dbi_open);
  TU_LOAD(dbi_flags, mdb_dbi_flags);
  TU_LOAD(get, mdb_get);
  TU_LOAD(put, mdb_put);
  TU_LOAD(del, mdb_del);
  TU_LOAD(stat, mdb_stat);
  TU_LOAD(cursor_open, mdb_cursor_open);
  TU_LOAD(cursor_get, mdb_cursor_get);
  TU_LOAD(cursor_close, mdb_cursor_close);
  TU_LOAD(cursor_del, mdb_cursor_del);
  TU_LOAD(strerror, mdb_strerror);
#undef TU_LOAD
#ifndef TU_BASELINE
  /* The shim must not be what we loaded: the real one is a different object. */
  if ((void *)g_real.env_open == (void *)&mdb_env_open) {
    fprintf(stderr, "dlopen(%s) returned the shim itself\n", TRLMDB_REAL_LMDB_PATH);
    abort();
  }
#endif
  g_real_loaded = 1;
  return &g_real;
}

/* ---- fixture ------------------------------------------------------------- */

tu_fx *tu_fx_new(void) {
  tu_fx *fx = calloc(1, sizeof *fx);
  snprintf(fx->dir, sizeof fx->dir, "%s/trlmdb-abi-XXXXXX",
           getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
  if (!mkdtemp(fx->dir)) {
    fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
    abort();
  }
  fx->maxdbs = 16;
  return fx;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

void tu_fx_free(tu_fx *fx) {
  if (!fx) return;
  tu_close(fx);
  nftw(fx->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
  free(fx);
}

int tu_open_rc(tu_fx *fx, unsigned env_flags) {
  int rc = mdb_env_create(&fx->env);
  if (rc) return rc;
  if (fx->maxdbs >= 0) {
    rc = mdb_env_set_maxdbs(fx->env, (MDB_dbi)fx->maxdbs);
    if (rc) goto fail;
  }
  if (fx->mapsize) {
    rc = mdb_env_set_mapsize(fx->env, fx->mapsize);
    if (rc) goto fail;
  }
  rc = mdb_env_open(fx->env, fx->dir, env_flags, 0644);
  if (rc) goto fail;
  fx->env_flags = env_flags;
  return 0;
fail:
  mdb_env_close(fx->env);
  fx->env = NULL;
  return rc;
}

void tu_open(tu_fx *fx, unsigned env_flags) {
  int rc = tu_open_rc(fx, env_flags);
  if (rc)
    tu_failf(__FILE__, __LINE__, "mdb_env_open(%s) under the shim: %s", fx->dir, mdb_strerror(rc));
}

void tu_close(tu_fx *fx) {
  if (fx->env) mdb_env_close(fx->env);
  fx->env = NULL;
}

void tu_reopen(tu_fx *fx) {
  unsigned f = fx->env_flags;
  tu_close(fx);
  tu_open(fx, f);
}

int tu_setup_closed(void **state) {
  unsetenv("TRLMDB_TEST_CLOCK_SHIFT_MS");
  *state = tu_fx_new();
  return 0;
}

int tu_setup(void **state) {
  tu_setup_closed(state);
  tu_fx *fx = *state;
  int rc = tu_open_rc(fx, 0);
  if (rc) {
    print_error("setup: mdb_env_open under the shim: %s\n", mdb_strerror(rc));
    return -1;
  }
  return 0;
}

int tu_teardown(void **state) {
  tu_fx_free(*state);
  *state = NULL;
  unsetenv("TRLMDB_TEST_CLOCK_SHIFT_MS");
  return 0;
}

MDB_txn *tu_begin(tu_fx *fx, MDB_txn *parent, unsigned flags) {
  MDB_txn *t = NULL;
  int rc = mdb_txn_begin(fx->env, parent, flags, &t);
  if (rc) tu_failf(__FILE__, __LINE__, "mdb_txn_begin: %s", mdb_strerror(rc));
  return t;
}

void tu_commit(MDB_txn *txn) {
  int rc = mdb_txn_commit(txn);
  if (rc) tu_failf(__FILE__, __LINE__, "mdb_txn_commit: %s", mdb_strerror(rc));
}

MDB_dbi tu_dbi_in(MDB_txn *txn, const char *name, unsigned flags) {
  MDB_dbi d = 0;
  int rc = mdb_dbi_open(txn, name, flags, &d);
  if (rc)
    tu_failf(__FILE__, __LINE__, "mdb_dbi_open(%s): %s", name ? name : "(main)", mdb_strerror(rc));
  return d;
}

MDB_dbi tu_dbi(tu_fx *fx, const char *name, unsigned flags) {
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, name, flags);
  tu_commit(t);
  return d;
}

MDB_val tu_str(const char *s) {
  MDB_val v = {strlen(s), (void *)s};
  return v;
}

MDB_val tu_mem(const void *p, size_t n) {
  MDB_val v = {n, (void *)p};
  return v;
}

void tu_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const char *val, unsigned flags) {
  MDB_val k = tu_str(key), v = tu_str(val);
  int rc = mdb_put(txn, dbi, &k, &v, flags);
  if (rc) tu_failf(__FILE__, __LINE__, "mdb_put(%s): %s", key, mdb_strerror(rc));
}

void tu_put_commit(tu_fx *fx, const char *db, unsigned dbflags, const char *key, const char *val) {
  MDB_txn *t = tu_begin(fx, NULL, 0);
  MDB_dbi d = tu_dbi_in(t, db, dbflags);
  tu_put(t, d, key, val, 0);
  tu_commit(t);
}

/* ---- snapshots ----------------------------------------------------------- */

uint64_t tu_ts_time(const unsigned char ts[TU_TS_SIZE]) {
  uint64_t t = 0;
  for (int i = 0; i < 8; ++i) t = (t << 8) | ts[i];
  return t;
}

uint32_t tu_ts_node(const unsigned char ts[TU_TS_SIZE]) {
  return ((uint32_t)ts[8] << 24) | ((uint32_t)ts[9] << 16) | ((uint32_t)ts[10] << 8) | ts[11];
}

uint64_t tu_max_time(const tu_table *t) {
  uint64_t m = 0;
  for (size_t i = 0; i < t->n; ++i) {
    uint64_t x = tu_ts_time(t->v[i].ts);
    if (x > m) m = x;
  }
  return m;
}

const char *tu_xkey_str(const void *xkey, size_t xlen) {
  static char buf[4][2200];
  static int slot;
  char *b = buf[slot++ & 3];
  const unsigned char *p = xkey;
  size_t o = 0;
  b[o++] = '"';
  for (size_t i = 0; i < xlen && o < sizeof buf[0] - 8; ++i) {
    if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\' && p[i] != '"')
      b[o++] = (char)p[i];
    else
      o += (size_t)snprintf(b + o, 5, "\\x%02x", p[i]);
  }
  b[o++] = '"';
  b[o] = 0;
  return b;
}

static void violation(tu_snap *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void violation(tu_snap *s, const char *fmt, ...) {
  s->violations++;
  size_t used = strlen(s->violation);
  if (s->violations > 8 || used + 200 > sizeof s->violation) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(s->violation + used, sizeof s->violation - used, fmt, ap);
  va_end(ap);
  used = strlen(s->violation);
  if (used + 2 < sizeof s->violation) strcat(s->violation, "; ");
}

static void load_table(tu_snap *s, const char *name, MDB_txn *t, MDB_dbi d, tu_table *out) {
  const tu_real_lmdb *r = tu_real();
  MDB_cursor *c;
  MDB_stat st;
  out->v = NULL;
  out->n = 0;
  if (r->stat(t, d, &st) || r->cursor_open(t, d, &c)) abort();
  out->v = calloc(st.ms_entries + 1, sizeof *out->v);
  MDB_val k, v;
  int rc = r->cursor_get(c, &k, &v, MDB_FIRST);
  while (rc == 0) {
    tu_entry *e = &out->v[out->n++];
    e->xlen = k.mv_size;
    e->xkey = malloc(k.mv_size + 1);
    memcpy(e->xkey, k.mv_data, k.mv_size);
    if (v.mv_size == TU_TS_SIZE)
      memcpy(e->ts, v.mv_data, TU_TS_SIZE);
    else
      violation(s, "%s[%s] holds %zu bytes, not a 12-byte ts", name,
                tu_xkey_str(k.mv_data, k.mv_size), v.mv_size);
    rc = r->cursor_get(c, &k, &v, MDB_NEXT);
  }
  r->cursor_close(c);
}

/* Entries of _trlmdb_time are sorted by xkey (LMDB's default order), so look
 * ups are a binary search with memcmp + length, as LMDB compares. */
static int xcmp(const void *a, size_t al, const void *b, size_t bl) {
  size_t n = al < bl ? al : bl;
  int c = memcmp(a, b, n);
  if (c) return c;
  return al < bl ? -1 : (al > bl);
}

const tu_entry *tu_find_x(const tu_table *t, const void *xkey, size_t xlen) {
  size_t lo = 0, hi = t->n;
  while (lo < hi) {
    size_t mid = (lo + hi) / 2;
    int c = xcmp(t->v[mid].xkey, t->v[mid].xlen, xkey, xlen);
    if (c == 0) return &t->v[mid];
    if (c < 0)
      lo = mid + 1;
    else
      hi = mid;
  }
  return NULL;
}

static unsigned char *make_x(const char *db, const void *key, size_t klen, size_t *xlen) {
  size_t dl = strlen(db);
  unsigned char *x = malloc(dl + 1 + klen + 1);
  memcpy(x, db, dl);
  x[dl] = 0;
  if (klen) memcpy(x + dl + 1, key, klen);
  *xlen = dl + 1 + klen;
  return x;
}

const tu_entry *tu_find(const tu_table *t, const char *db, const void *key, size_t klen) {
  size_t xl;
  unsigned char *x = make_x(db, key, klen, &xl);
  const tu_entry *e = tu_find_x(t, x, xl);
  free(x);
  return e;
}

typedef struct {
  char *name; /* "" for the main database */
  MDB_dbi dbi;
} user_db;

static int is_reserved(const void *p, size_t n) { return n >= 8 && memcmp(p, "_trlmdb_", 8) == 0; }

/* DESIGN.md section 1 invariant, with the real LMDB, in read-only txn t. */
static void check_invariant(tu_snap *s, MDB_txn *t) {
  const tu_real_lmdb *r = tu_real();
  MDB_dbi main_dbi;
  if (r->dbi_open(t, NULL, 0, &main_dbi)) abort();
  user_db dbs[64];
  size_t ndbs = 0;
  dbs[ndbs].name = strdup("");
  dbs[ndbs++].dbi = main_dbi;
  /* Named databases are the keys of the main DB that mdb_dbi_open accepts. */
  unsigned char **main_keys = NULL;
  size_t *main_lens = NULL, nmain = 0, cap = 0;
  MDB_cursor *c;
  MDB_val k, v;
  if (r->cursor_open(t, main_dbi, &c)) abort();
  for (int rc = r->cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = r->cursor_get(c, &k, &v, MDB_NEXT)) {
    int named = 0;
    if (!memchr(k.mv_data, 0, k.mv_size)) {
      char *name = strndup(k.mv_data, k.mv_size);
      MDB_dbi d;
      if (r->dbi_open(t, name, 0, &d) == 0) {
        named = 1;
        if (!is_reserved(name, strlen(name)) && ndbs < 64) {
          dbs[ndbs].name = name;
          dbs[ndbs++].dbi = d;
          name = NULL;
        }
      }
      free(name);
    }
    if (!named) {
      if (nmain == cap) {
        cap = cap ? cap * 2 : 64;
        main_keys = realloc(main_keys, cap * sizeof *main_keys);
        main_lens = realloc(main_lens, cap * sizeof *main_lens);
      }
      main_keys[nmain] = malloc(k.mv_size);
      memcpy(main_keys[nmain], k.mv_data, k.mv_size);
      main_lens[nmain++] = k.mv_size;
    }
  }
  r->cursor_close(c);

  /* Every user key has a put stamp; every named database a put marker. */
  for (size_t i = 0; i < nmain; ++i) {
    const tu_entry *e = tu_find(&s->time, "", main_keys[i], main_lens[i]);
    if (!e || e->ts[11] != TU_OP_PUT)
      violation(s, "main key %s exists but its stamp is %s",
                tu_xkey_str(main_keys[i], main_lens[i]), e ? "a tombstone" : "missing");
  }
  for (size_t d = 1; d < ndbs; ++d) {
    const tu_entry *m = tu_find(&s->time, dbs[d].name, "", 0);
    if (!m || m->ts[11] != TU_OP_PUT)
      violation(s, "database %s exists but its marker is %s", dbs[d].name,
                m ? "a tombstone" : "missing");
    if (r->cursor_open(t, dbs[d].dbi, &c)) abort();
    for (int rc = r->cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = r->cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
      const tu_entry *e = tu_find(&s->time, dbs[d].name, k.mv_data, k.mv_size);
      if (!e || e->ts[11] != TU_OP_PUT)
        violation(s, "key %s of database %s exists but its stamp is %s",
                  tu_xkey_str(k.mv_data, k.mv_size), dbs[d].name, e ? "a tombstone" : "missing");
    }
    r->cursor_close(c);
  }
  /* Every put stamp names an existing key; every tombstone an absent one. */
  for (size_t i = 0; i < s->time.n; ++i) {
    const tu_entry *e = &s->time.v[i];
    const unsigned char *nul = memchr(e->xkey, 0, e->xlen);
    if (!nul) {
      violation(s, "xkey %s has no NUL", tu_xkey_str(e->xkey, e->xlen));
      continue;
    }
    size_t dl = (size_t)(nul - e->xkey), kl = e->xlen - dl - 1;
    const unsigned char *key = nul + 1;
    if (is_reserved(e->xkey, dl)) {
      violation(s, "reserved database stamped: %s", tu_xkey_str(e->xkey, e->xlen));
      continue;
    }
    if (e->ts[11] > 1) {
      violation(s, "%s: op byte 0x%02x", tu_xkey_str(e->xkey, e->xlen), e->ts[11]);
      continue;
    }
    const user_db *db = NULL;
    for (size_t d = 0; d < ndbs; ++d)
      if (strlen(dbs[d].name) == dl && memcmp(dbs[d].name, e->xkey, dl) == 0) db = &dbs[d];
    int exists;
    if (kl == 0) {
      if (dl == 0) continue; /* main database marker: nothing to check */
      exists = db != NULL;
    } else if (dl == 0) {
      /* main_keys are in LMDB's order, which is xcmp's: binary search. */
      exists = 0;
      size_t lo = 0, hi = nmain;
      while (lo < hi && !exists) {
        size_t mid = (lo + hi) / 2;
        int c = xcmp(main_keys[mid], main_lens[mid], key, kl);
        if (c == 0)
          exists = 1;
        else if (c < 0)
          lo = mid + 1;
        else
          hi = mid;
      }
    } else {
      MDB_val kk = {kl, (void *)key}, vv;
      exists = db && r->get(t, db->dbi, &kk, &vv) == 0;
    }
    if (exists != (e->ts[11] == TU_OP_PUT))
      violation(s, "%s is %s but %s", tu_xkey_str(e->xkey, e->xlen),
                e->ts[11] ? "put" : "a tombstone", exists ? "exists" : "does not exist");
  }
  for (size_t i = 0; i < nmain; ++i) free(main_keys[i]);
  free(main_keys);
  free(main_lens);
  for (size_t d = 0; d < ndbs; ++d) free(dbs[d].name);
}

static void inspect(const char *dir, tu_snap *s) {
  const tu_real_lmdb *r = tu_real();
  memset(s, 0, sizeof *s);
  MDB_env *env;
  MDB_txn *t;
  if (r->env_create(&env)) abort();
  r->env_set_maxdbs(env, 128);
  int rc = r->env_open(env, dir, MDB_RDONLY, 0644);
  if (rc) {
    fprintf(stderr, "inspect: real mdb_env_open(%s): %s\n", dir, r->strerror(rc));
    abort();
  }
  if (r->txn_begin(env, NULL, MDB_RDONLY, &t)) abort();
  MDB_dbi dt, dr, dm;
  if (r->dbi_open(t, "_trlmdb_time", 0, &dt) == 0 &&
      r->dbi_open(t, "_trlmdb_recent", 0, &dr) == 0 &&
      r->dbi_open(t, "_trlmdb_meta", 0, &dm) == 0) {
    s->reserved_present = 1;
    load_table(s, "_trlmdb_time", t, dt, &s->time);
    load_table(s, "_trlmdb_recent", t, dr, &s->recent);
    MDB_stat st;
    r->stat(t, dm, &st);
    s->meta_entries = st.ms_entries;
    MDB_val k = {4, "node"}, v;
    if (r->get(t, dm, &k, &v) == 0) {
      s->has_node = 1;
      s->node_size = v.mv_size;
      if (v.mv_size == 4) {
        const unsigned char *b = v.mv_data;
        s->node = ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
      }
    }
    k.mv_size = 5;
    k.mv_data = "clock";
    if (r->get(t, dm, &k, &v) == 0) {
      s->has_clock = 1;
      s->clock_size = v.mv_size;
      if (v.mv_size == 8) s->clock = tu_ts_time(v.mv_data);
    }
    check_invariant(s, t);
  }
  r->txn_abort(t);
  r->env_close(env);
}

void tu_snap_take(tu_fx *fx, tu_snap *s) {
  int was_open = fx->env != NULL;
  unsigned flags = fx->env_flags;
  tu_close(fx);
  inspect(fx->dir, s);
  if (was_open) tu_open(fx, flags);
}

static void free_table(tu_table *t) {
  for (size_t i = 0; i < t->n; ++i) free(t->v[i].xkey);
  free(t->v);
  t->v = NULL;
  t->n = 0;
}

void tu_snap_free(tu_snap *s) {
  free_table(&s->time);
  free_table(&s->recent);
}

/* ---- expectations -------------------------------------------------------- */

void tu_expect_consistent_(const tu_snap *s, const char *file, int line) {
#ifdef TU_BASELINE
  (void)s;
  (void)file;
  (void)line;
  return;
#endif
  if (!s->reserved_present)
    tu_failf(file, line,
             "the reserved databases _trlmdb_time/_trlmdb_recent/_trlmdb_meta do not exist");
  if (s->violations)
    tu_failf(file, line, "DESIGN.md section 1 invariant: %d violation(s): %s", s->violations,
             s->violation);
  if (!s->has_node || s->node_size != 4)
    tu_failf(file, line, "_trlmdb_meta[\"node\"] %s (size %zu, want 4)",
             s->has_node ? "bad" : "missing", s->node_size);
  if (s->node & 0xff) tu_failf(file, line, "node word 0x%08x has LSB != 0", s->node);
  if ((s->node >> 8) == 0) tu_failf(file, line, "node word 0x%08x has no node bits", s->node);
  /* Without a replicator a commit clears what earlier commits left in
     _trlmdb_recent, so it holds exactly the entries stamped since the last
     clear: every _trlmdb_time entry at least as new as its oldest, and never
     fewer than the last commit's (which holds the newest stamp). */
  const unsigned char *oldest_recent = NULL;
  for (size_t i = 0; i < s->recent.n; ++i)
    if (!oldest_recent || memcmp(s->recent.v[i].ts, oldest_recent, TU_TS_SIZE) < 0)
      oldest_recent = s->recent.v[i].ts;
  if (s->time.n && !oldest_recent)
    tu_failf(file, line, "_trlmdb_recent is empty: the last commit's entries are missing");
  for (size_t i = 0; i < s->recent.n; ++i) {
    const tu_entry *e = &s->recent.v[i];
    const tu_entry *t = tu_find_x(&s->time, e->xkey, e->xlen);
    if (!t)
      tu_failf(file, line, "_trlmdb_recent has %s, _trlmdb_time does not",
               tu_xkey_str(e->xkey, e->xlen));
    if (memcmp(t->ts, e->ts, TU_TS_SIZE))
      tu_failf(file, line, "_trlmdb_recent[%s] differs from _trlmdb_time",
               tu_xkey_str(e->xkey, e->xlen));
  }
  for (size_t i = 0; i < s->time.n; ++i) {
    const tu_entry *e = &s->time.v[i];
    if (oldest_recent && memcmp(e->ts, oldest_recent, TU_TS_SIZE) >= 0 &&
        !tu_find_x(&s->recent, e->xkey, e->xlen))
      tu_failf(file, line,
               "_trlmdb_time has %s, stamped since _trlmdb_recent was last cleared, but "
               "_trlmdb_recent does not",
               tu_xkey_str(e->xkey, e->xlen));
    if ((tu_ts_node(e->ts) & ~0xffu) != s->node)
      tu_failf(file, line, "%s stamped by node 0x%08x, this node is 0x%08x",
               tu_xkey_str(e->xkey, e->xlen), tu_ts_node(e->ts) & ~0xffu, s->node);
  }
  if (s->time.n) {
    if (!s->has_clock || s->clock_size != 8)
      tu_failf(file, line, "_trlmdb_meta[\"clock\"] %s (size %zu, want 8)",
               s->has_clock ? "bad" : "missing", s->clock_size);
    uint64_t m = tu_max_time(&s->time);
    if (s->clock < m)
      tu_failf(file, line, "meta clock 0x%016llx is below an issued time 0x%016llx",
               (unsigned long long)s->clock, (unsigned long long)m);
  }
}

void tu_expect_stamps_(const tu_snap *before, const tu_snap *after, const tu_expect *exp, size_t n,
                       const char *file, int line) {
#ifdef TU_BASELINE
  (void)before;
  (void)after;
  (void)exp;
  (void)n;
  (void)file;
  (void)line;
  return;
#endif
  if (n == 0 && !before->reserved_present && !after->reserved_present) return;
  tu_expect_consistent_(after, file, line);
  if (before->reserved_present && before->node != after->node)
    tu_failf(file, line, "node word changed from 0x%08x to 0x%08x", before->node, after->node);
  /* Tombstones and stamps never disappear. */
  for (size_t i = 0; i < before->time.n; ++i) {
    const tu_entry *e = &before->time.v[i];
    if (!tu_find_x(&after->time, e->xkey, e->xlen))
      tu_failf(file, line, "stamp of %s disappeared from _trlmdb_time",
               tu_xkey_str(e->xkey, e->xlen));
  }
  const uint64_t max_before = tu_max_time(&before->time);
  char *expected = calloc(after->time.n + 1, 1);
  for (size_t i = 0; i < n; ++i) {
    size_t xl;
    unsigned char *x = make_x(exp[i].db, exp[i].key, exp[i].klen, &xl);
    const tu_entry *a = tu_find_x(&after->time, x, xl);
    const tu_entry *b = tu_find_x(&before->time, x, xl);
    if (!a) tu_failf(file, line, "no stamp for %s", tu_xkey_str(x, xl));
    if (b && memcmp(a->ts, b->ts, TU_TS_SIZE) == 0)
      tu_failf(file, line, "%s was not re-stamped (ts unchanged)", tu_xkey_str(x, xl));
    if (tu_ts_time(a->ts) <= max_before)
      tu_failf(file, line,
               "stamp of %s (time 0x%016llx) is not newer than every earlier one (0x%016llx)",
               tu_xkey_str(x, xl), (unsigned long long)tu_ts_time(a->ts),
               (unsigned long long)max_before);
    if (a->ts[11] != exp[i].op)
      tu_failf(file, line, "stamp of %s has op byte 0x%02x, expected 0x%02x (%s)",
               tu_xkey_str(x, xl), a->ts[11], exp[i].op, exp[i].op ? "put" : "delete");
    expected[a - after->time.v] = 1;
    free(x);
  }
  for (size_t i = 0; i < after->time.n; ++i) {
    if (expected[i]) continue;
    const tu_entry *a = &after->time.v[i];
    const tu_entry *b = tu_find_x(&before->time, a->xkey, a->xlen);
    if (!b || memcmp(a->ts, b->ts, TU_TS_SIZE))
      tu_failf(file, line, "unexpected %s stamp of %s (op 0x%02x)", b ? "new" : "first",
               tu_xkey_str(a->xkey, a->xlen), a->ts[11]);
  }
  free(expected);
}

/* ---- stdout -------------------------------------------------------------- */

long tu_stdout_bytes_during(void (*fn)(void *), void *arg) {
  char path[] = "/tmp/trlmdb-stdout-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) abort();
  unlink(path);
  fflush(stdout);
  int saved = dup(1);
  dup2(fd, 1);
  fn(arg);
  fflush(stdout);
  dup2(saved, 1);
  close(saved);
  struct stat st;
  fstat(fd, &st);
  close(fd);
  return (long)st.st_size;
}
