/* chaos_node: a node of the chaos harness (compat-tests/chaos/README.md).
 *
 *   chaos_node ENV RECORDS SEED
 *
 * Opens ENV through libtrlmdb (replication is whatever the TRLMDB_* variables
 * configure), prints "READY <node word hex>" and answers commands on stdin,
 * one line each:
 *   start        -> "STARTED": the random workload runs on its own thread
 *   stop         -> "STOPPED commits=N aborts=N errors=N": after the current txn
 *   sync MS      -> rc of trlmdb_repl_sync
 *   status       -> "running=R port=P connected=N backlog=N applied=N"
 *   quit         -> "BYE", mdb_env_close, exit 0
 *
 * Workload parameters come from the environment: CHAOS_MODE (workload |
 * crash: big transactions on a large key space, no drops), CHAOS_KEYS,
 * CHAOS_MAX_OPS, CHAOS_VALUE_MAX, CHAOS_PAUSE_MS, CHAOS_DROP_PERMILLE,
 * CHAOS_DROP_DELETE (0: mdb_drop(…, 0) only), CHAOS_CHECK_HANDLES (0: no check
 * that a named database's handle has a database behind it, 1: check and give
 * up the transaction, 2: check and abort()),
 * CHAOS_AUTOSTART (1: start the workload at once), CHAOS_NAME (in values).
 *
 * Every committed transaction is appended to RECORDS with one write(2), so a
 * SIGKILL leaves either the whole record or none of it (the driver recovers
 * an unrecorded last commit from the environment itself). Lines:
 *   S <inc> <node word hex8> <pid>          the process started
 *   C <seq> <last ts hex24> <stamp bound>   a commit: trlmdb_last_commit_ts and
 *                                           an upper bound on its stamp count
 *   K <db> <key> <ts hex24> <state>         a key this commit wrote, its stamp
 *                                           (trlmdb_key_ts after the commit)
 *   R <db> <key> <lo hex24> <hi hex24> <state>  the same with the stamp only
 *                                           known to lie in [lo, hi]
 *   X <db> <lo hex24> <hi hex24>            mdb_drop(db, 1): the marker's stamp
 *                                           lies in [lo, hi]
 *   U <db> <key> <ts hex24>                 the key already carries a newer,
 *                                           replicated stamp: this write lost
 *   E <seq>                                 end of the commit's record
 *   A <seq> | Z <seq> <rc> | F <seq> <rc>   aborted on purpose, after an error,
 *                                           commit failed
 * <db> is "-" for the main database; <state> is "-" (absent) or the value's
 * representation (chaos_common.py: value_repr), for DUPSORT the set's.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <trlmdb.h>
#include <unistd.h>

#include "node_common.h"

/* ---- small helpers ---------------------------------------------------- */

static long env_long(const char *name, long def) {
  const char *s = getenv(name);
  return s && *s ? strtol(s, NULL, 10) : def;
}

static uint64_t rng_state;
static uint64_t rnd(void) { /* xorshift64*: seeded, reproducible per process */
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545F4914F6CDD1Dull;
}
static unsigned below(unsigned n) { return (unsigned)(rnd() % n); }

/* A growable text buffer: one commit's record. */
struct buf {
  char *p;
  size_t len, cap;
};
static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < b->cap - b->len) {
      b->len += (size_t)n;
      return;
    }
    b->cap = b->cap * 2 + (size_t)n + 256;
    b->p = realloc(b->p, b->cap);
    if (!b->p) abort();
  }
}

static void hex(const unsigned char *p, size_t n, char *out) {
  for (size_t i = 0; i < n; i++) sprintf(out + 2 * i, "%02x", p[i]);
}

/* CRC-32 as zlib computes it (Python: zlib.crc32). */
static uint32_t crc32_of(const unsigned char *p, size_t n) {
  static uint32_t table[256];
  if (!table[1])
    for (uint32_t i = 0; i < 256; i++) {
      uint32_t c = i;
      for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      table[i] = c;
    }
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) c = table[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return c ^ 0xFFFFFFFFu;
}

/* Must match chaos_common.value_repr: short tokens of [a-z0-9.] literally,
 * anything else as h<len>.<crc32>. */
static void value_repr(const MDB_val *v, struct buf *b) {
  const unsigned char *p = v->mv_data;
  int literal = v->mv_size > 0 && v->mv_size <= 48;
  for (size_t i = 0; literal && i < v->mv_size; i++)
    literal = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') || p[i] == '.';
  if (literal)
    bprintf(b, "%.*s", (int)v->mv_size, (const char *)p);
  else
    bprintf(b, "h%zu.%08x", v->mv_size, crc32_of(p, v->mv_size));
}

/* Stamps are compared by their time field only when bounding ranges. */
static void ts_minus(const unsigned char ts[TRLMDB_TS_SIZE], uint64_t n,
                     unsigned char out[TRLMDB_TS_SIZE]) {
  uint64_t t = 0;
  for (int i = 0; i < 8; i++) t = (t << 8) | ts[i];
  t = t > n ? t - n : 0;
  for (int i = 7; i >= 0; i--) {
    out[i] = (unsigned char)t;
    t >>= 8;
  }
  memcpy(out + 8, ts + 8, 4);
}

/* A commit's stamps lie in [last - bound, last]: both ends in hex. */
static void commit_range_hex(const unsigned char last[TRLMDB_TS_SIZE], uint64_t bound,
                             char lo_hex[25], char last_hex[25]) {
  unsigned char lo[TRLMDB_TS_SIZE];
  ts_minus(last, bound, lo);
  hex(lo, TRLMDB_TS_SIZE, lo_hex);
  hex(last, TRLMDB_TS_SIZE, last_hex);
}

static uint32_t ts_node(const unsigned char ts[TRLMDB_TS_SIZE]) {
  return ((uint32_t)ts[8] << 24) | ((uint32_t)ts[9] << 16) | ((uint32_t)ts[10] << 8);
}

/* ---- the workload ----------------------------------------------------- */

enum kind { K_MAIN, K_PLAIN, K_DUP };
struct dbdef {
  const char *name; /* NULL: the main database */
  enum kind kind;
  int droppable; /* mdb_drop(…, 1) allowed (and frequent) */
};
static const struct dbdef kWorkDbs[] = {
    {NULL, K_MAIN, 0},  {"d0", K_PLAIN, 0}, {"d1", K_PLAIN, 1},
    {"dup0", K_DUP, 0}, {"t0", K_PLAIN, 1}, {"u0", K_DUP, 1},
};
static const struct dbdef kCrashDbs[] = {{"c0", K_PLAIN, 0}, {"c1", K_DUP, 0}};

static const struct dbdef *dbs;
static unsigned n_dbs;
static MDB_env *env;
static int rec_fd = -1;
static uint32_t node_word;
static int crash_mode;
static long n_keys, max_ops, value_max, pause_ms, drop_permille;
static const char *name_tag = "n";
static long incarnation;
static int check_handles = 1;
static int drop_delete = 1;

static const char *db_token(const struct dbdef *d) { return d->name ? d->name : "-"; }

static unsigned db_flags(const struct dbdef *d) { return d->kind == K_DUP ? MDB_DUPSORT : 0; }

static void key_name(const struct dbdef *d, unsigned i, char *out, size_t n) {
  if (crash_mode)
    snprintf(out, n, "c%05u", i);
  else
    snprintf(out, n, d->kind == K_MAIN ? "mk%02u" : "k%02u", i);
}

/* The keys a transaction touched (successful changes only). */
struct touched {
  unsigned db, key;
};
static struct touched *touched;
static size_t n_touched, cap_touched;
static unsigned char *seen; /* n_dbs * n_keys flags */

static void touch(unsigned db, unsigned key) {
  if (seen[db * n_keys + key]) return;
  seen[db * n_keys + key] = 1;
  if (n_touched == cap_touched) {
    cap_touched = cap_touched * 2 + 64;
    touched = realloc(touched, cap_touched * sizeof *touched);
    if (!touched) abort();
  }
  touched[n_touched++] = (struct touched){db, key};
}

static void reset_touched(void) {
  for (size_t i = 0; i < n_touched; i++) seen[touched[i].db * n_keys + touched[i].key] = 0;
  n_touched = 0;
}

/* Opens the database in txn, creating it (with its flags) if missing;
 * *created says whether this call created it (one more stamp: its marker). */
static int open_db(MDB_txn *txn, const struct dbdef *d, int create, MDB_dbi *dbi, int *created) {
  int rc = mdb_dbi_open(txn, d->name, 0, dbi);
  if (created) *created = 0;
  if (rc == MDB_NOTFOUND && create) {
    rc = mdb_dbi_open(txn, d->name, MDB_CREATE | db_flags(d), dbi);
    if (rc == 0 && created) *created = 1;
  }
  if (rc == 0 && d->name && check_handles) {
    /* LMDB hands out a handle by name alone: one whose database is gone
     * (its record missing from the main database) would crash a put. */
    MDB_dbi main_dbi;
    MDB_val k = {strlen(d->name), (void *)d->name}, v;
    int r = mdb_dbi_open(txn, NULL, 0, &main_dbi);
    if (r == 0) r = mdb_get(txn, main_dbi, &k, &v);
    if (r == MDB_NOTFOUND) {
      fprintf(stderr,
              "chaos_node: BUG: mdb_dbi_open(txn, \"%s\", %s) returned handle %u but the "
              "database does not exist in this transaction (no record in the main database)\n",
              d->name, created && *created ? "MDB_CREATE" : "0", *dbi);
      fflush(stderr);
      if (check_handles > 1) abort();
      /* Going on would crash in LMDB: the transaction is given up instead,
       * so the run goes on and the driver reports the bug. */
      return MDB_BAD_DBI;
    }
  }
  return rc;
}

static void make_value(char *out, size_t cap, uint64_t seq, unsigned op, size_t *len) {
  int n = snprintf(out, cap, "%s.%ld.%" PRIu64 ".%u.", name_tag, incarnation, seq, op);
  size_t want = 1 + below((unsigned)value_max);
  if (want < (size_t)n) want = (size_t)n;
  if (want > cap) want = cap;
  for (size_t i = (size_t)n; i < want; i++) out[i] = (char)('a' + below(26));
  *len = want;
}

/* The state of a key in txn, appended to b: "-" or the value's (set's) repr. */
static int key_state(MDB_txn *txn, MDB_dbi dbi, const struct dbdef *d, MDB_val *k, struct buf *b) {
  MDB_val v;
  if (d->kind != K_DUP) {
    int rc = mdb_get(txn, dbi, k, &v);
    if (rc == MDB_NOTFOUND) bprintf(b, "-");
    if (rc == 0) value_repr(&v, b);
    return rc == MDB_NOTFOUND ? 0 : rc;
  }
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, dbi, &c);
  if (rc) return rc;
  MDB_val kk = *k;
  rc = mdb_cursor_get(c, &kk, &v, MDB_SET_KEY);
  if (rc == MDB_NOTFOUND) bprintf(b, "-");
  int first = 1;
  while (rc == 0) {
    bprintf(b, first ? "[" : ",");
    value_repr(&v, b);
    first = 0;
    rc = mdb_cursor_get(c, &kk, &v, MDB_NEXT_DUP);
  }
  if (!first) bprintf(b, "]");
  mdb_cursor_close(c);
  return rc == MDB_NOTFOUND ? 0 : rc;
}

static void write_record(struct buf *b) {
  size_t off = 0;
  while (off < b->len) {
    ssize_t n = write(rec_fd, b->p + off, b->len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      fprintf(stderr, "chaos_node: cannot write records: %s\n", strerror(errno));
      exit(3);
    }
    off += (size_t)n;
  }
  b->len = 0;
}

static struct { unsigned long commits, aborts, errors, commit_failures, drops, writes; } stats;

static volatile int stop_flag;
static uint64_t seq;

/* One change at random in txn; returns an LMDB rc (0, or NOTFOUND/KEYEXIST for
 * changes that did not happen: the transaction continues). */
static int random_change(MDB_txn *txn, unsigned *markers) {
  unsigned di = below(n_dbs);
  const struct dbdef *d = &dbs[di];
  MDB_dbi dbi;
  int created;
  int rc = open_db(txn, d, 1, &dbi, &created);
  if (rc) return rc;
  *markers += (unsigned)created;
  unsigned ki = below((unsigned)n_keys);
  char kbuf[32], vbuf[4096];
  key_name(d, ki, kbuf, sizeof kbuf);
  MDB_val k = {strlen(kbuf), kbuf}, v;
  unsigned r = below(100);
  if (d->kind != K_DUP) {
    if (r < 55) {
      make_value(vbuf, sizeof vbuf, seq, (unsigned)n_touched, &v.mv_size);
      v.mv_data = vbuf;
      rc = mdb_put(txn, dbi, &k, &v, below(10) == 0 ? MDB_NOOVERWRITE : 0);
    } else if (r < 85) {
      rc = mdb_del(txn, dbi, &k, NULL);
    } else {
      MDB_cursor *c;
      rc = mdb_cursor_open(txn, dbi, &c);
      if (rc) return rc;
      if (r < 93) {
        make_value(vbuf, sizeof vbuf, seq, (unsigned)n_touched, &v.mv_size);
        v.mv_data = vbuf;
        rc = mdb_cursor_put(c, &k, &v, 0);
      } else {
        MDB_val cv;
        rc = mdb_cursor_get(c, &k, &cv, MDB_SET);
        if (rc == 0) rc = mdb_cursor_del(c, 0);
      }
      mdb_cursor_close(c);
    }
  } else {
    /* Small duplicate values so that nodes add and remove the same ones. */
    char dv[48];
    if (below(5) == 0)
      snprintf(dv, sizeof dv, "%s.%ld.%" PRIu64, name_tag, incarnation, seq);
    else
      snprintf(dv, sizeof dv, "x%u", below(6));
    v.mv_data = dv;
    v.mv_size = strlen(dv);
    if (r < 50) {
      rc = mdb_put(txn, dbi, &k, &v, below(4) == 0 ? MDB_NODUPDATA : 0);
    } else if (r < 80) {
      rc = mdb_del(txn, dbi, &k, &v);
    } else if (r < 90) {
      rc = mdb_del(txn, dbi, &k, NULL);
    } else {
      MDB_cursor *c;
      rc = mdb_cursor_open(txn, dbi, &c);
      if (rc) return rc;
      MDB_val cv;
      rc = mdb_cursor_get(c, &k, &cv, MDB_SET_KEY);
      if (rc == 0) rc = mdb_cursor_del(c, below(2) ? MDB_NODUPDATA : 0);
      mdb_cursor_close(c);
    }
  }
  if (rc == 0) touch(di, ki);
  return rc;
}

/* After a commit: each touched key's stamp as a new read transaction sees it.
 * states[i] is the key's state inside the committed transaction. */
static int record_commit(const unsigned char last[TRLMDB_TS_SIZE], uint64_t bound, char **states,
                         struct buf *b) {
  char lh[25], th[25], loh[25];
  commit_range_hex(last, bound, loh, lh);
  bprintf(b, "C %" PRIu64 " %s %" PRIu64 "\n", seq, lh, bound);
  MDB_txn *rtxn;
  int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &rtxn);
  if (rc) return rc;
  for (size_t i = 0; i < n_touched; i++) {
    const struct dbdef *d = &dbs[touched[i].db];
    char kbuf[32];
    key_name(d, touched[i].key, kbuf, sizeof kbuf);
    MDB_val k = {strlen(kbuf), kbuf};
    MDB_dbi dbi;
    unsigned char ts[TRLMDB_TS_SIZE];
    rc = open_db(rtxn, d, 0, &dbi, NULL);
    if (rc == 0) rc = trlmdb_key_ts(rtxn, dbi, &k, ts);
    if (rc == MDB_NOTFOUND) {
      /* The database went away (a newer drop arrived) before we could look:
       * the stamp lies within this commit's range. */
      bprintf(b, "R %s %s %s %s %s\n", db_token(d), kbuf, loh, lh, states[i]);
      rc = 0;
      continue;
    }
    if (rc) break;
    hex(ts, TRLMDB_TS_SIZE, th);
    if (ts_node(ts) == node_word && memcmp(ts, last, TRLMDB_TS_SIZE) <= 0) {
      /* Ours (a no-op change may have left an older stamp of ours, whose
       * state is still the one read, so the record is right either way). */
      bprintf(b, "K %s %s %s %s\n", db_token(d), kbuf, th, states[i]);
      stats.writes++;
    } else {
      bprintf(b, "U %s %s %s\n", db_token(d), kbuf, th);
    }
  }
  mdb_txn_commit(rtxn);
  if (rc == 0) bprintf(b, "E %" PRIu64 "\n", seq);
  return rc;
}

static void fail(const char *what, int rc) {
  fprintf(stderr, "chaos_node: %s: %s\n", what, mdb_strerror(rc));
  exit(2);
}

static void note_node_word(void) {
  if (node_word == 0 && trlmdb_env_node(env, &node_word) != 0) node_word = 0;
}

/* Ends a transaction that does not commit, and records it: "Z" after the
 * error rc, "A" (rc 0) when aborted on purpose. */
static void abandon_txn(MDB_txn *txn, int rc, struct buf *b) {
  mdb_txn_abort(txn);
  if (rc) {
    stats.errors++;
    bprintf(b, "Z %" PRIu64 " %d\n", seq, rc);
  } else {
    stats.aborts++;
    bprintf(b, "A %" PRIu64 "\n", seq);
  }
  reset_touched();
}

/* mdb_drop(db, 0 or 1) alone in its transaction. */
static void drop_txn(struct buf *b) {
  unsigned cand[16], n = 0;
  for (unsigned i = 0; i < n_dbs; i++)
    if (dbs[i].droppable || below(4) == 0) cand[n++] = i;
  unsigned di = cand[below(n)];
  const struct dbdef *d = &dbs[di];
  int del = d->name && dbs[di].droppable ? (int)below(2) : 0;
  if (!drop_delete) del = 0;
  int abort_it = below(10) == 0;
  MDB_txn *txn;
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc) fail("mdb_txn_begin", rc);
  MDB_dbi dbi;
  rc = open_db(txn, d, 0, &dbi, NULL);
  if (rc == MDB_NOTFOUND) {
    mdb_txn_abort(txn);
    return;
  }
  /* The keys it holds now: their deletions are this commit's stamps. */
  unsigned present = 0;
  for (unsigned ki = 0; rc == 0 && ki < (unsigned)n_keys; ki++) {
    char kbuf[32];
    key_name(d, ki, kbuf, sizeof kbuf);
    MDB_val k = {strlen(kbuf), kbuf}, v;
    int r = mdb_get(txn, dbi, &k, &v);
    if (r == 0) {
      touch(di, ki);
      present++;
    } else if (r != MDB_NOTFOUND) {
      rc = r;
    }
  }
  if (rc == 0) rc = mdb_drop(txn, dbi, del);
  if (rc || abort_it) {
    abandon_txn(txn, rc, b);
    return;
  }
  rc = mdb_txn_commit(txn);
  if (rc) {
    stats.commit_failures++;
    bprintf(b, "F %" PRIu64 " %d\n", seq, rc);
    reset_touched();
    return;
  }
  stats.commits++;
  stats.drops++;
  note_node_word();
  unsigned char last[TRLMDB_TS_SIZE];
  if (trlmdb_last_commit_ts(env, last) != 0) {
    reset_touched();
    return; /* nothing was stamped: an empty drop(…, 0) */
  }
  const uint64_t bound = present + 2;
  char **states = calloc(n_touched + 1, sizeof *states);
  for (size_t i = 0; i < n_touched; i++) states[i] = "-";
  if (del) {
    char lh[25], loh[25];
    commit_range_hex(last, bound, loh, lh);
    /* The database's handle is gone with it: the marker and the keys'
     * tombstones are this commit's stamps, within [lo, last]. */
    bprintf(b, "C %" PRIu64 " %s %" PRIu64 "\nX %s %s %s\n", seq, lh, bound, db_token(d), loh, lh);
    for (size_t i = 0; i < n_touched; i++) {
      char kbuf[32];
      key_name(d, touched[i].key, kbuf, sizeof kbuf);
      bprintf(b, "R %s %s %s %s -\n", db_token(d), kbuf, loh, lh);
    }
    bprintf(b, "E %" PRIu64 "\n", seq);
  } else {
    bprintf(b, "Y %s\n", db_token(d));
    if (record_commit(last, bound, states, b) != 0) fail("reading stamps after a drop", EIO);
  }
  free(states);
  reset_touched();
}

static void one_txn(struct buf *b) {
  seq++;
  if (drop_permille > 0 && (long)below(1000) < drop_permille) {
    drop_txn(b);
    return;
  }
  int abort_it = below(10) == 0;
  unsigned n = 1 + below((unsigned)max_ops);
  if (crash_mode) n = (unsigned)max_ops / 8 + below((unsigned)max_ops);
  MDB_txn *txn;
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc) fail("mdb_txn_begin", rc);
  unsigned markers = 0;
  for (unsigned i = 0; i < n && rc == 0; i++) {
    rc = random_change(txn, &markers);
    if (rc == MDB_NOTFOUND || rc == MDB_KEYEXIST) rc = 0;
  }
  if (rc)
    fprintf(stderr, "chaos_node: txn %" PRIu64 " aborted after an error: %s\n", seq,
            mdb_strerror(rc));
  if (rc || abort_it) {
    abandon_txn(txn, rc, b);
    return;
  }
  /* The state each touched key commits with, read inside the transaction. */
  char **states = calloc(n_touched + 1, sizeof *states);
  struct buf sb = {0};
  for (size_t i = 0; i < n_touched && rc == 0; i++) {
    const struct dbdef *d = &dbs[touched[i].db];
    char kbuf[32];
    key_name(d, touched[i].key, kbuf, sizeof kbuf);
    MDB_val k = {strlen(kbuf), kbuf};
    MDB_dbi dbi;
    rc = open_db(txn, d, 0, &dbi, NULL);
    size_t start = sb.len;
    if (rc == 0) rc = key_state(txn, dbi, d, &k, &sb);
    bprintf(&sb, "%c", 0);
    states[i] = (char *)(uintptr_t)start; /* offsets until sb stops growing */
  }
  for (size_t i = 0; i < n_touched; i++) states[i] = sb.p + (uintptr_t)states[i];
  if (rc) fail("reading a touched key", rc);
  rc = mdb_txn_commit(txn);
  if (rc) {
    stats.commit_failures++;
    bprintf(b, "F %" PRIu64 " %d\n", seq, rc);
    fprintf(stderr, "chaos_node: commit failed: %s\n", mdb_strerror(rc));
  } else {
    stats.commits++;
    note_node_word();
    unsigned char last[TRLMDB_TS_SIZE];
    if (n_touched > 0 && trlmdb_last_commit_ts(env, last) == 0) {
      rc = record_commit(last, n_touched + markers + 1, states, b);
      if (rc) fail("reading stamps after a commit", rc);
    }
  }
  free(states);
  free(sb.p);
  reset_touched();
}

static void *workload(void *arg) {
  (void)arg;
  struct buf b = {0};
  while (!stop_flag) {
    one_txn(&b);
    if (b.len) write_record(&b);
    if (pause_ms > 0) {
      long ms = (long)below((unsigned)pause_ms + 1);
      struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
      nanosleep(&ts, NULL);
    }
  }
  free(b.p);
  return NULL;
}

/* ---- main ------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: chaos_node ENV RECORDS SEED\n");
    return 1;
  }
  const char *mode = getenv("CHAOS_MODE");
  crash_mode = mode && strcmp(mode, "crash") == 0;
  dbs = crash_mode ? kCrashDbs : kWorkDbs;
  n_dbs =
      crash_mode ? sizeof kCrashDbs / sizeof kCrashDbs[0] : sizeof kWorkDbs / sizeof kWorkDbs[0];
  n_keys = env_long("CHAOS_KEYS", crash_mode ? 20000 : 12);
  max_ops = env_long("CHAOS_MAX_OPS", crash_mode ? 3000 : 6);
  value_max = env_long("CHAOS_VALUE_MAX", crash_mode ? 2000 : 40);
  pause_ms = env_long("CHAOS_PAUSE_MS", crash_mode ? 0 : 40);
  drop_permille = env_long("CHAOS_DROP_PERMILLE", crash_mode ? 0 : 15);
  drop_delete = (int)env_long("CHAOS_DROP_DELETE", 1);
  check_handles = (int)env_long("CHAOS_CHECK_HANDLES", 1);
  if (n_keys < 1 || n_keys > 100000 || max_ops < 1 || value_max < 1 || value_max > 4000) {
    fprintf(stderr, "chaos_node: bad CHAOS_* parameters\n");
    return 1;
  }
  if (getenv("CHAOS_NAME")) name_tag = getenv("CHAOS_NAME");
  rng_state = strtoull(argv[3], NULL, 10) * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  if (!rng_state) rng_state = 1;
  seen = calloc((size_t)n_dbs * (size_t)n_keys, 1);

  rec_fd = open(argv[2], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (rec_fd < 0) {
    fprintf(stderr, "chaos_node: %s: %s\n", argv[2], strerror(errno));
    return 1;
  }
  int rc = open_env(argv[1], (size_t)env_long("CHAOS_MAPSIZE", 512L << 20), &env);
  if (rc) {
    answer_err(rc);
    return 1;
  }
  /* A program opens its databases at start: this also gives the
   * environment its node word before the first recorded commit. */
  MDB_txn *txn;
  rc = mdb_txn_begin(env, NULL, 0, &txn);
  for (unsigned i = 0; rc == 0 && i < n_dbs; i++) {
    MDB_dbi dbi;
    if (!dbs[i].droppable) rc = open_db(txn, &dbs[i], 1, &dbi, NULL);
  }
  if (rc == 0) rc = mdb_txn_commit(txn);
  if (rc) fail("opening the databases", rc);
  note_node_word();
  incarnation = env_long("CHAOS_INCARNATION", 0);
  {
    struct buf b = {0};
    bprintf(&b, "S %ld %08x %d\n", incarnation, node_word, (int)getpid());
    write_record(&b);
    free(b.p);
  }
  answer("READY %08x", node_word);

  pthread_t th;
  int running = 0;
  if (env_long("CHAOS_AUTOSTART", 0)) {
    pthread_create(&th, NULL, workload, NULL);
    running = 1;
  }
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\r\n")] = 0;
    if (strcmp(line, "start") == 0) {
      if (!running) {
        stop_flag = 0;
        pthread_create(&th, NULL, workload, NULL);
        running = 1;
      }
      answer("STARTED");
    } else if (strcmp(line, "stop") == 0) {
      if (running) {
        stop_flag = 1;
        pthread_join(th, NULL);
        running = 0;
      }
      answer("STOPPED commits=%lu aborts=%lu errors=%lu commit_failures=%lu drops=%lu writes=%lu",
             stats.commits, stats.aborts, stats.errors, stats.commit_failures, stats.drops,
             stats.writes);
    } else if (strncmp(line, "sync ", 5) == 0) {
      answer("%d", trlmdb_repl_sync(env, (unsigned)strtoul(line + 5, NULL, 10)));
    } else if (strcmp(line, "status") == 0) {
      TRLMDB_repl_status s;
      rc = trlmdb_repl_status(env, &s);
      if (rc)
        answer("ERR %d", rc);
      else
        answer("running=%d port=%u connected=%u backlog=%" PRIu64 " applied=%" PRIu64, s.running,
               s.listen_port, s.peers_connected, s.backlog, s.changes_applied);
    } else if (strcmp(line, "quit") == 0) {
      if (running) {
        stop_flag = 1;
        pthread_join(th, NULL);
      }
      mdb_env_close(env);
      answer("BYE");
      return 0;
    } else {
      answer("ERR 0 unknown command");
    }
  }
  /* stdin closed: the driver is gone; leave like a killed program would not. */
  if (running) {
    stop_flag = 1;
    pthread_join(th, NULL);
  }
  mdb_env_close(env);
  return 0;
}
