/* repl_node: one node of a test cluster, driven line by line on stdin.
 *
 *   repl_node ENV [MAPSIZE]
 *
 * Opens ENV (a directory, created if missing; its parent must exist)
 * through libtrlmdb with maxdbs 16 and the map size from the argument, else
 * REPL_NODE_MAPSIZE, else 256 MiB.
 * Replication is whatever the TRLMDB_* variables of the process configure.
 * Prints "READY" (or "ERR ..." and exits 1), then answers each command with
 * exactly one line on stdout, flushed. Errors are "ERR <rc> <message>".
 *
 * Tokens are separated by spaces. A KEY or VALUE token is taken
 * literally, unless it starts with "hex:": the rest is then hex-decoded (for
 * binary keys such as INTEGERKEY ones, and for values with spaces). Output
 * values use the same encoding: literal when every byte is printable ASCII
 * other than space and the value does not start with "hex:", else "hex:...".
 * DB is a named database, or "-" for the main database.
 *
 *   put DB KEY VALUE        -> "OK <ts hex>" (ts of this commit)
 *   putdup DB KEY VALUE     -> "OK <ts hex>" (DB created MDB_DUPSORT if missing)
 *   del DB KEY              -> "OK <ts hex>" | "NOTFOUND"
 *   deldup DB KEY VALUE     -> "OK <ts hex>" | "NOTFOUND"
 *   create DB FLAGS         -> "OK"   FLAGS: 0 or names joined by '|', e.g.
 *                                     DUPSORT|INTEGERKEY (REVERSEKEY DUPSORT
 *                                     INTEGERKEY DUPFIXED INTEGERDUP REVERSEDUP)
 *   drop DB 0|1             -> "OK <ts hex>" | "NOTFOUND"
 *   dbiclose DB             -> "OK" | "NOTFOUND": mdb_dbi_close of DB's handle
 *   get DB KEY              -> value | "NOTFOUND" (first duplicate in DUPSORT;
 *                              tests never store the value NOTFOUND)
 *   getdups DB KEY          -> all duplicates, space separated | "NOTFOUND"
 *   count DB                -> number of entries | "NOTFOUND"
 *   flags DB                -> the flags as in `create` ("0" for none) | "NOTFOUND"
 *   putgen DB KEY SIZE SEED -> "OK <ts hex>": a SIZE-byte pseudo-random value
 *   sum DB KEY              -> "<size> <fnv1a-64 hex>" | "NOTFOUND"
 *   bulk DB N PREFIX        -> "OK": N puts PREFIX%08d -> PREFIX-v%d, 1000 per txn
 *   status                  -> "running=R port=P connected=N backlog=N applied=N
 *                               sent=N received=N configured=N"
 *   sync MS                 -> rc of trlmdb_repl_sync (0, ETIMEDOUT=110, EINVAL=22)
 *   node                    -> node word in hex | "NOTFOUND"
 *   fill DB N VLEN SEED     -> "OK": N puts of 16-byte keys f%015d -> VLEN pseudo-random
 *                              bytes (from SEED and the key), 1000 per txn
 *   cmp DB                  -> "OK": opens DB (created if missing) and registers a
 *                              reverse-memcmp comparator for it (mdb_set_compare) in
 *                              the same write transaction
 *   scan DB                 -> the keys of DB in cursor order, space separated (an
 *                              empty line for an empty DB) | "NOTFOUND"
 *   mapsize BYTES           -> "OK": mdb_env_set_mapsize on the open environment
 *   open ENV [MAPSIZE]      -> "OK <index>": opens one more environment in this
 *                              process (same settings as the first); commands
 *                              prefixed "@<index> " act on it ("@0 " is the first)
 *   fork MS                 -> "OK <pid>": forks a child that touches no
 *                              environment (LMDB forbids it), sleeps MS ms and calls
 *                              exit(0) (atexit handlers run, as in any program)
 *   waitchild PID           -> "EXIT <status>" | "SIGNAL <n>" | "ERR ..." (waitpid)
 *   exitnoclose             -> "EXITING", then exit(0) without mdb_env_close
 *   quit                    -> "BYE", closes every environment, exits 0
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <trlmdb.h>
#include <unistd.h>

#include "node_common.h"

#define MAX_ENVS 4
static MDB_env *envs[MAX_ENVS];
static int n_envs;
static MDB_env *env; /* the environment the current command acts on */

/* The answer of a command that prints nothing else: "OK" or the error. */
static void answer_ok(int rc) {
  if (rc)
    answer_err(rc);
  else
    answer("OK");
}

static int hexval(int c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes a token in place; returns 0, or -1 on bad hex. */
static int decode(char *tok, MDB_val *out) {
  if (strncmp(tok, "hex:", 4) != 0) {
    out->mv_data = tok;
    out->mv_size = strlen(tok);
    return 0;
  }
  const char *h = tok + 4;
  size_t n = strlen(h);
  if (n % 2) return -1;
  for (size_t i = 0; i < n / 2; i++) {
    int a = hexval(h[2 * i]), b = hexval(h[2 * i + 1]);
    if (a < 0 || b < 0) return -1;
    tok[i] = (char)(a * 16 + b);
  }
  out->mv_data = tok;
  out->mv_size = n / 2;
  return 0;
}

/* Appends the encoded form of v to the stdout line. */
static void print_val(const MDB_val *v) {
  const unsigned char *p = v->mv_data;
  int literal = v->mv_size > 0 && !(v->mv_size >= 4 && memcmp(p, "hex:", 4) == 0);
  for (size_t i = 0; literal && i < v->mv_size; i++)
    if (p[i] <= ' ' || p[i] >= 0x7f) literal = 0;
  if (literal) {
    fwrite(p, 1, v->mv_size, stdout);
    return;
  }
  fputs("hex:", stdout);
  for (size_t i = 0; i < v->mv_size; i++) fprintf(stdout, "%02x", p[i]);
}

static void print_ts_ok(void) {
  unsigned char ts[TRLMDB_TS_SIZE];
  if (trlmdb_last_commit_ts(env, ts) != 0) {
    answer("OK -");
    return;
  }
  fputs("OK ", stdout);
  for (int i = 0; i < TRLMDB_TS_SIZE; i++) fprintf(stdout, "%02x", ts[i]);
  answer("%s", "");
}

static const struct {
  const char *name;
  unsigned flag;
} kFlags[] = {{"REVERSEKEY", MDB_REVERSEKEY}, {"DUPSORT", MDB_DUPSORT},
              {"INTEGERKEY", MDB_INTEGERKEY}, {"DUPFIXED", MDB_DUPFIXED},
              {"INTEGERDUP", MDB_INTEGERDUP}, {"REVERSEDUP", MDB_REVERSEDUP}};

static int parse_flags(char *s, unsigned *out) {
  *out = 0;
  if (strcmp(s, "0") == 0) return 0;
  for (char *save = NULL, *t = strtok_r(s, "|", &save); t; t = strtok_r(NULL, "|", &save)) {
    size_t i;
    for (i = 0; i < sizeof kFlags / sizeof kFlags[0]; i++)
      if (strcmp(t, kFlags[i].name) == 0) break;
    if (i == sizeof kFlags / sizeof kFlags[0]) return -1;
    *out |= kFlags[i].flag;
  }
  return 0;
}

static void print_flags(unsigned flags) {
  int any = 0;
  for (size_t i = 0; i < sizeof kFlags / sizeof kFlags[0]; i++) {
    if (!(flags & kFlags[i].flag)) continue;
    fprintf(stdout, "%s%s", any ? "|" : "", kFlags[i].name);
    any = 1;
  }
  answer("%s", any ? "" : "0");
}

static const char *dbname(const char *db) { return strcmp(db, "-") == 0 ? NULL : db; }

/* Opens DB in txn; with create, creates it with `flags` when it is missing.
 * An existing database is opened with its own flags (never 0 forced on it). */
static int open_db(MDB_txn *txn, const char *db, int create, unsigned flags, MDB_dbi *dbi) {
  int rc = mdb_dbi_open(txn, dbname(db), 0, dbi);
  if (rc == MDB_NOTFOUND && create) rc = mdb_dbi_open(txn, dbname(db), MDB_CREATE | flags, dbi);
  return rc;
}

/* A write transaction around one operation; fn returns an LMDB rc. */
typedef int (*write_fn)(MDB_txn *txn, MDB_dbi dbi, void *arg);

static int in_write(const char *db, int create, unsigned flags, write_fn fn, void *arg) {
  MDB_txn *txn;
  MDB_dbi dbi;
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc) return rc;
  rc = open_db(txn, db, create, flags, &dbi);
  if (rc == 0) rc = fn(txn, dbi, arg);
  if (rc) {
    mdb_txn_abort(txn);
    return rc;
  }
  return mdb_txn_commit(txn);
}

struct kv {
  MDB_val k, v;
  unsigned put_flags;
  int with_data;
  int del_db;
};

static int do_put(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct kv *a = arg;
  return mdb_put(txn, dbi, &a->k, &a->v, a->put_flags);
}

static int do_del(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct kv *a = arg;
  return mdb_del(txn, dbi, &a->k, a->with_data ? &a->v : NULL);
}

static int do_drop(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct kv *a = arg;
  return mdb_drop(txn, dbi, a->del_db);
}

static void write_answer(int rc) {
  if (rc == 0)
    print_ts_ok();
  else if (rc == MDB_NOTFOUND)
    answer("NOTFOUND");
  else
    answer_err(rc);
}

/* Read-only lookups: fn prints the answer; NOTFOUND when DB or key is missing. */
typedef int (*read_fn)(MDB_txn *txn, MDB_dbi dbi, void *arg);

static void in_read(const char *db, read_fn fn, void *arg) {
  MDB_txn *txn;
  MDB_dbi dbi;
  int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
  if (rc) {
    answer_err(rc);
    return;
  }
  rc = open_db(txn, db, 0, 0, &dbi);
  if (rc == 0) rc = fn(txn, dbi, arg);
  /* Commit, not abort: a handle opened in a read-only txn survives a commit. */
  mdb_txn_commit(txn);
  if (rc == MDB_NOTFOUND)
    answer("NOTFOUND");
  else if (rc)
    answer_err(rc);
}

static int rd_get(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct kv *a = arg;
  int rc = mdb_get(txn, dbi, &a->k, &a->v);
  if (rc) return rc;
  print_val(&a->v);
  answer("%s", "");
  return 0;
}

static int rd_getdups(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct kv *a = arg;
  MDB_cursor *c;
  int rc = mdb_cursor_open(txn, dbi, &c);
  if (rc) return rc;
  rc = mdb_cursor_get(c, &a->k, &a->v, MDB_SET_KEY);
  if (rc == 0) {
    unsigned flags = 0;
    mdb_dbi_flags(txn, dbi, &flags);
    int first = 1;
    while (rc == 0) {
      if (!first) fputc(' ', stdout);
      print_val(&a->v);
      first = 0;
      rc = (flags & MDB_DUPSORT) ? mdb_cursor_get(c, &a->k, &a->v, MDB_NEXT_DUP) : MDB_NOTFOUND;
    }
    answer("%s", "");
    rc = rc == MDB_NOTFOUND ? 0 : rc;
  }
  mdb_cursor_close(c);
  return rc;
}

static int rd_count(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  (void)arg;
  MDB_stat st;
  int rc = mdb_stat(txn, dbi, &st);
  if (rc == 0) answer("%zu", st.ms_entries);
  return rc;
}

static int rd_flags(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  (void)arg;
  unsigned flags;
  int rc = mdb_dbi_flags(txn, dbi, &flags);
  if (rc == 0) print_flags(flags);
  return rc;
}

static uint64_t fnv1a(const unsigned char *p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; i++) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

static int rd_sum(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct kv *a = arg;
  int rc = mdb_get(txn, dbi, &a->k, &a->v);
  if (rc == 0) answer("%zu %016" PRIx64, a->v.mv_size, fnv1a(a->v.mv_data, a->v.mv_size));
  return rc;
}

/* The keys [from, to) of one transaction of a load; the first member of
 * each load's argument (struct bulk, struct fill). */
struct batch {
  long from, to;
};

/* Keys [0, total) of DB (created if missing) in write transactions of 1000,
 * fn writing each batch. */
static int in_write_batches(const char *db, long total, write_fn fn, struct batch *b) {
  int rc = 0;
  for (long from = 0; rc == 0 && from < total; from += 1000) {
    b->from = from;
    b->to = from + 1000 < total ? from + 1000 : total;
    rc = in_write(db, 1, 0, fn, b);
  }
  return rc;
}

struct bulk {
  struct batch range;
  const char *prefix;
};

static int do_bulk(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct bulk *b = arg;
  char kbuf[512], vbuf[600];
  for (long i = b->range.from; i < b->range.to; i++) {
    MDB_val k = {(size_t)snprintf(kbuf, sizeof kbuf, "%s%08ld", b->prefix, i), kbuf};
    MDB_val v = {(size_t)snprintf(vbuf, sizeof vbuf, "%s-v%ld", b->prefix, i), vbuf};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc) return rc;
  }
  return 0;
}

struct fill {
  struct batch range;
  size_t vlen;
  uint64_t seed;
  unsigned char *vbuf;
};

static int do_fill(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  struct fill *f = arg;
  char kbuf[32];
  for (long i = f->range.from; i < f->range.to; i++) {
    snprintf(kbuf, sizeof kbuf, "f%015ld", i);
    uint64_t x = (f->seed * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)i * 0xbf58476d1ce4e5b9ull) ^ 1;
    for (size_t j = 0; j < f->vlen; j++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      f->vbuf[j] = (unsigned char)x;
    }
    MDB_val k = {16, kbuf}, v = {f->vlen, f->vbuf};
    int rc = mdb_put(txn, dbi, &k, &v, 0);
    if (rc) return rc;
  }
  return 0;
}

/* The order of the custom-comparator tests: the reverse of memcmp. */
static int reverse_memcmp(const MDB_val *a, const MDB_val *b) {
  size_t n = a->mv_size < b->mv_size ? a->mv_size : b->mv_size;
  int c = memcmp(a->mv_data, b->mv_data, n);
  if (c == 0) c = a->mv_size < b->mv_size ? -1 : a->mv_size > b->mv_size;
  return -c;
}

static int rd_scan(MDB_txn *txn, MDB_dbi dbi, void *arg) {
  (void)arg;
  MDB_cursor *c;
  MDB_val k, v;
  int rc = mdb_cursor_open(txn, dbi, &c);
  if (rc) return rc;
  int first = 1;
  for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP)) {
    if (!first) fputc(' ', stdout);
    print_val(&k);
    first = 0;
  }
  mdb_cursor_close(c);
  if (rc != MDB_NOTFOUND) return rc;
  answer("%s", "");
  return 0;
}

static size_t default_mapsize(const char *arg) {
  const char *ms = arg ? arg : getenv("REPL_NODE_MAPSIZE");
  return ms && *ms ? strtoull(ms, NULL, 10) : (size_t)256 << 20;
}

/* mdb_dbi_open(DB, MDB_CREATE | flags) alone in a write transaction; with
 * cmp, mdb_set_compare for it in the same one. */
static int create_db(const char *db, unsigned flags, MDB_cmp_func *cmp) {
  MDB_txn *txn;
  MDB_dbi dbi;
  int rc = mdb_txn_begin(env, NULL, 0, &txn);
  if (rc) return rc;
  rc = mdb_dbi_open(txn, dbname(db), MDB_CREATE | flags, &dbi);
  if (rc == 0 && cmp) rc = mdb_set_compare(txn, dbi, cmp);
  if (rc) {
    mdb_txn_abort(txn);
    return rc;
  }
  return mdb_txn_commit(txn);
}

/* Splits line into at most max tokens at single spaces; returns the count. */
static int split(char *line, char **tok, int max) {
  int n = 0;
  char *save = NULL;
  for (char *t = strtok_r(line, " \t\r\n", &save); t && n < max;
       t = strtok_r(NULL, " \t\r\n", &save))
    tok[n++] = t;
  return n;
}

static void command(char *line) {
  char *t[8];
  int n = split(line, t, 8);
  if (n == 0) {
    answer("ERR 0 empty command");
    return;
  }
  const char *cmd = t[0];
  struct kv a = {0};
#define NEED(count)                                               \
  if (n != (count)) {                                             \
    answer("ERR 0 usage: %s needs %d arguments", cmd, (count)-1); \
    return;                                                       \
  }
#define KEY(i)                                  \
  if (decode(t[i], &a.k) || a.k.mv_size == 0) { \
    answer("ERR 0 bad key");                    \
    return;                                     \
  }
#define VAL(i)                 \
  if (decode(t[i], &a.v)) {    \
    answer("ERR 0 bad value"); \
    return;                    \
  }
  if (strcmp(cmd, "put") == 0 || strcmp(cmd, "putdup") == 0) {
    NEED(4);
    KEY(2);
    VAL(3);
    unsigned create_flags = strcmp(cmd, "putdup") == 0 ? MDB_DUPSORT : 0;
    write_answer(in_write(t[1], 1, create_flags, do_put, &a));
  } else if (strcmp(cmd, "del") == 0) {
    NEED(3);
    KEY(2);
    write_answer(in_write(t[1], 0, 0, do_del, &a));
  } else if (strcmp(cmd, "deldup") == 0) {
    NEED(4);
    KEY(2);
    VAL(3);
    a.with_data = 1;
    write_answer(in_write(t[1], 0, 0, do_del, &a));
  } else if (strcmp(cmd, "create") == 0) {
    NEED(3);
    unsigned flags;
    if (parse_flags(t[2], &flags)) {
      answer("ERR 0 bad flags");
      return;
    }
    answer_ok(create_db(t[1], flags, NULL));
  } else if (strcmp(cmd, "drop") == 0) {
    NEED(3);
    a.del_db = atoi(t[2]);
    write_answer(in_write(t[1], 0, 0, do_drop, &a));
  } else if (strcmp(cmd, "dbiclose") == 0) {
    NEED(2);
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0) {
      rc = open_db(txn, t[1], 0, 0, &dbi);
      mdb_txn_abort(txn);
    }
    if (rc == 0) mdb_dbi_close(env, dbi);
    if (rc == MDB_NOTFOUND)
      answer("NOTFOUND");
    else
      answer_ok(rc);
  } else if (strcmp(cmd, "get") == 0) {
    NEED(3);
    KEY(2);
    in_read(t[1], rd_get, &a);
  } else if (strcmp(cmd, "getdups") == 0) {
    NEED(3);
    KEY(2);
    in_read(t[1], rd_getdups, &a);
  } else if (strcmp(cmd, "count") == 0) {
    NEED(2);
    in_read(t[1], rd_count, &a);
  } else if (strcmp(cmd, "flags") == 0) {
    NEED(2);
    in_read(t[1], rd_flags, &a);
  } else if (strcmp(cmd, "sum") == 0) {
    NEED(3);
    KEY(2);
    in_read(t[1], rd_sum, &a);
  } else if (strcmp(cmd, "putgen") == 0) {
    NEED(5);
    KEY(2);
    size_t size = strtoull(t[3], NULL, 10);
    uint64_t x = strtoull(t[4], NULL, 10) * 0x9e3779b97f4a7c15ull + 1;
    unsigned char *buf = malloc(size ? size : 1);
    if (!buf) {
      answer_err(ENOMEM);
      return;
    }
    for (size_t i = 0; i < size; i++) {
      x ^= x << 13;
      x ^= x >> 7;
      x ^= x << 17;
      buf[i] = (unsigned char)(x >> 24);
    }
    a.v.mv_data = buf;
    a.v.mv_size = size;
    write_answer(in_write(t[1], 1, 0, do_put, &a));
    free(buf);
  } else if (strcmp(cmd, "bulk") == 0) {
    NEED(4);
    struct bulk b = {{0, 0}, t[3]};
    answer_ok(in_write_batches(t[1], atol(t[2]), do_bulk, &b.range));
  } else if (strcmp(cmd, "status") == 0) {
    NEED(1);
    TRLMDB_repl_status s;
    int rc = trlmdb_repl_status(env, &s);
    if (rc) {
      answer_err(rc);
      return;
    }
    answer("running=%d port=%u connected=%u backlog=%" PRIu64 " applied=%" PRIu64 " sent=%" PRIu64
           " received=%" PRIu64 " configured=%u",
           s.running, s.listen_port, s.peers_connected, s.backlog, s.changes_applied, s.bytes_sent,
           s.bytes_received, s.peers_configured);
  } else if (strcmp(cmd, "sync") == 0) {
    NEED(2);
    answer("%d", trlmdb_repl_sync(env, (unsigned)atol(t[1])));
  } else if (strcmp(cmd, "fill") == 0) {
    NEED(5);
    struct fill f = {{0, 0}, strtoull(t[3], NULL, 10), strtoull(t[4], NULL, 10), NULL};
    f.vbuf = malloc(f.vlen ? f.vlen : 1);
    if (!f.vbuf) {
      answer_err(ENOMEM);
      return;
    }
    int rc = in_write_batches(t[1], atol(t[2]), do_fill, &f.range);
    free(f.vbuf);
    answer_ok(rc);
  } else if (strcmp(cmd, "cmp") == 0) {
    NEED(2);
    answer_ok(create_db(t[1], 0, reverse_memcmp));
  } else if (strcmp(cmd, "scan") == 0) {
    NEED(2);
    in_read(t[1], rd_scan, &a);
  } else if (strcmp(cmd, "mapsize") == 0) {
    NEED(2);
    answer_ok(mdb_env_set_mapsize(env, strtoull(t[1], NULL, 10)));
  } else if (strcmp(cmd, "open") == 0) {
    if (n < 2 || n > 3) {
      answer("ERR 0 usage: open ENV [MAPSIZE]");
      return;
    }
    if (n_envs == MAX_ENVS) {
      answer("ERR 0 too many environments");
      return;
    }
    int rc = open_env(t[1], default_mapsize(n == 3 ? t[2] : NULL), &envs[n_envs]);
    if (rc)
      answer_err(rc);
    else
      answer("OK %d", n_envs++);
  } else if (strcmp(cmd, "fork") == 0) {
    NEED(2);
    long ms = atol(t[1]);
    pid_t pid = fork();
    if (pid < 0) {
      answer_err(errno);
      return;
    }
    if (pid == 0) {
      struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
      while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
      }
      exit(0);
    }
    answer("OK %d", (int)pid);
  } else if (strcmp(cmd, "waitchild") == 0) {
    NEED(2);
    int st;
    pid_t pid = (pid_t)atol(t[1]);
    pid_t r;
    while ((r = waitpid(pid, &st, 0)) < 0 && errno == EINTR) {
    }
    if (r < 0)
      answer_err(errno);
    else if (WIFEXITED(st))
      answer("EXIT %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
      answer("SIGNAL %d", WTERMSIG(st));
    else
      answer("ERR 0 status %d", st);
  } else if (strcmp(cmd, "exitnoclose") == 0) {
    NEED(1);
    answer("EXITING");
    exit(0);
  } else if (strcmp(cmd, "node") == 0) {
    NEED(1);
    uint32_t node;
    int rc = trlmdb_env_node(env, &node);
    if (rc == MDB_NOTFOUND)
      answer("NOTFOUND");
    else if (rc)
      answer_err(rc);
    else
      answer("%08" PRIx32, node);
  } else {
    answer("ERR 0 unknown command %s", cmd);
  }
#undef NEED
#undef KEY
#undef VAL
}

int main(int argc, char **argv) {
  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: repl_node ENV [MAPSIZE]\n");
    return 2;
  }
  int rc = open_env(argv[1], default_mapsize(argc == 3 ? argv[2] : NULL), &envs[0]);
  if (rc) {
    answer_err(rc);
    return 1;
  }
  n_envs = 1;
  answer("READY");
  /* getline: values up to tens of MiB in hex would not fit a fixed buffer. */
  char *line = NULL;
  size_t cap = 0;
  while (getline(&line, &cap, stdin) > 0) {
    if (strncmp(line, "quit", 4) == 0 && (line[4] == '\n' || line[4] == '\0')) break;
    char *rest = line;
    env = envs[0];
    if (line[0] == '@') {
      char *end;
      long i = strtol(line + 1, &end, 10);
      if (end == line + 1 || *end != ' ' || i < 0 || i >= n_envs) {
        answer("ERR 0 no environment %.*s", (int)strcspn(line, " \n"), line);
        continue;
      }
      env = envs[i];
      rest = end + 1;
    }
    command(rest);
  }
  free(line);
  for (int i = n_envs - 1; i >= 0; i--) mdb_env_close(envs[i]);
  answer("BYE");
  return 0;
}
