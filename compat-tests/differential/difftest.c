/*
 * difftest: a seeded generator of random LMDB operation sequences.
 *
 * An ordinary LMDB program (only <lmdb.h>): built once against the real
 * liblmdb and once against libtrlmdb, it prints a deterministic transcript of
 * every call it makes (name, arguments that matter, return code, every byte
 * read). run_difftest.py runs it in four modes and compares the transcripts;
 * the allowed differences are listed (with the reasons) at the top of that
 * driver.
 *
 *   difftest --seed S [--count N] [--ops K] --dir DIR [--clean] [--dump]
 *            [--linebuf] [--avoid-main] [--expect-shim 0|1]
 *
 * runs sequences S .. S+N-1, each in a fresh directory DIR/seq-<seed> (the
 * environment is DIR/seq-<seed>/env, copies are DIR/seq-<seed>/copyN); a
 * sequence has K/2 .. 3K/2 random steps (default K=150).
 *   --clean        remove each sequence directory when it ends (real mode)
 *   --dump         print the whole content (DUMP lines) at every digest
 *   --linebuf      write every fragment at once (to see the call a crash is in)
 *   --avoid-main   random operations on named databases only (debugging: gets
 *                  past main-database differences)
 *   --expect-shim  exit 3 unless the trlmdb shim is (1) / is not (0) loaded
 *
 * Transcript rules: no pointers, paths, dbi numbers, times or PIDs are
 * printed; txn ids are printed as deltas from the last txn id seen right after
 * mdb_env_open; page counts (ms_depth, ms_*_pages, me_last_pgno) are never
 * printed; the MDB_db record of a named database read from the main database
 * is printed without its page fields. Values longer than 64 bytes are printed
 * as length, 64-bit hash and first bytes. After every successful top-level
 * commit: COMMITTED <hash of the whole content> (computed in the txn just
 * before it commits); after a reopen and of a copy likewise.
 *
 * Generator rules (things LMDB leaves undefined, or where the shim is allowed
 * to differ, are never generated):
 *  - a cursor is used only while its transaction is the innermost live one of
 *    its family; read-only cursors whose transaction ended or was reset are
 *    only renewed or closed;
 *  - a dbi handle is used only in transactions where LMDB defines it (opened
 *    in that transaction or an ancestor, or published by a commit before the
 *    transaction began); only one transaction family at a time may have
 *    unpublished handles (lmdb.h, mdb_dbi_open); a read txn opens new handles
 *    only while its snapshot is the latest (else its commit would publish a
 *    handle to a dropped database); mdb_dbi_close and mdb_env_set_mapsize
 *    only when no transaction is live; maxdbs is 0 or covers the whole pool;
 *  - MDB_NOLOCK: no write transaction while a read transaction is active (no
 *    reader table protects its snapshot);
 *  - INTEGERKEY keys and DUPFIXED/INTEGERDUP values always have the database's
 *    fixed size; MDB_RESERVE never on DUPSORT; MDB_CURRENT only with the key
 *    (and for DUPSORT the data) the cursor is on;
 *  - generated keys are at most 100 bytes, except the deliberate error keys
 *    (0 bytes, or 512+ bytes) which fail under both; main-database keys and
 *    database names never start with "_trlmdb_"; no custom comparators
 *    (`trlmdb verify` could not know them);
 *  - the main database is never opened with flags, and is dropped only in
 *    sequences without named databases;
 *  - LMDB 0.9.24 bugs, found with this program under ASan against a debug
 *    build of the same liblmdb, are avoided: (1) mdb_cursor_next/prev on a
 *    DUPSORT cursor whose index is past the last item (MDB_PREV* on an
 *    unpositioned cursor, MDB_NEXT* after a failed MDB_SET, MDB_PREV* after
 *    deleting the last item) read stale page bytes, so such cursors are
 *    positioned first (ST_*); (2) MDB_NEXT after mdb_cursor_del on a DUPSORT
 *    database can follow a stale sub-cursor (assertion), so DUPSORT bulk
 *    deletes use mdb_del; (3) 0-byte DUPSORT values are lost on conversion to
 *    a duplicate set (use after free with MDB_APPENDDUP); (4) DUPFIXED items
 *    of 1 byte overrun a page;
 *  - after the first MDB_MAP_FULL the sequence aborts everything, prints
 *    MAP_FULL and the digest of the committed content (FINAL), and ends.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ PRNG */

static uint64_t rng_state;

static uint64_t rnd64(void) {
  uint64_t z = (rng_state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}
static unsigned rn(unsigned n) { return n ? (unsigned)(rnd64() % n) : 0; }
static int pct(unsigned p) { return rn(100) < p; }

/* ---------------------------------------------------------------- output */

static char lbuf[16384];
static size_t llen;
static int opt_dump;
static int opt_linebuf; /* debugging: write every fragment at once */
static int opt_avoid_main; /* debugging: random operations on named DBs only */

static void lpartial(void) {
  if (opt_linebuf && llen) {
    fwrite(lbuf, 1, llen, stdout);
    fflush(stdout);
    llen = 0;
  }
}

static void lput(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lput(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(lbuf + llen, sizeof lbuf - llen, fmt, ap);
  va_end(ap);
  if (n > 0) llen += (size_t)n;
  if (llen >= sizeof lbuf) llen = sizeof lbuf - 1;
  lpartial();
}
static void lend(void) {
  lbuf[llen++] = '\n';
  fwrite(lbuf, 1, llen, stdout);
  llen = 0;
}

static uint64_t hash_bytes(uint64_t h, const void *p, size_t n) {
  const unsigned char *b = p;
  for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001B3ULL;
  return h;
}
static uint64_t hash_u64(uint64_t h, uint64_t v) { return hash_bytes(h, &v, sizeof v); }
#define HASH_INIT 0xCBF29CE484222325ULL

static void lhex(const void *p, size_t n) {
  static const char hx[] = "0123456789abcdef";
  const unsigned char *b = p;
  if (n > 64) {
    lput("#%zu:%016llx:", n, (unsigned long long)hash_bytes(HASH_INIT, p, n));
    n = 8;
  }
  if (n == 0) {
    lput("''");
    return;
  }
  if (llen + 2 * n + 4 >= sizeof lbuf) return;
  for (size_t i = 0; i < n; i++) {
    lbuf[llen++] = hx[b[i] >> 4];
    lbuf[llen++] = hx[b[i] & 15];
  }
  lpartial();
}
static void lval(const char *tag, const MDB_val *v) {
  lput(" %s=", tag);
  lhex(v->mv_data, v->mv_size);
}

static const char *rcname(int rc) {
  static char b[32];
  switch (rc) {
    case 0: return "OK";
    case MDB_KEYEXIST: return "KEYEXIST";
    case MDB_NOTFOUND: return "NOTFOUND";
    case MDB_PAGE_NOTFOUND: return "PAGE_NOTFOUND";
    case MDB_CORRUPTED: return "CORRUPTED";
    case MDB_PANIC: return "PANIC";
    case MDB_VERSION_MISMATCH: return "VERSION_MISMATCH";
    case MDB_INVALID: return "INVALID";
    case MDB_MAP_FULL: return "MAP_FULL";
    case MDB_DBS_FULL: return "DBS_FULL";
    case MDB_READERS_FULL: return "READERS_FULL";
    case MDB_TLS_FULL: return "TLS_FULL";
    case MDB_TXN_FULL: return "TXN_FULL";
    case MDB_CURSOR_FULL: return "CURSOR_FULL";
    case MDB_PAGE_FULL: return "PAGE_FULL";
    case MDB_MAP_RESIZED: return "MAP_RESIZED";
    case MDB_INCOMPATIBLE: return "INCOMPATIBLE";
    case MDB_BAD_RSLOT: return "BAD_RSLOT";
    case MDB_BAD_TXN: return "BAD_TXN";
    case MDB_BAD_VALSIZE: return "BAD_VALSIZE";
    case MDB_BAD_DBI: return "BAD_DBI";
    case EINVAL: return "EINVAL";
    case EACCES: return "EACCES";
    case ENOENT: return "ENOENT";
    case ENOMEM: return "ENOMEM";
    case EEXIST: return "EEXIST";
    case EBUSY: return "EBUSY";
    case ENOSPC: return "ENOSPC";
    case EIO: return "EIO";
    case EAGAIN: return "EAGAIN";
    case ENOTDIR: return "ENOTDIR";
    case EPERM: return "EPERM";
    default: snprintf(b, sizeof b, "rc%d", rc); return b;
  }
}

/* --------------------------------------------------------------- state */

static int map_full; /* an MDB_MAP_FULL was returned: end the sequence */

static int RC(int rc) {
  lput(" -> %s", rcname(rc));
  if (rc == MDB_MAP_FULL) map_full = 1;
  return rc;
}

enum { KB, KI4, KI8 };          /* key kinds */
enum { VB, VFIX, VI4, VI8 };    /* value (duplicate) kinds */

#define MAXPOOL 8
#define RING 16
typedef struct {
  const char *name; /* NULL: main database */
  unsigned flags;   /* persistent flags it is created with */
  int kk, vk;
  unsigned vsize; /* for VFIX */
  /* handle */
  int h_valid;
  MDB_dbi dbi;
  int h_owner;      /* txn slot that opened it and has not committed, or -1 */
  uint64_t h_epoch; /* publication epoch when h_owner == -1 */
  uint32_t app_ctr, appdup_ctr;
  /* recently seen keys and values */
  unsigned char rk[RING][104];
  size_t rkn[RING];
  int nrk;
  unsigned char rv[RING][104];
  size_t rvn[RING];
  int nrv;
  /* recent (key, value) pairs of DUPSORT databases */
  unsigned char pk[RING][104], pv[RING][104];
  size_t pkn[RING], pvn[RING];
  int npair;
  int last_open_rc;
} db_t;

static db_t db[MAXPOOL];
static int ndb;
static int main_only;

#define MAXTXN 12
typedef struct {
  int used;
  MDB_txn *t;
  int rd;
  int parent, child;
  int reset;
  uint64_t epoch;
  uint64_t snap; /* ncommits when it began (read txns: or was renewed) */
} tx_t;
static tx_t tx[MAXTXN];
static int wroot = -1;
static uint64_t epoch;
static uint64_t ncommits; /* successful top-level write commits */

#define MAXCUR 12
typedef struct {
  int used;
  MDB_cursor *c;
  int tx; /* slot of its txn; -1 for a read cursor whose txn ended */
  int p;
  int rd;
  int st;       /* ST_* as of generation gen */
  uint64_t gen;
  int stale;    /* an ancestor's cursor after a child commit: never used again */
} cu_t;
static cu_t cu[MAXCUR];

/* Cursor position knowledge. LMDB 0.9.24 reads past a page's pointer array
 * in mdb_cursor_next/prev on DUPSORT databases when the cursor index is past
 * the last item (MDB_PREV* on an unpositioned cursor, MDB_NEXT* after a
 * failed MDB_SET on a positioned one, MDB_PREV* after deleting the last item):
 * the result depends on stale page bytes. So on DUPSORT cursors the relative
 * operations are only issued when the position is known to be on an item
 * (otherwise the generator positions the cursor first). Any modification
 * (wgen) makes every position unknown. */
/* ST_MISSED: a missed MDB_SET/MDB_SET_KEY on the main database. LMDB leaves
 * the cursor at a place that depends on where its leaf pages split, which the
 * shim's reserved records shift (README, "Where the shim differs", 8): the
 * next operation on such a cursor is an absolute positioning one. */
enum { ST_UNINIT, ST_VALID, ST_UNKNOWN, ST_MISSED };
static uint64_t wgen = 1;
static void touch(void) { wgen++; }
static int cur_st(int i) {
  if (cu[i].st == ST_MISSED) return ST_MISSED; /* writes elsewhere do not move it */
  return cu[i].gen == wgen ? cu[i].st : ST_UNKNOWN;
}
static void set_st(int i, int st) {
  cu[i].st = st;
  cu[i].gen = wgen;
}

static MDB_env *env;
static char seqdir[4096], envpath[4400];
static unsigned cfg_flags;
static size_t cfg_mapsize, cur_mapsize;
static int cfg_maxdbs = -1, cfg_maxreaders = -1;
static int cfg_nosubdir;
static uint64_t txnid_base;
static int ncopies;
static int userctx_marker;
static int env_rdonly;
static unsigned env_flags_now;

/* ------------------------------------------------------------ txn model */

static int innermost(void) {
  int s = wroot;
  if (s < 0) return -1;
  while (tx[s].child >= 0) s = tx[s].child;
  return s;
}
static int root_of(int s) {
  while (tx[s].parent >= 0) s = tx[s].parent;
  return s;
}
static int anc_or_self(int a, int s) {
  for (; s >= 0; s = tx[s].parent)
    if (s == a) return 1;
  return 0;
}
static int tx_alloc(void) {
  for (int i = 0; i < MAXTXN; i++)
    if (!tx[i].used) {
      memset(&tx[i], 0, sizeof tx[i]);
      tx[i].parent = tx[i].child = -1;
      return i;
    }
  return -1;
}
static int nread(void) {
  int n = 0;
  for (int i = 0; i < MAXTXN; i++)
    if (tx[i].used && tx[i].rd) n++;
  return n;
}
static int pick_read(int want_active) {
  int c[MAXTXN], n = 0;
  for (int i = 0; i < MAXTXN; i++)
    if (tx[i].used && tx[i].rd && (!want_active || !tx[i].reset)) c[n++] = i;
  return n ? c[rn(n)] : -1;
}

/* handle usable in txn s (LMDB defines its use there) */
static int usable(int p, int s) {
  if (!db[p].h_valid) return 0;
  if (p == 0) return 1;
  if (db[p].h_owner >= 0) return anc_or_self(db[p].h_owner, s);
  return db[p].h_epoch <= tx[root_of(s)].epoch;
}
/* family (root slot) holding unpublished handles, or -1 */
static int pending_family(void) {
  for (int p = 1; p < ndb; p++)
    if (db[p].h_valid && db[p].h_owner >= 0) return root_of(db[p].h_owner);
  return -1;
}
/* may txn s open a handle that is not open yet? */
static int may_open_new(int s) {
  int pf = pending_family();
  if (pf >= 0 && pf != root_of(s)) return 0;
  if (tx[s].rd && wroot >= 0) return 0;
  /* a read txn commit publishes its handles: only for databases that exist
   * in the latest state (no write commit since its snapshot) */
  if (tx[s].rd && tx[s].snap != ncommits) return 0;
  return 1;
}

/* txn s and its descendants ended; committed: handles go to the parent (or
 * are published); otherwise they are closed. Cursors of those txns are freed
 * (write) or become dead (read). */
static void end_txn_model(int s, int committed) {
  touch();
  int c = tx[s].child;
  if (c >= 0) end_txn_model(c, committed);
  int par = tx[s].parent;
  for (int p = 1; p < ndb; p++) {
    if (!db[p].h_valid || db[p].h_owner != s) continue;
    if (!committed)
      db[p].h_valid = 0;
    else if (par >= 0)
      db[p].h_owner = par;
    else {
      db[p].h_owner = -1;
      db[p].h_epoch = epoch + 1;
    }
  }
  if (committed && par < 0) epoch++;
  if (committed && par < 0 && !tx[s].rd) ncommits++;
  for (int i = 0; i < MAXCUR; i++) {
    if (!cu[i].used || cu[i].tx != s) continue;
    if (cu[i].rd)
      cu[i].tx = -1;
    else
      cu[i].used = 0;
  }
  if (par >= 0)
    tx[par].child = -1;
  else if (s == wroot)
    wroot = -1;
  tx[s].used = 0;
}

static void reset_txn_model(int s) {
  touch();
  for (int p = 1; p < ndb; p++)
    if (db[p].h_valid && db[p].h_owner == s) db[p].h_valid = 0;
  for (int i = 0; i < MAXCUR; i++)
    if (cu[i].used && cu[i].tx == s) cu[i].tx = -1;
  tx[s].reset = 1;
}

/* ---------------------------------------------------------- generators */

static const char alpha[] = {'^', '_', '`', 'a', 'b'};
static const char *special_keys[] = {"_trlmdb", "_trlmdb^", "_trlmdb`", "_trlmda", "_trlmdc",
                                     "_trlmd",  "_trlmdb\x7f", "_",  "__", "_trlmdb_x",
                                     "_trlmdb_time", "_trlmdb_recent", "_trlmdb_meta"};
static const char *name_cands[] = {"a",        "b",        "_",       "^",      "`",
                                   "_trlmdb",  "_trlmdb^", "_trlmdb`", "_trlmda", "_trlmdc",
                                   "dup",      "zz",       "ints",    "\xff\xfe", "_trlmd"};

static void ring_push(unsigned char (*r)[104], size_t *rn_, int *cnt, const void *p, size_t n) {
  if (n > 100) return;
  int i = (*cnt)++ % RING;
  if (n) memcpy(r[i], p, n);
  rn_[i] = n;
}
static void remember_key(int p, const MDB_val *k) {
  if (db[p].kk != KB && k->mv_size != (db[p].kk == KI4 ? 4u : 8u)) return;
  ring_push(db[p].rk, db[p].rkn, &db[p].nrk, k->mv_data, k->mv_size);
}
static void remember_val(int p, const MDB_val *v) {
  if (!(db[p].flags & MDB_DUPSORT)) return;
  ring_push(db[p].rv, db[p].rvn, &db[p].nrv, v->mv_data, v->mv_size);
}
static void remember_pair(int p, const MDB_val *k, const MDB_val *v) {
  db_t *d = &db[p];
  if (!(d->flags & MDB_DUPSORT) || k->mv_size > 100 || v->mv_size > 100) return;
  if (d->kk != KB && k->mv_size != (d->kk == KI4 ? 4u : 8u)) return;
  int i = d->npair++ % RING;
  if (k->mv_size) memcpy(d->pk[i], k->mv_data, k->mv_size);
  d->pkn[i] = k->mv_size;
  if (v->mv_size) memcpy(d->pv[i], v->mv_data, v->mv_size);
  d->pvn[i] = v->mv_size;
}

static void put_be(unsigned char *b, uint64_t v, int n) {
  for (int i = n - 1; i >= 0; i--) {
    b[i] = (unsigned char)v;
    v >>= 8;
  }
}
static void reverse(unsigned char *b, size_t n) {
  for (size_t i = 0; i < n / 2; i++) {
    unsigned char t = b[i];
    b[i] = b[n - 1 - i];
    b[n - 1 - i] = t;
  }
}
static size_t gen_int(unsigned char *k, int kk, int append, uint32_t *ctr) {
  uint64_t v;
  if (append)
    v = (kk == KI4 ? 1000000u : (1ULL << 40)) + (*ctr)++;
  else if (pct(70))
    v = rn(16);
  else if (pct(50))
    v = (uint32_t)rnd64();
  else
    v = kk == KI4 ? 0xffffffffu - rn(3) : 0xffffffffULL + rn(3);
  if (kk == KI4) {
    unsigned int u = (unsigned int)v;
    memcpy(k, &u, 4);
    return 4;
  }
  size_t z = (size_t)v;
  memcpy(k, &z, 8);
  return 8;
}

/* err: 0 no error keys; 1 may be 0-length; 2 may be 0-length or 512+ */
static size_t gen_key(int p, unsigned char *k, int err, int append) {
  db_t *d = &db[p];
  if (err && pct(3)) {
    if (err == 1 || pct(50)) return 0;
    size_t n = 512 + rn(200);
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)('a' + rn(3));
    return n;
  }
  if (d->kk != KB) {
    if (!append && d->nrk && pct(40)) {
      int i = rn(d->nrk < RING ? d->nrk : RING);
      memcpy(k, d->rk[i], d->rkn[i]);
      return d->rkn[i];
    }
    return gen_int(k, d->kk, append, &d->app_ctr);
  }
  size_t n;
  if (append && pct(80)) {
    k[0] = 0xff;
    k[1] = 0xff;
    put_be(k + 2, d->app_ctr++, 4);
    n = 6;
    if (d->flags & MDB_REVERSEKEY) reverse(k, n);
    return n;
  }
  unsigned r = rn(100);
  if (r < 45) {
    n = 1 + rn(2);
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)alpha[rn(5)];
  } else if (r < 55) {
    n = 3 + rn(4);
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)alpha[rn(5)];
  } else if (r < 65) {
    const char *s = special_keys[rn(sizeof special_keys / sizeof *special_keys)];
    n = strlen(s);
    memcpy(k, s, n);
  } else if (r < 69) {
    int q = 1 + rn(MAXPOOL - 1);
    const char *s = q < ndb ? db[q].name : "a";
    n = strlen(s);
    memcpy(k, s, n);
  } else if (r < 77) {
    n = 1 + rn(16);
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)rnd64();
  } else if (r < 78) {
    n = 17 + rn(84);
    for (size_t i = 0; i < n; i++) k[i] = (unsigned char)rnd64();
  } else if (d->nrk) {
    int i = rn(d->nrk < RING ? d->nrk : RING);
    n = d->rkn[i];
    memcpy(k, d->rk[i], n);
  } else {
    n = 1;
    k[0] = 'a';
  }
  if (p == 0 && n >= 8 && memcmp(k, "_trlmdb_", 8) == 0) k[7] = '`';
  return n;
}

static void fill_rand(unsigned char *v, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    uint64_t r = rnd64();
    memcpy(v + i, &r, 8);
  }
  for (; i < n; i++) v[i] = (unsigned char)rnd64();
}

/* a value (or duplicate) for database p; err: may be an invalid size */
static size_t gen_val(int p, unsigned char *v, int err, int appenddup) {
  db_t *d = &db[p];
  if (!(d->flags & MDB_DUPSORT)) {
    unsigned r = rn(100);
    size_t n;
    if (r < 5)
      n = 0;
    else if (r < 75)
      n = 1 + rn(16);
    else if (r < 90)
      n = 17 + rn(184);
    else
      n = 500 + rn(4500);
    if (n <= 16 && pct(50))
      for (size_t i = 0; i < n; i++) v[i] = (unsigned char)alpha[rn(5)];
    else
      fill_rand(v, n);
    return n;
  }
  if (!appenddup && d->nrv && pct(30)) {
    int i = rn(d->nrv < RING ? d->nrv : RING);
    memcpy(v, d->rv[i], d->rvn[i]);
    return d->rvn[i];
  }
  switch (d->vk) {
    case VI4:
    case VI8:
      return gen_int(v, d->vk == VI4 ? KI4 : KI8, appenddup, &d->appdup_ctr);
    case VFIX: {
      size_t n = d->vsize;
      memset(v, 0, n);
      if (appenddup) {
        memset(v, 0xff, n);
        uint32_t c = d->appdup_ctr++;
        for (size_t i = 0; i < n && i < 3; i++) v[n - 1 - i] = (unsigned char)(c >> (8 * i));
      } else if (pct(80)) {
        v[0] = (unsigned char)alpha[rn(5)];
        if (n > 1) v[n - 1] = (unsigned char)rn(4);
      } else
        fill_rand(v, n);
      if (d->flags & MDB_REVERSEDUP) reverse(v, n);
      return n;
    }
    default: {
      size_t n;
      if (err && pct(3)) {
        n = 512 + rn(100);
        fill_rand(v, n);
        return n;
      }
      if (appenddup) {
        v[0] = 0xff;
        v[1] = 0xff;
        put_be(v + 2, d->appdup_ctr++, 4);
        if (d->flags & MDB_REVERSEDUP) reverse(v, 6);
        return 6;
      }
      /* never 0 bytes: LMDB 0.9.24 loses a 0-byte single value when it
       * converts it into a duplicate set (mdb_cursor_put uses its size as a
       * flag) and then reads freed memory on MDB_APPENDDUP */
      unsigned r = rn(100);
      if (r < 75) {
        n = 1 + rn(3);
        for (size_t i = 0; i < n; i++) v[i] = (unsigned char)alpha[rn(5)];
        return n;
      } else if (r < 97)
        n = 1 + rn(40);
      else
        n = 100 + rn(412);
      fill_rand(v, n);
      return n;
    }
  }
}

/* ------------------------------------------------------------- printing */

/* The MDB_db record of a named database, read from the main database: only
 * md_pad, md_flags and md_entries are printed (the page fields differ). */
static int is_pool_name(const MDB_val *k) {
  for (int q = 1; q < MAXPOOL && q < ndb; q++)
    if (db[q].name && strlen(db[q].name) == k->mv_size && !memcmp(db[q].name, k->mv_data, k->mv_size))
      return 1;
  for (size_t i = 0; i < sizeof name_cands / sizeof *name_cands; i++)
    if (strlen(name_cands[i]) == k->mv_size && !memcmp(name_cands[i], k->mv_data, k->mv_size)) return 1;
  return 0;
}
#define MDB_DB_SIZE 48
static void lkv(int p, const MDB_val *k, const MDB_val *d) {
  if (k) lval("k", k);
  if (!d) return;
  /* without the key (MDB_FIRST with a NULL key...) a 48-byte value of the
   * main database may be a record: mask it too */
  if (p == 0 && d->mv_size == MDB_DB_SIZE && (!k || is_pool_name(k))) {
    const unsigned char *b = d->mv_data;
    lput(" d=subdb:");
    lhex(b, 6);
    lput(":");
    lhex(b + 32, 8);
    return;
  }
  lval("d", d);
}
static uint64_t hash_kv(uint64_t h, int p, const MDB_val *k, const MDB_val *d) {
  h = hash_u64(h, k->mv_size);
  h = hash_bytes(h, k->mv_data, k->mv_size);
  if (p == 0 && d->mv_size == MDB_DB_SIZE && is_pool_name(k)) {
    /* md_pad and md_flags only: the record's md_entries is rewritten by the
     * commit, and digests are taken just before it (the database's content
     * is hashed on its own) */
    h = hash_bytes(h, "subdb", 5);
    return hash_bytes(h, d->mv_data, 6);
  }
  h = hash_u64(h, d->mv_size);
  return hash_bytes(h, d->mv_data, d->mv_size);
}

static void ltx(int s) { lput(" T%d", s); }
static void ldb(int p) { lput(" D%d", p); }

/* ------------------------------------------------------------- digest */

static int open_handle(int s, int p, unsigned flags, int print);

/* hash of everything in txn s's view: every pool database, its flags, every
 * key/value. Opens the handles it needs (like any program would). */
static uint64_t digest(int s) {
  uint64_t h = HASH_INIT;
  MDB_txn *t = tx[s].t;
  for (int p = 0; p < ndb; p++) {
    h = hash_u64(h, (uint64_t)p);
    if (!usable(p, s)) {
      if (db[p].h_valid || !may_open_new(s)) {
        h = hash_bytes(h, "skip", 4);
        if (opt_dump) printf("DUMP D%d skip\n", p);
        continue;
      }
      int rc = open_handle(s, p, 0, 0);
      if (rc) {
        h = hash_u64(h, (uint64_t)rc);
        if (opt_dump) printf("DUMP D%d open %s\n", p, rcname(rc));
        continue;
      }
    }
    unsigned fl = 0;
    int rc = mdb_dbi_flags(t, db[p].dbi, &fl);
    h = hash_u64(h, (uint64_t)rc);
    h = hash_u64(h, fl);
    MDB_cursor *c;
    rc = mdb_cursor_open(t, db[p].dbi, &c);
    h = hash_u64(h, (uint64_t)rc);
    if (opt_dump) printf("DUMP D%d flags=%x open=%s\n", p, fl, rcname(rc));
    if (rc) continue;
    MDB_val k, d;
    uint64_t n = 0;
    while ((rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) == 0) {
      h = hash_kv(h, p, &k, &d);
      n++;
      if (opt_dump) {
        lput("DUMP D%d", p);
        lkv(p, &k, &d);
        lend();
      }
    }
    h = hash_u64(h, (uint64_t)rc);
    h = hash_u64(h, n);
    mdb_cursor_close(c);
  }
  return h;
}

/* ------------------------------------------------------------- handles */

/* mdb_dbi_open of pool database p in txn s (flags as given, p>0) */
static int open_handle(int s, int p, unsigned flags, int print) {
  MDB_dbi d = 0;
  int was = usable(p, s);
  touch();
  int rc = mdb_dbi_open(tx[s].t, db[p].name, flags, &d);
  db[p].last_open_rc = rc;
  if (print) {
    lput("dbi_open");
    ltx(s);
    ldb(p);
    lput(" f=%x", flags);
    RC(rc);
  } else if (rc == MDB_MAP_FULL)
    map_full = 1;
  if (rc == 0) {
    if (was) {
      if (print) lput(" same=%d", d == db[p].dbi);
    } else {
      db[p].h_valid = 1;
      db[p].dbi = d;
      db[p].h_owner = s;
    }
  }
  if (print) lend();
  return rc;
}

static int choose_db(int s) {
  /* a usable pool database, mostly a named one; sometimes opens one first */
  int c[MAXPOOL], n = 0;
  int named = 0;
  for (int p = 1; p < ndb; p++) named += usable(p, s);
  if (ndb > 1 && ((opt_avoid_main && !named) || pct(25)) && (tx[s].rd || tx[s].child < 0)) {
    int p = 1 + (int)rn((unsigned)ndb - 1);
    int retry = db[p].last_open_rc == 0 || pct(15) || opt_avoid_main;
    if (!db[p].h_valid && retry && may_open_new(s) &&
        open_handle(s, p, tx[s].rd ? 0 : MDB_CREATE | db[p].flags, 1) == 0)
      return p;
  }
  for (int p = 0; p < ndb; p++)
    if (usable(p, s)) c[n++] = p;
  if (n > 1 && (opt_avoid_main || pct(70))) return c[1 + rn(n - 1)];
  if (opt_avoid_main) return -1;
  return c[rn(n)];
}

/* ------------------------------------------------------------- env */

static void mkdir_p(const char *path) {
  char b[4300];
  snprintf(b, sizeof b, "%s", path);
  for (char *q = b + 1; *q; q++)
    if (*q == '/') {
      *q = 0;
      mkdir(b, 0755);
      *q = '/';
    }
  mkdir(b, 0755);
}
static int rm_cb(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}
static void rm_rf(const char *path) { nftw(path, rm_cb, 16, FTW_DEPTH | FTW_PHYS); }

static void print_info(void) {
  MDB_envinfo info;
  int rc = mdb_env_info(env, &info);
  lput("env_info");
  RC(rc);
  if (!rc)
    lput(" mapsize=%zu maxreaders=%u numreaders=%u txnid=+%lld", info.me_mapsize, info.me_maxreaders,
         info.me_numreaders, (long long)(info.me_last_txnid - txnid_base));
  lend();
}

static int count_msg(const char *msg, void *ctx) {
  (void)msg;
  (*(int *)ctx)++;
  return 0;
}

static void print_committed(uint64_t h) { printf("COMMITTED %016llx\n", (unsigned long long)h); }

/* a read txn at a quiet point: digest of the committed content */
static int quiet_digest(const char *tag) {
  MDB_txn *t;
  int rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
  if (rc) {
    printf("%s begin %s\n", tag, rcname(rc));
    return rc;
  }
  int s = tx_alloc();
  tx[s].used = 1;
  tx[s].t = t;
  tx[s].rd = 1;
  tx[s].epoch = epoch;
  tx[s].snap = ncommits;
  uint64_t h = digest(s);
  rc = mdb_txn_commit(t);
  end_txn_model(s, rc == 0);
  printf("%s %016llx%s\n", tag, (unsigned long long)h, rc ? " commit-failed" : "");
  return 0;
}

static int env_open_now(unsigned flags, size_t mapsize) {
  int rc = mdb_env_create(&env);
  lput("env_create");
  RC(rc);
  lend();
  if (rc) return rc;
  if (mapsize) {
    rc = mdb_env_set_mapsize(env, mapsize);
    lput("env_set_mapsize %zu", mapsize);
    RC(rc);
    lend();
  }
  if (cfg_maxdbs >= 0) {
    rc = mdb_env_set_maxdbs(env, (MDB_dbi)cfg_maxdbs);
    lput("env_set_maxdbs %d", cfg_maxdbs);
    RC(rc);
    lend();
  }
  if (cfg_maxreaders >= 0) {
    rc = mdb_env_set_maxreaders(env, (unsigned)cfg_maxreaders);
    lput("env_set_maxreaders %d", cfg_maxreaders);
    RC(rc);
    lend();
  }
  rc = mdb_env_open(env, envpath, flags, 0644);
  lput("env_open f=%x", flags);
  RC(rc);
  lend();
  if (rc) {
    mdb_env_close(env);
    env = NULL;
    printf("env_close\n");
    return rc;
  }
  env_rdonly = !!(flags & MDB_RDONLY);
  env_flags_now = flags;
  MDB_envinfo info;
  if (mdb_env_info(env, &info) == 0) txnid_base = info.me_last_txnid;
  cur_mapsize = info.me_mapsize;
  print_info();
  if (pct(25)) {
    /* before any mdb_dbi_open: LMDB sets the main database's comparator
     * there, and mdb_env_stat must not need it */
    MDB_stat st;
    int rc2 = mdb_env_stat(env, &st);
    lput("env_stat_first");
    RC(rc2);
    if (!rc2) lput(" psize=%u entries=%zu", st.ms_psize, st.ms_entries);
    lend();
  }
  for (int p = 0; p < ndb; p++) db[p].h_valid = 0;
  /* main database handle: always valid */
  MDB_txn *t;
  rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &t);
  lput("txn_begin_main_rd");
  RC(rc);
  lend();
  if (rc) return rc;
  rc = mdb_dbi_open(t, NULL, 0, &db[0].dbi);
  lput("dbi_open main");
  RC(rc);
  lend();
  mdb_txn_abort(t);
  if (rc) return rc;
  db[0].h_valid = 1;
  db[0].h_owner = -1;
  db[0].h_epoch = 0;
  return 0;
}

static unsigned rand_env_flags(void) {
  unsigned f = 0;
  if (pct(60)) f |= MDB_NOSYNC;
  if (pct(20)) f |= MDB_NOMETASYNC;
  if (pct(25)) f |= MDB_WRITEMAP;
  if ((f & MDB_WRITEMAP) && pct(40)) f |= MDB_MAPASYNC;
  if (pct(50)) f |= MDB_NOTLS;
  if (pct(20)) f |= MDB_NORDAHEAD;
  if (pct(20)) f |= MDB_NOMEMINIT;
  if (pct(5)) f |= MDB_NOLOCK;
  if (cfg_nosubdir) f |= MDB_NOSUBDIR;
  return f;
}

/* close every cursor and txn (printing), leaving the env open */
static void close_all(void) {
  if (wroot >= 0) {
    int s = wroot;
    int commit = !map_full && pct(50);
    if (commit) {
      int in = innermost();
      uint64_t h = digest(in);
      int rc = mdb_txn_commit(tx[s].t);
      lput("txn_commit");
      ltx(s);
      RC(rc);
      lend();
      end_txn_model(s, rc == 0);
      if (rc == 0) print_committed(h);
    } else {
      mdb_txn_abort(tx[s].t);
      lput("txn_abort");
      ltx(s);
      lend();
      end_txn_model(s, 0);
    }
  }
  for (int s = 0; s < MAXTXN; s++) {
    if (!tx[s].used) continue;
    mdb_txn_abort(tx[s].t);
    lput("txn_abort");
    ltx(s);
    lend();
    end_txn_model(s, 0);
  }
  for (int i = 0; i < MAXCUR; i++) {
    if (!cu[i].used) continue;
    mdb_cursor_close(cu[i].c);
    lput("cursor_close C%d", i);
    lend();
    cu[i].used = 0;
  }
}

static void env_close_now(void) {
  close_all();
  mdb_env_close(env);
  env = NULL;
  printf("env_close\n");
}

static int quiet(void) {
  for (int s = 0; s < MAXTXN; s++)
    if (tx[s].used) return 0;
  return 1;
}

static void op_reopen(void) {
  env_close_now();
  if (map_full) return;
  unsigned f = rand_env_flags();
  if (pct(12)) f |= MDB_RDONLY;
  size_t ms = 0;
  if (pct(30)) {
    ms = cur_mapsize + (pct(50) ? 0 : 4096u * (1 + rn(64)));
    cfg_mapsize = ms;
  }
  cfg_flags = f;
  printf("REOPEN\n");
  if (env_open_now(f, ms)) return;
  quiet_digest("COMMITTED");
}

static void op_env_misc(void) {
  int rc;
  unsigned r = rn(14);
  switch (r) {
    case 0: {
      MDB_stat st;
      rc = mdb_env_stat(env, &st);
      lput("env_stat");
      RC(rc);
      if (!rc) lput(" psize=%u entries=%zu", st.ms_psize, st.ms_entries);
      lend();
      break;
    }
    case 1: print_info(); break;
    case 2: {
      unsigned f = 0;
      rc = mdb_env_get_flags(env, &f);
      lput("env_get_flags");
      RC(rc);
      lput(" f=%x", f);
      lend();
      break;
    }
    case 3: {
      static const unsigned ch[] = {MDB_NOSYNC, MDB_NOMETASYNC, MDB_MAPASYNC, MDB_NOMEMINIT,
                                    MDB_WRITEMAP, MDB_NOTLS, MDB_RDONLY};
      unsigned f = ch[rn(7)];
      int onoff = (int)rn(2);
      rc = mdb_env_set_flags(env, f, onoff);
      lput("env_set_flags f=%x on=%d", f, onoff);
      RC(rc);
      lend();
      break;
    }
    case 4: {
      lput("env_get_maxkeysize %d", mdb_env_get_maxkeysize(env));
      lend();
      unsigned mr = 0;
      rc = mdb_env_get_maxreaders(env, &mr);
      lput("env_get_maxreaders");
      RC(rc);
      lput(" %u", mr);
      lend();
      break;
    }
    case 5: {
      int force = (int)rn(2);
      rc = mdb_env_sync(env, force);
      lput("env_sync %d", force);
      RC(rc);
      lend();
      break;
    }
    case 6: {
      int dead = -1;
      rc = mdb_reader_check(env, &dead);
      lput("reader_check");
      RC(rc);
      lput(" dead=%d", dead);
      lend();
      break;
    }
    case 7: {
      rc = mdb_env_set_maxdbs(env, 10);
      lput("env_set_maxdbs_after_open");
      RC(rc);
      lend();
      rc = mdb_env_set_maxreaders(env, 10);
      lput("env_set_maxreaders_after_open");
      RC(rc);
      lend();
      break;
    }
    case 8: {
      const char *pth = NULL;
      rc = mdb_env_get_path(env, &pth);
      lput("env_get_path");
      RC(rc);
      lput(" same=%d", pth && !strcmp(pth, envpath));
      lend();
      mdb_filehandle_t fd = -1;
      rc = mdb_env_get_fd(env, &fd);
      lput("env_get_fd");
      RC(rc);
      lput(" valid=%d", fd >= 0);
      lend();
      break;
    }
    case 9: {
      void *prev = mdb_env_get_userctx(env);
      rc = mdb_env_set_userctx(env, &userctx_marker);
      lput("env_userctx");
      RC(rc);
      lput(" prev=%s now=%d", prev == NULL ? "null" : prev == &userctx_marker ? "marker" : "other",
           mdb_env_get_userctx(env) == &userctx_marker);
      lend();
      break;
    }
    case 10: {
      int cnt = 0;
      rc = mdb_reader_list(env, count_msg, &cnt);
      lput("reader_list");
      RC(rc);
      lput(" lines=%d", cnt);
      lend();
      break;
    }
    case 11: {
      int maj, min, pat;
      const char *v = mdb_version(&maj, &min, &pat);
      lput("version %d.%d.%d %s", maj, min, pat, v ? v : "(null)");
      lend();
      break;
    }
    case 12: {
      static const int codes[] = {0,           MDB_KEYEXIST, MDB_NOTFOUND, MDB_MAP_FULL,
                                  MDB_BAD_VALSIZE, MDB_BAD_DBI, MDB_INCOMPATIBLE, EINVAL,
                                  EACCES,      ENOENT,       -30700,       -30800};
      int c = codes[rn(sizeof codes / sizeof *codes)];
      const char *m = mdb_strerror(c);
      lput("strerror %d %s", c, m ? m : "(null)");
      lend();
      break;
    }
    default: {
      /* quiet-point operations */
      if (!quiet() && pct(40)) close_all();
      if (!quiet()) break;
      if (pct(50)) {
        size_t ms = cur_mapsize + 4096u * rn(32);
        rc = mdb_env_set_mapsize(env, ms);
        lput("env_set_mapsize_live %zu", ms);
        RC(rc);
        lend();
        if (!rc) cur_mapsize = ms;
        print_info();
      } else if (ncopies < 2) {
        char cdir[4400], cpath[4500];
        snprintf(cdir, sizeof cdir, "%s/copy%d", seqdir, ncopies++);
        mkdir_p(cdir);
        snprintf(cpath, sizeof cpath, "%s%s", cdir, cfg_nosubdir ? "/data.mdb" : "");
        unsigned kind = rn(3), cf = pct(50) ? MDB_CP_COMPACT : 0;
        if (kind == 0) {
          rc = mdb_env_copy(env, cpath);
          lput("env_copy");
        } else if (kind == 1) {
          rc = mdb_env_copy2(env, cpath, cf);
          lput("env_copy2 f=%x", cf);
        } else {
          char fpath[4600];
          snprintf(fpath, sizeof fpath, "%s/data.mdb", cdir);
          int fd = open(fpath, O_WRONLY | O_CREAT | O_EXCL, 0644);
          rc = mdb_env_copyfd2(env, fd, cf);
          if (fd >= 0) close(fd);
          lput("env_copyfd2 f=%x", cf);
        }
        RC(rc);
        lend();
        if (rc) break;
        /* open the copy and digest it */
        MDB_env *e2;
        if (mdb_env_create(&e2)) break;
        if (cfg_maxdbs >= 0) mdb_env_set_maxdbs(e2, (MDB_dbi)cfg_maxdbs);
        rc = mdb_env_open(e2, cpath, (cfg_nosubdir ? MDB_NOSUBDIR : 0) | MDB_RDONLY, 0644);
        lput("copy_open");
        RC(rc);
        lend();
        if (!rc) {
          MDB_env *save = env;
          env = e2;
          /* handles belong to the main env: run the digest with a fresh pool state */
          db_t saved[MAXPOOL];
          memcpy(saved, db, sizeof saved);
          for (int p = 0; p < ndb; p++) db[p].h_valid = 0;
          MDB_txn *t;
          if (mdb_txn_begin(e2, NULL, MDB_RDONLY, &t) == 0) {
            mdb_dbi_open(t, NULL, 0, &db[0].dbi);
            db[0].h_valid = 1;
            db[0].h_owner = -1;
            db[0].h_epoch = 0;
            int s = tx_alloc();
            tx[s].used = 1;
            tx[s].t = t;
            tx[s].rd = 1;
            tx[s].epoch = epoch;
            tx[s].snap = ncommits;
            uint64_t h = digest(s);
            mdb_txn_abort(t);
            tx[s].used = 0;
            printf("COPY_DIGEST %016llx\n", (unsigned long long)h);
          }
          memcpy(db, saved, sizeof saved);
          env = save;
        }
        mdb_env_close(e2);
      }
      break;
    }
  }
}

/* ------------------------------------------------------------- txns */

static int depth_of(int s) {
  int d = 0;
  for (; s >= 0; s = tx[s].parent) d++;
  return d;
}

static void print_txnid(int s) {
  size_t id = mdb_txn_id(tx[s].t);
  lput("txn_id");
  ltx(s);
  lput(" +%lld", (long long)(id - txnid_base));
  lend();
}

static void begin_top_write(void) {
  if (pending_family() >= 0) return; /* a read txn has unpublished handles */
  /* MDB_NOLOCK: no reader table, so a commit may reuse pages of a live read
   * snapshot; never write while a read txn is active. */
  if ((env_flags_now & MDB_NOLOCK) && pick_read(1) >= 0) return;
  static const unsigned fl[] = {0, 0, MDB_NOSYNC, MDB_NOMETASYNC};
  unsigned f = fl[rn(4)];
  MDB_txn *t;
  int s = tx_alloc();
  if (s < 0) return;
  int rc = mdb_txn_begin(env, NULL, f, &t);
  lput("txn_begin_w");
  ltx(s);
  lput(" f=%x", f);
  RC(rc);
  lend();
  if (rc) return;
  tx[s].used = 1;
  tx[s].t = t;
  tx[s].epoch = epoch;
  tx[s].snap = ncommits;
  wroot = s;
  if (pct(30)) print_txnid(s);
}

static void commit_write(int s) {
  int is_root = tx[s].parent < 0;
  uint64_t h = 0;
  if (is_root) h = digest(innermost());
  int rc = mdb_txn_commit(tx[s].t);
  lput("txn_commit");
  ltx(s);
  RC(rc);
  lend();
  end_txn_model(s, rc == 0);
  if (is_root && rc == 0) print_committed(h);
  if (!is_root && rc == 0) {
    /* LMDB 0.9.24: an unpositioned cursor of an ancestor keeps a pointer to
     * the ancestor's dirty root page, which the child's commit frees when the
     * child has its own copy (mdb_txn_commit, "Merge our dirty list"); its
     * next positioning reads freed memory. Such cursors are left alone until
     * their txn ends. */
    for (int i = 0; i < MAXCUR; i++)
      if (cu[i].used && !cu[i].rd && cu[i].tx >= 0) cu[i].stale = 1;
  }
}

static void op_txn_write(void) {
  if (wroot < 0) {
    begin_top_write();
    return;
  }
  int in = innermost();
  unsigned r = rn(100);
  if (r < 30) {
    int par = in;
    if (pct(10)) par = wroot; /* may have a child: MDB_BAD_TXN */
    if (depth_of(par) >= 5) return;
    int s = tx_alloc();
    if (s < 0) return;
    unsigned f = pct(5) ? MDB_RDONLY : 0;
    MDB_txn *t;
    int rc = mdb_txn_begin(env, tx[par].t, f, &t);
    lput("txn_begin_child");
    ltx(s);
    lput(" parent=T%d f=%x", par, f);
    RC(rc);
    lend();
    if (rc) return;
    touch();
    tx[s].used = 1;
    tx[s].t = t;
    tx[s].parent = par;
    tx[par].child = s;
    tx[s].epoch = epoch;
    tx[s].snap = ncommits;
    if (pct(20)) print_txnid(s);
  } else if (r < 65) {
    int s = in;
    if (pct(25)) {
      /* some txn of the chain (commits its children first) */
      int d = (int)rn((unsigned)depth_of(in));
      for (; d > 0; d--) s = tx[s].parent;
    }
    commit_write(s);
  } else if (r < 90) {
    int s = in;
    if (pct(25)) s = wroot;
    mdb_txn_abort(tx[s].t);
    lput("txn_abort");
    ltx(s);
    lend();
    end_txn_model(s, 0);
  } else if (r < 95) {
    print_txnid(in);
    lput("txn_env");
    ltx(in);
    lput(" same=%d", mdb_txn_env(tx[in].t) == env);
    lend();
  } else {
    int rc = mdb_txn_renew(tx[in].t);
    lput("txn_renew_write");
    ltx(in);
    RC(rc);
    lend();
  }
}

static void op_txn_read(void) {
  unsigned r = rn(100);
  int s;
  if (r < 35 || nread() == 0) {
    if (nread() >= 5) return;
    s = tx_alloc();
    if (s < 0) return;
    MDB_txn *t;
    MDB_txn *par = NULL;
    int rs = -1;
    if (pct(4) && (rs = pick_read(1)) >= 0) par = tx[rs].t; /* nested read: EINVAL */
    int rc = mdb_txn_begin(env, par, MDB_RDONLY, &t);
    lput("txn_begin_r");
    ltx(s);
    if (par) lput(" parent=T%d", rs);
    RC(rc);
    lend();
    if (rc) return;
    tx[s].used = 1;
    tx[s].t = t;
    tx[s].rd = 1;
    tx[s].epoch = epoch;
    tx[s].snap = ncommits;
    if (pct(30)) print_txnid(s);
    return;
  }
  s = pick_read(0);
  if (r < 50) {
    if (tx[s].reset) {
      int rc = mdb_txn_renew(tx[s].t);
      lput("txn_renew");
      ltx(s);
      RC(rc);
      lend();
      if (rc == 0) {
        tx[s].reset = 0;
        tx[s].epoch = epoch;
        tx[s].snap = ncommits;
        if (pct(50)) print_txnid(s);
      }
    } else if (pct(80)) {
      mdb_txn_reset(tx[s].t);
      lput("txn_reset");
      ltx(s);
      lend();
      reset_txn_model(s);
    } else {
      int rc = mdb_txn_renew(tx[s].t); /* active: EINVAL */
      lput("txn_renew_active");
      ltx(s);
      RC(rc);
      lend();
    }
  } else if (r < 75) {
    int rc = mdb_txn_commit(tx[s].t);
    lput("txn_commit_r");
    ltx(s);
    RC(rc);
    lend();
    end_txn_model(s, rc == 0);
  } else if (r < 95) {
    mdb_txn_abort(tx[s].t);
    lput("txn_abort_r");
    ltx(s);
    lend();
    end_txn_model(s, 0);
  } else if (!tx[s].reset) {
    print_txnid(s);
  }
}

static int pick_txn_for_data(void) {
  if (wroot >= 0 && pct(85)) return innermost();
  int r = pick_read(1);
  if (r >= 0) return r;
  if (wroot >= 0) return innermost();
  return -1;
}

/* ------------------------------------------------------------- data ops */

static _Alignas(16) unsigned char kb[1024], vb[8192], kb2[1024], vb2[8192];

static size_t key_for(int p, unsigned char *k, int append) {
  return gen_key(p, k, db[p].kk == KB ? 2 : 1, append);
}

static void after_keyexist(int p, const MDB_val *k, const MDB_val *d) {
  /* NOOVERWRITE returns the existing data */
  lkv(p, k, d);
}

static void op_put(int s) {
  int p = choose_db(s);
  if (p < 0) return;
  int dup = !!(db[p].flags & MDB_DUPSORT);
  unsigned f;
  unsigned r = rn(100);
  if (!dup) {
    f = r < 40 ? 0 : r < 55 ? MDB_NOOVERWRITE : r < 65 ? MDB_RESERVE : r < 70 ? MDB_RESERVE | MDB_NOOVERWRITE
      : r < 84 ? MDB_APPEND : r < 87 ? MDB_APPENDDUP : r < 90 ? MDB_NODUPDATA : r < 94 ? MDB_APPEND | MDB_NOOVERWRITE
      : r < 97 ? MDB_CURRENT : MDB_MULTIPLE;
  } else {
    f = r < 35 ? 0 : r < 50 ? MDB_NODUPDATA : r < 58 ? MDB_NOOVERWRITE : r < 66 ? MDB_APPEND
      : r < 82 ? MDB_APPENDDUP : r < 87 ? MDB_NOOVERWRITE | MDB_NODUPDATA : r < 92 ? MDB_APPEND | MDB_APPENDDUP
      : r < 96 ? MDB_APPENDDUP | MDB_NODUPDATA : MDB_CURRENT;
  }
  MDB_val k, d;
  k.mv_size = gen_key(p, kb, 2, (f & MDB_APPEND) && pct(80));
  k.mv_data = kb;
  d.mv_size = gen_val(p, vb, 1, (f & MDB_APPENDDUP) && pct(80));
  d.mv_data = vb;
  size_t vn = d.mv_size;
  MDB_dbi dbi = db[p].dbi;
  if (pct(1)) dbi = pct(50) ? 0 : 9999; /* FREE_DBI / out of range: EINVAL */
  lput("put");
  ltx(s);
  ldb(p);
  if (dbi != db[p].dbi) lput(" dbi=%s", dbi ? "bad" : "free");
  lput(" f=%x", f);
  lkv(p, &k, &d);
  touch();
  int rc = mdb_put(tx[s].t, dbi, &k, &d, f);
  RC(rc);
  if (rc == 0 && (f & MDB_RESERVE)) {
    lput(" reserved=%zu", d.mv_size);
    if (d.mv_size == vn) memcpy(d.mv_data, vb, vn);
  }
  if (rc == MDB_KEYEXIST) after_keyexist(p, &k, &d);
  lend();
  if (rc == 0) {
    k.mv_data = kb;
    remember_key(p, &k);
    d.mv_data = vb;
    d.mv_size = vn;
    remember_val(p, &d);
    remember_pair(p, &k, &d);
  }
}

static void op_get(int s) {
  int p = choose_db(s);
  if (p < 0) return;
  MDB_val k, d = {0, NULL};
  k.mv_size = key_for(p, kb, 0);
  k.mv_data = kb;
  unsigned r = rn(100);
  int rc;
  lput("get");
  ltx(s);
  ldb(p);
  if (r < 1) {
    lput(" nullkey");
    rc = mdb_get(tx[s].t, db[p].dbi, NULL, &d);
    RC(rc);
  } else if (r < 2) {
    lput(" nulldata");
    lkv(p, &k, NULL);
    rc = mdb_get(tx[s].t, db[p].dbi, &k, NULL);
    RC(rc);
  } else if (r < 3) {
    lput(" dbi=bad");
    rc = mdb_get(tx[s].t, pct(50) ? 0 : 9999, &k, &d);
    RC(rc);
  } else {
    lkv(p, &k, NULL);
    rc = mdb_get(tx[s].t, db[p].dbi, &k, &d);
    RC(rc);
    if (rc == 0) {
      lkv(p, &k, &d);
      remember_key(p, &k);
    }
  }
  lend();
}

static void op_del(int s) {
  int p = choose_db(s);
  if (p < 0) return;
  MDB_val k, d;
  k.mv_size = key_for(p, kb, 0);
  k.mv_data = kb;
  int with = (db[p].flags & MDB_DUPSORT) ? pct(60) : pct(20);
  d.mv_size = with ? gen_val(p, vb, 0, 0) : 0;
  d.mv_data = vb;
  if (with && db[p].npair && pct(50)) {
    int q = rn(db[p].npair < RING ? db[p].npair : RING);
    memcpy(kb, db[p].pk[q], db[p].pkn[q]);
    k.mv_size = db[p].pkn[q];
    if (db[p].pvn[q]) memcpy(vb, db[p].pv[q], db[p].pvn[q]);
    d.mv_size = db[p].pvn[q];
  }
  lput("del");
  ltx(s);
  ldb(p);
  lkv(p, &k, with ? &d : NULL);
  touch();
  int rc = mdb_del(tx[s].t, db[p].dbi, &k, with ? &d : NULL);
  RC(rc);
  lend();
}

static int cursors_on(int p) {
  for (int i = 0; i < MAXCUR; i++)
    if (cu[i].used && cu[i].p == p) return 1;
  return 0;
}

static void op_drop(int s) {
  int p = choose_db(s);
  if (p < 0) return;
  int del = pct(60) ? 0 : pct(88) ? 1 : 2;
  if (p == 0 && !main_only) {
    /* dropping the main database would delete the named databases' records:
     * only in sequences without named databases */
    return;
  }
  if (del == 1 && p > 0 && cursors_on(p)) del = 0;
  /* mdb_drop(1) closes the handle at once for the whole environment: in a
   * nested txn that aborts, the parent still holds the database as dirty and
   * its commit writes the record under whatever name the freed slot has then
   * (corrupting the environment); so only in top-level txns */
  if (del == 1 && tx[s].parent >= 0) del = 0;
  if (del == 1 && p > 0 && tx[s].child >= 0) return;
  touch();
  int rc = mdb_drop(tx[s].t, db[p].dbi, del);
  lput("drop");
  ltx(s);
  ldb(p);
  lput(" del=%d", del);
  RC(rc);
  lend();
  if (rc == 0 && del == 1 && p > 0) db[p].h_valid = 0;
}

static void op_dbi(int s) {
  unsigned r = rn(100);
  if (r < 55) {
    if (ndb < 2) {
      MDB_dbi d;
      int rc = mdb_dbi_open(tx[s].t, NULL, pct(50) ? MDB_CREATE : 0, &d);
      lput("dbi_open_main");
      ltx(s);
      RC(rc);
      lput(" same=%d", d == db[0].dbi);
      lend();
      return;
    }
    int p = 1 + rn((unsigned)ndb - 1);
    if (!tx[s].rd && tx[s].child >= 0) return;
    int was = usable(p, s);
    if (!was && (db[p].h_valid || !may_open_new(s))) return;
    unsigned q = rn(100), f;
    if (q < 65)
      f = MDB_CREATE | db[p].flags;
    else if (q < 85)
      f = 0;
    else if (q < 95)
      f = (unsigned)rnd64() & (MDB_REVERSEKEY | MDB_DUPSORT | MDB_INTEGERKEY | MDB_DUPFIXED |
                               MDB_INTEGERDUP | MDB_REVERSEDUP);
    else
      f = 0x10000000u | MDB_CREATE | db[p].flags;
    if (was && (f & MDB_CREATE)) f = (f & ~0x7eu) | db[p].flags; /* keep it sane */
    open_handle(s, p, f, 1);
  } else if (r < 60) {
    /* a name that is never created, opened without MDB_CREATE: MDB_NOTFOUND,
     * or MDB_DBS_FULL when every handle slot is in use; takes no slot */
    if (!tx[s].rd && tx[s].child >= 0) return;
    MDB_dbi d;
    int rc = mdb_dbi_open(tx[s].t, "zz-extra", 0, &d);
    lput("dbi_open_extra");
    ltx(s);
    RC(rc);
    lend();
  } else if (r < 65) {
    int p = choose_db(s);
    if (p < 0) return;
    unsigned fl = 0;
    int rc = mdb_dbi_flags(tx[s].t, db[p].dbi, &fl);
    lput("dbi_flags");
    ltx(s);
    ldb(p);
    RC(rc);
    lput(" f=%x", fl);
    lend();
  } else if (r < 80) {
    int p = choose_db(s);
    if (p < 0) return;
    MDB_stat st;
    int rc = mdb_stat(tx[s].t, db[p].dbi, &st);
    lput("stat");
    ltx(s);
    ldb(p);
    RC(rc);
    if (!rc) lput(" psize=%u entries=%zu", st.ms_psize, st.ms_entries);
    lend();
  } else if (r < 90) {
    int p = choose_db(s);
    if (p < 0) return;
    MDB_val a, b;
    int dupcmp = (db[p].flags & MDB_DUPSORT) && pct(50);
    if (dupcmp) {
      a.mv_size = gen_val(p, vb, 0, 0);
      a.mv_data = vb;
      b.mv_size = gen_val(p, vb2, 0, 0);
      b.mv_data = vb2;
    } else {
      a.mv_size = gen_key(p, kb, 0, 0);
      a.mv_data = kb;
      b.mv_size = gen_key(p, kb2, 0, 0);
      b.mv_data = kb2;
    }
    int c = dupcmp ? mdb_dcmp(tx[s].t, db[p].dbi, &a, &b) : mdb_cmp(tx[s].t, db[p].dbi, &a, &b);
    lput("%s", dupcmp ? "dcmp" : "cmp");
    ltx(s);
    ldb(p);
    lval("a", &a);
    lval("b", &b);
    lput(" -> %d", c < 0 ? -1 : c > 0);
    lend();
  } else {
    /* mdb_dbi_close at a quiet point */
    if (!quiet()) return;
    int p = (int)rn((unsigned)ndb);
    if (!db[p].h_valid || cursors_on(p)) return;
    mdb_dbi_close(env, db[p].dbi);
    lput("dbi_close");
    ldb(p);
    lend();
    if (p > 0) db[p].h_valid = 0;
  }
}

/* ------------------------------------------------------------- cursors */

static const struct {
  MDB_cursor_op op;
  const char *name;
  int w;
} cops[] = {
    {MDB_FIRST, "FIRST", 6},          {MDB_FIRST_DUP, "FIRST_DUP", 3},
    {MDB_GET_BOTH, "GET_BOTH", 4},    {MDB_GET_BOTH_RANGE, "GET_BOTH_RANGE", 4},
    {MDB_GET_CURRENT, "GET_CURRENT", 5}, {MDB_GET_MULTIPLE, "GET_MULTIPLE", 3},
    {MDB_LAST, "LAST", 5},            {MDB_LAST_DUP, "LAST_DUP", 3},
    {MDB_NEXT, "NEXT", 14},           {MDB_NEXT_DUP, "NEXT_DUP", 6},
    {MDB_NEXT_MULTIPLE, "NEXT_MULTIPLE", 3}, {MDB_NEXT_NODUP, "NEXT_NODUP", 6},
    {MDB_PREV, "PREV", 10},           {MDB_PREV_DUP, "PREV_DUP", 4},
    {MDB_PREV_NODUP, "PREV_NODUP", 5}, {MDB_SET, "SET", 6},
    {MDB_SET_KEY, "SET_KEY", 6},      {MDB_SET_RANGE, "SET_RANGE", 10},
    {MDB_PREV_MULTIPLE, "PREV_MULTIPLE", 3}, {(MDB_cursor_op)99, "BAD_OP", 1},
};

static int cursor_usable(int i) {
  if (!cu[i].used || cu[i].tx < 0 || cu[i].stale) return 0;
  if (cu[i].rd) return !tx[cu[i].tx].reset;
  return cu[i].tx == innermost();
}
static int pick_cursor(int s) {
  int c[MAXCUR], n = 0;
  for (int i = 0; i < MAXCUR; i++)
    if (cursor_usable(i) && (s < 0 || cu[i].tx == s)) c[n++] = i;
  return n ? c[rn(n)] : -1;
}

static void op_cursor_open(int s) {
  int i;
  for (i = 0; i < MAXCUR; i++)
    if (!cu[i].used) break;
  if (i == MAXCUR) return;
  int p = choose_db(s);
  if (p < 0) return;
  MDB_dbi dbi = db[p].dbi;
  int bad = pct(2);
  if (bad) dbi = 9999;
  MDB_cursor *c = NULL;
  int rc = mdb_cursor_open(tx[s].t, dbi, &c);
  lput("cursor_open C%d", i);
  ltx(s);
  ldb(p);
  if (bad) lput(" dbi=bad");
  RC(rc);
  lend();
  if (rc) return;
  cu[i].used = 1;
  cu[i].c = c;
  cu[i].tx = s;
  cu[i].p = p;
  cu[i].rd = tx[s].rd;
  cu[i].stale = 0;
  set_st(i, ST_UNINIT);
}

static int cget(int i, MDB_cursor_op op, const char *name, MDB_val *k, MDB_val *d, int kin, int din) {
  int p = cu[i].p;
  lput("cget C%d %s", i, name);
  if (kin) lkv(p, k, NULL);
  if (din && d) lval("din", d);
  if (!d) lput(" nulldata");
  if (!k) lput(" nullkey");
  int rc = mdb_cursor_get(cu[i].c, k, d, op);
  RC(rc);
  if (rc == MDB_NOTFOUND && p == 0 && (op == MDB_SET || op == MDB_SET_KEY))
    set_st(i, ST_MISSED);
  else if (rc != 0)
    set_st(i, ST_UNKNOWN);
  else if (op != MDB_GET_MULTIPLE)
    set_st(i, ST_VALID);
  if (rc == 0) {
    lkv(p, k ? k : NULL, d);
    if (k) remember_key(p, k);
    if (d && op != MDB_GET_MULTIPLE && op != MDB_NEXT_MULTIPLE && op != MDB_PREV_MULTIPLE) {
      remember_val(p, d);
      if (k && op != MDB_SET && op != MDB_GET_BOTH) remember_pair(p, k, d);
    }
  }
  lend();
  return rc;
}

/* On a DUPSORT cursor whose position is not known to be on an item, position
 * it first (see ST_*); returns 0 when that failed (skip the operation). */
static int ensure_pos(int i, MDB_cursor_op op) {
  int p = cu[i].p;
  if (!(db[p].flags & MDB_DUPSORT) && cur_st(i) != ST_MISSED) return 1;
  switch (op) {
    case MDB_FIRST: case MDB_LAST: case MDB_SET: case MDB_SET_KEY: case MDB_SET_RANGE:
    case MDB_GET_BOTH: case MDB_GET_BOTH_RANGE:
      return 1;
    default: break;
  }
  int st = cur_st(i);
  if (st == ST_VALID) return 1;
  if (st == ST_UNINIT && op != MDB_PREV && op != MDB_PREV_DUP && op != MDB_PREV_NODUP) return 1;
  MDB_val k = {0, NULL}, d = {0, NULL};
  unsigned r = rn(4);
  int rc;
  if (r == 0)
    rc = cget(i, MDB_FIRST, "FIRST", &k, &d, 0, 0);
  else if (r == 1)
    rc = cget(i, MDB_LAST, "LAST", &k, &d, 0, 0);
  else {
    k.mv_size = gen_key(p, kb2, 0, 0);
    k.mv_data = kb2;
    rc = cget(i, r == 2 ? MDB_SET_RANGE : MDB_SET_KEY, r == 2 ? "SET_RANGE" : "SET_KEY", &k, &d, 1, 0);
  }
  return rc == 0;
}

static void op_cursor_get(int i) {
  int tot = 0;
  for (size_t j = 0; j < sizeof cops / sizeof *cops; j++) tot += cops[j].w;
  int w = (int)rn((unsigned)tot);
  size_t j = 0;
  for (; j < sizeof cops / sizeof *cops; j++) {
    w -= cops[j].w;
    if (w < 0) break;
  }
  MDB_cursor_op op = cops[j].op;
  int p = cu[i].p;
  if (!ensure_pos(i, op)) return;
  int dup = !!(db[p].flags & MDB_DUPSORT);
  MDB_val k = {0, NULL}, d = {0, NULL};
  int kin = 0, din = 0;
  if (op == MDB_SET || op == MDB_SET_KEY || op == MDB_SET_RANGE || op == MDB_GET_BOTH ||
      op == MDB_GET_BOTH_RANGE) {
    k.mv_size = key_for(p, kb, 0);
    k.mv_data = kb;
    kin = 1;
  }
  if (op == MDB_GET_BOTH || op == MDB_GET_BOTH_RANGE) {
    d.mv_size = gen_val(p, vb, 0, 0);
    d.mv_data = vb;
    din = 1;
    if (db[p].npair && pct(60)) {
      int q = rn(db[p].npair < RING ? db[p].npair : RING);
      memcpy(kb, db[p].pk[q], db[p].pkn[q]);
      k.mv_size = db[p].pkn[q];
      if (db[p].pvn[q]) memcpy(vb, db[p].pv[q], db[p].pvn[q]);
      d.mv_size = db[p].pvn[q];
      if (op == MDB_GET_BOTH_RANGE && d.mv_size && pct(50) && db[p].vk == VB) d.mv_size--;
    }
  }
  MDB_val *kp = &k, *dp = &d;
  if (!dup && pct(8)) {
    if (op == MDB_FIRST || op == MDB_LAST || op == MDB_NEXT || op == MDB_PREV || op == MDB_SET ||
        op == MDB_SET_RANGE || op == MDB_GET_CURRENT || op == MDB_NEXT_NODUP || op == MDB_PREV_NODUP)
      dp = NULL;
    else if (op == MDB_GET_BOTH || op == MDB_GET_MULTIPLE || op == MDB_NEXT_MULTIPLE)
      dp = NULL; /* EINVAL or INCOMPATIBLE */
  }
  if (!dup && !kin && dp && pct(4) &&
      (op == MDB_FIRST || op == MDB_LAST || op == MDB_NEXT || op == MDB_PREV))
    kp = NULL;
  cget(i, op, cops[j].name, kp, dp, kin, din);
}

static void op_cursor_put(int i) {
  int p = cu[i].p;
  int dup = !!(db[p].flags & MDB_DUPSORT);
  int fixed = !!(db[p].flags & MDB_DUPFIXED);
  unsigned r = rn(100), f;
  MDB_val k, d[2];
  if (r < 15) {
    /* MDB_CURRENT: on the item the cursor is on */
    MDB_val ck = {0, NULL}, cd = {0, NULL};
    if (!ensure_pos(i, MDB_GET_CURRENT)) return;
    int rc = cget(i, MDB_GET_CURRENT, "GET_CURRENT", &ck, &cd, 0, 0);
    if (rc != 0 && rc != EINVAL) return;
    f = MDB_CURRENT;
    if (rc == 0) {
      memcpy(kb, ck.mv_data, ck.mv_size);
      k.mv_size = ck.mv_size;
      if (dup) {
        memcpy(vb, cd.mv_data, cd.mv_size);
        d[0].mv_size = cd.mv_size;
      } else {
        d[0].mv_size = gen_val(p, vb, 0, 0);
        if (pct(20)) f |= MDB_RESERVE;
      }
      if (p == 0 && cd.mv_size == MDB_DB_SIZE && is_pool_name(&ck)) return; /* a named DB's record */
    } else {
      k.mv_size = 1;
      kb[0] = 'a';
      d[0].mv_size = 1;
      vb[0] = 'a';
    }
  } else if (fixed && r < 35) {
    f = MDB_MULTIPLE | (pct(20) ? MDB_NODUPDATA : 0) | (pct(10) ? MDB_APPENDDUP : 0);
    k.mv_size = gen_key(p, kb, 0, 0);
    unsigned n = 1 + rn(pct(20) ? 300 : 30);
    size_t vs = db[p].vsize;
    int asc = pct(40);
    for (unsigned j = 0; j < n; j++) {
      gen_val(p, vb + j * vs, 0, asc);
      if (j * vs + 2 * vs > sizeof vb) {
        n = j + 1;
        break;
      }
    }
    d[0].mv_size = vs;
    d[0].mv_data = vb;
    d[1].mv_size = n;
    d[1].mv_data = NULL;
    k.mv_data = kb;
    lput("cput C%d f=%x", i, f);
    lkv(p, &k, NULL);
    lput(" n=%u", n);
    lval("items", &(MDB_val){n * vs, vb});
    touch();
    int rc = mdb_cursor_put(cu[i].c, &k, d, f);
    set_st(i, ST_UNKNOWN);
    RC(rc);
    lput(" written=%zu", d[1].mv_size);
    lend();
    return;
  } else {
    if (!dup)
      f = r < 50 ? 0 : r < 62 ? MDB_NOOVERWRITE : r < 72 ? MDB_RESERVE : r < 87 ? MDB_APPEND
        : r < 90 ? MDB_NODUPDATA : r < 95 ? MDB_APPENDDUP : MDB_MULTIPLE;
    else
      f = r < 45 ? 0 : r < 60 ? MDB_NODUPDATA : r < 67 ? MDB_NOOVERWRITE : r < 77 ? MDB_APPEND
        : r < 95 ? MDB_APPENDDUP : MDB_MULTIPLE;
    if (f == MDB_MULTIPLE && fixed) f = 0;
    k.mv_size = gen_key(p, kb, 2, (f & MDB_APPEND) && pct(80));
    d[0].mv_size = gen_val(p, vb, 1, (f & MDB_APPENDDUP) && pct(80));
    d[1].mv_size = 3;
    d[1].mv_data = NULL;
  }
  k.mv_data = kb;
  d[0].mv_data = vb;
  size_t vn = d[0].mv_size;
  lput("cput C%d f=%x", i, f);
  lkv(p, &k, &d[0]);
  touch();
  int rc = mdb_cursor_put(cu[i].c, &k, d, f);
  set_st(i, ST_UNKNOWN);
  RC(rc);
  if (rc == 0 && (f & MDB_RESERVE)) {
    lput(" reserved=%zu", d[0].mv_size);
    if (d[0].mv_size == vn) memcpy(d[0].mv_data, vb, vn);
  }
  if (rc == MDB_KEYEXIST) after_keyexist(p, &k, &d[0]);
  lend();
  if (rc == 0) {
    k.mv_data = kb;
    remember_key(p, &k);
  }
}

static void op_cursor(int s) {
  unsigned r = rn(100);
  int i = pick_cursor(pct(80) ? s : -1);
  if (i < 0 || r < 8) {
    if (tx[s].rd && tx[s].reset) return;
    op_cursor_open(s);
    return;
  }
  if (r < 60) {
    op_cursor_get(i);
  } else if (r < 76) {
    op_cursor_put(i);
  } else if (r < 86) {
    unsigned f = (db[cu[i].p].flags & MDB_DUPSORT) && pct(30) ? MDB_NODUPDATA : 0;
    if (!ensure_pos(i, MDB_GET_CURRENT)) return;
    touch();
    int rc = mdb_cursor_del(cu[i].c, f);
    set_st(i, ST_UNKNOWN);
    lput("cdel C%d f=%x", i, f);
    RC(rc);
    lend();
  } else if (r < 91) {
    size_t n = 0;
    if (!ensure_pos(i, MDB_GET_CURRENT)) return;
    int rc = mdb_cursor_count(cu[i].c, &n);
    lput("ccount C%d", i);
    RC(rc);
    if (!rc) lput(" n=%zu", n);
    lend();
  } else if (r < 93) {
    lput("cursor_txn C%d same=%d dbi_same=%d", i, mdb_cursor_txn(cu[i].c) == tx[cu[i].tx].t,
         mdb_cursor_dbi(cu[i].c) == db[cu[i].p].dbi);
    lend();
  } else {
    /* close, or renew a read cursor */
    int j = -1;
    for (int q = 0; q < MAXCUR; q++)
      if (cu[q].used && cu[q].rd && (cu[q].tx < 0 || pct(30))) {
        j = q;
        break;
      }
    if (j >= 0 && pct(70)) {
      int rt = pick_read(1);
      int target = rt;
      if (pct(10) && wroot >= 0 && usable(cu[j].p, innermost())) target = innermost();
      if (target < 0 || !usable(cu[j].p, target)) {
        mdb_cursor_close(cu[j].c);
        lput("cursor_close C%d", j);
        lend();
        cu[j].used = 0;
        return;
      }
      int rc = mdb_cursor_renew(tx[target].t, cu[j].c);
      lput("cursor_renew C%d", j);
      ltx(target);
      RC(rc);
      lend();
      if (rc == 0) {
        cu[j].tx = target;
        set_st(j, ST_UNINIT);
      } else
        set_st(j, ST_UNKNOWN);
      return;
    }
    if (!cu[i].rd && pct(10) && (j = pick_read(1)) >= 0 && usable(cu[i].p, j)) {
      int rc = mdb_cursor_renew(tx[j].t, cu[i].c); /* a write cursor: EINVAL */
      lput("cursor_renew_write C%d", i);
      ltx(j);
      RC(rc);
      lend();
      return;
    }
    mdb_cursor_close(cu[i].c);
    lput("cursor_close C%d", i);
    lend();
    cu[i].used = 0;
  }
}

/* ------------------------------------------------------------- bulk */

static void op_bulk(int s) {
  if (tx[s].rd) return;
  touch();
  int p = choose_db(s);
  if (p < 0) return;
  db_t *d = &db[p];
  uint64_t h = HASH_INIT;
  unsigned n = 20 + rn(pct(30) ? 600 : 150);
  /* small maps: sometimes big enough to fill the map (MDB_MAP_FULL) */
  int fill = cfg_mapsize && cfg_mapsize < (512u << 10) && pct(35);
  if (fill) n = 200 + rn(1500);
  if (pct(60)) {
    int seq = pct(50);
    unsigned f = seq && pct(50) ? MDB_APPEND : 0;
    int onekey = (d->flags & MDB_DUPSORT) && pct((d->flags & MDB_DUPFIXED) ? 70 : 40);
    unsigned char pre = (unsigned char)alpha[rn(5)];
    uint32_t base = (uint32_t)rn(1000);
    unsigned ok = 0, first = 0;
    int firstrc = 0;
    MDB_val k, v;
    for (unsigned j = 0; j < n && !map_full; j++) {
      uint32_t idx = seq ? base + j : (uint32_t)rn(5000);
      if (d->kk == KB) {
        kb[0] = pre;
        put_be(kb + 1, onekey ? base : idx, 4);
        k.mv_size = 5 + (onekey ? 0 : idx % 7);
        memset(kb + 5, 'k', 6);
        if (d->flags & MDB_REVERSEKEY) reverse(kb, k.mv_size);
      } else {
        uint64_t x = 5000 + (onekey ? base : idx);
        if (d->kk == KI4) {
          unsigned u = (unsigned)x;
          memcpy(kb, &u, 4);
          k.mv_size = 4;
        } else {
          size_t z = (size_t)x;
          memcpy(kb, &z, 8);
          k.mv_size = 8;
        }
      }
      k.mv_data = kb;
      if (d->flags & MDB_DUPSORT) {
        if (d->vk == VB) {
          v.mv_size = 4 + (onekey ? j % 20 : rn(20));
          memset(vb, 'v', v.mv_size);
          put_be(vb, onekey ? j : rn(100), 4);
        } else if (d->vk == VFIX) {
          v.mv_size = d->vsize;
          memset(vb, 0, v.mv_size);
          uint32_t x = onekey ? j : (uint32_t)rn(100);
          for (size_t q = 0; q < v.mv_size && q < 4; q++) vb[v.mv_size - 1 - q] = (unsigned char)(x >> (8 * q));
          if (d->flags & MDB_REVERSEDUP) reverse(vb, v.mv_size);
        } else {
          uint64_t x = 100 + (onekey ? j : rn(100));
          if (d->vk == VI4) {
            unsigned u = (unsigned)x;
            memcpy(vb, &u, 4);
            v.mv_size = 4;
          } else {
            size_t z = (size_t)x;
            memcpy(vb, &z, 8);
            v.mv_size = 8;
          }
        }
      } else {
        v.mv_size = fill ? 50 + rn(600) : 8 + rn(pct(10) ? 3000 : 120);
        fill_rand(vb, v.mv_size);
      }
      v.mv_data = vb;
      int rc = mdb_put(tx[s].t, d->dbi, &k, &v, f);
      if (rc == MDB_MAP_FULL) map_full = 1;
      h = hash_u64(h, (uint64_t)rc);
      if (rc == 0)
        ok++;
      else if (!firstrc) {
        firstrc = rc;
        first = j;
      }
      if (rc == MDB_BAD_TXN) break;
    }
    lput("bulk_put");
    ltx(s);
    ldb(p);
    lput(" n=%u seq=%d onekey=%d f=%x ok=%u h=%016llx", n, seq, onekey, f, ok, (unsigned long long)h);
    if (firstrc) lput(" first_err=%u:%s", first, rcname(firstrc));
    lend();
  } else if (!(d->flags & MDB_DUPSORT)) {
    /* delete while iterating with one cursor (page merges) */
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx[s].t, d->dbi, &c);
    if (rc) return;
    unsigned keep = 1 + rn(4), visited = 0, deleted = 0;
    MDB_val k, v;
    int last = 0;
    int from_end = pct(30);
    while ((rc = mdb_cursor_get(c, &k, &v, from_end ? MDB_PREV : MDB_NEXT)) == 0) {
      visited++;
      h = hash_kv(h, p, &k, &v);
      if (rn(keep + 1) != 0) {
        if (p == 0 && v.mv_size == MDB_DB_SIZE && is_pool_name(&k)) continue;
        int r2 = mdb_cursor_del(c, 0);
        h = hash_u64(h, (uint64_t)r2);
        if (r2 == MDB_MAP_FULL) map_full = 1;
        if (r2) {
          last = r2;
          break;
        }
        deleted++;
      }
    }
    mdb_cursor_close(c);
    lput("bulk_del");
    ltx(s);
    ldb(p);
    lput(" keep=%u rev=%d visited=%u deleted=%u h=%016llx end=%s", keep, from_end, visited, deleted,
         (unsigned long long)h, rcname(last ? last : rc));
    lend();
  } else {
    /* DUPSORT: LMDB 0.9.24 leaves the sub-cursor stale after mdb_cursor_del
     * when the next key holds a sub-database (MDB_NEXT then asserts), so
     * collect the items with a read-only scan and delete them with mdb_del */
    MDB_cursor *c;
    int rc = mdb_cursor_open(tx[s].t, d->dbi, &c);
    if (rc) return;
    static unsigned char kbuf[1 << 16], vbuf[1 << 16];
    static size_t ko[2048], kl[2048], vo[2048], vl[2048];
    unsigned keep = 1 + rn(4), visited = 0, deleted = 0, nsel = 0;
    unsigned fd = pct(30) ? MDB_NODUPDATA : 0;
    size_t kpos = 0, vpos = 0;
    MDB_val k, v;
    int last = 0;
    while (nsel < 2048 && (rc = mdb_cursor_get(c, &k, &v, fd ? MDB_NEXT_NODUP : MDB_NEXT)) == 0) {
      visited++;
      h = hash_kv(h, p, &k, &v);
      if (rn(keep + 1) == 0 || kpos + k.mv_size > sizeof kbuf || vpos + v.mv_size > sizeof vbuf) continue;
      ko[nsel] = kpos;
      kl[nsel] = k.mv_size;
      memcpy(kbuf + kpos, k.mv_data, k.mv_size);
      kpos += k.mv_size;
      vo[nsel] = vpos;
      vl[nsel] = v.mv_size;
      memcpy(vbuf + vpos, v.mv_data, v.mv_size);
      vpos += v.mv_size;
      nsel++;
    }
    mdb_cursor_close(c);
    for (unsigned j = 0; j < nsel; j++) {
      MDB_val dk = {kl[j], kbuf + ko[j]}, dv = {vl[j], vbuf + vo[j]};
      int r2 = mdb_del(tx[s].t, d->dbi, &dk, fd ? NULL : &dv);
      h = hash_u64(h, (uint64_t)r2);
      if (r2 == MDB_MAP_FULL) map_full = 1;
      if (r2) {
        last = r2;
        break;
      }
      deleted++;
    }
    lput("bulk_del");
    ltx(s);
    ldb(p);
    lput(" keep=%u f=%x visited=%u deleted=%u h=%016llx end=%s", keep, fd, visited, deleted,
         (unsigned long long)h, rcname(last ? last : rc));
    lend();
  }
}

/* operations on a txn that has a child (MDB_BAD_TXN) or a reset read txn */
static void op_blocked(void) {
  int s = -1;
  if (wroot >= 0 && tx[wroot].child >= 0)
    s = wroot;
  else
    for (int i = 0; i < MAXTXN; i++)
      if (tx[i].used && tx[i].rd && tx[i].reset) s = i;
  if (s < 0) return;
  MDB_val k = {1, kb}, d = {1, vb};
  kb[0] = 'a';
  vb[0] = 'b';
  int rc;
  if (pct(50) && !tx[s].rd) {
    rc = mdb_put(tx[s].t, db[0].dbi, &k, &d, 0);
    lput("put_blocked");
  } else {
    rc = mdb_get(tx[s].t, db[0].dbi, &k, &d);
    lput("get_blocked");
  }
  ltx(s);
  RC(rc);
  lend();
}

/* ------------------------------------------------------------- driver */

static void step(void) {
  unsigned r = rn(1000);
  if (r < 12) {
    if (pct(50) || quiet()) op_reopen();
    return;
  }
  if (r < 40) {
    op_env_misc();
    return;
  }
  if (r < 110) {
    if (env_rdonly && wroot < 0 && pct(80)) {
      op_txn_read();
      return;
    }
    op_txn_write();
    return;
  }
  if (r < 160) {
    op_txn_read();
    return;
  }
  int s = pick_txn_for_data();
  if (s < 0) {
    if (pct(80) && !env_rdonly)
      begin_top_write();
    else
      op_txn_read();
    return;
  }
  if (tx[s].rd && r >= 200 && r < 630 && !(r >= 480 && r < 570) && pct(85)) {
    /* mostly reads in read-only txns (writes there only to see EACCES) */
    if (pct(40))
      op_get(s);
    else
      op_cursor(s);
    return;
  }
  if (r < 200)
    op_dbi(s);
  else if (r < 212)
    op_drop(s);
  else if (r < 235)
    op_bulk(s);
  else if (r < 243)
    op_blocked();
  else if (r < 480)
    op_put(s);
  else if (r < 570)
    op_get(s);
  else if (r < 630)
    op_del(s);
  else
    op_cursor(s);
}

static const char *dir_opt;
static int opt_ops = 150;
static int opt_clean;

static void gen_spec(db_t *d) {
  unsigned r = rn(100);
  d->kk = KB;
  d->vk = VB;
  d->vsize = 0;
  if (r < 15)
    d->flags = 0;
  else if (r < 23)
    d->flags = MDB_REVERSEKEY;
  else if (r < 33) {
    d->flags = MDB_INTEGERKEY;
    d->kk = pct(50) ? KI4 : KI8;
  } else if (r < 48)
    d->flags = MDB_DUPSORT;
  else if (r < 55)
    d->flags = MDB_DUPSORT | MDB_REVERSEDUP;
  else if (r < 70) {
    /* not 1: LMDB 0.9.24 overruns a page with 1-byte DUPFIXED items */
    static const unsigned sz[] = {2, 3, 4, 8, 16, 32};
    d->flags = MDB_DUPSORT | MDB_DUPFIXED | (pct(25) ? MDB_REVERSEDUP : 0);
    d->vk = VFIX;
    d->vsize = sz[rn(6)];
  } else if (r < 78) {
    d->flags = MDB_DUPSORT | MDB_INTEGERDUP;
    d->vk = pct(50) ? VI4 : VI8;
    d->vsize = d->vk == VI4 ? 4 : 8;
  } else if (r < 88) {
    d->flags = MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
    d->vk = pct(50) ? VI4 : VI8;
    d->vsize = d->vk == VI4 ? 4 : 8;
  } else if (r < 94) {
    d->flags = MDB_INTEGERKEY | MDB_DUPSORT | (pct(50) ? MDB_DUPFIXED : 0);
    d->kk = pct(50) ? KI4 : KI8;
    if (d->flags & MDB_DUPFIXED) {
      d->vk = VFIX;
      d->vsize = 8;
    }
  } else {
    d->flags = MDB_REVERSEKEY | MDB_DUPSORT | (pct(50) ? MDB_DUPFIXED : 0);
    if (d->flags & MDB_DUPFIXED) {
      d->vk = VFIX;
      d->vsize = 4;
    }
  }
}

static void run_seq(uint64_t seed) {
  rng_state = seed * 0x2545F4914F6CDD1DULL + 0x1234567;
  rnd64();
  memset(db, 0, sizeof db);
  memset(tx, 0, sizeof tx);
  memset(cu, 0, sizeof cu);
  wroot = -1;
  epoch = 0;
  ncommits = 0;
  map_full = 0;
  ncopies = 0;
  env = NULL;
  main_only = pct(12) && !opt_avoid_main;
  ndb = main_only ? 1 : 2 + (int)rn(MAXPOOL - 1);
  db[0].name = NULL;
  db[0].flags = 0;
  db[0].kk = KB;
  db[0].vk = VB;
  unsigned ncand = sizeof name_cands / sizeof *name_cands;
  for (int p = 1; p < ndb; p++) {
    for (;;) {
      const char *nm = name_cands[rn(ncand)];
      int dupl = 0;
      for (int q = 1; q < p; q++)
        if (!strcmp(db[q].name, nm)) dupl = 1;
      if (!dupl) {
        db[p].name = nm;
        break;
      }
    }
    gen_spec(&db[p]);
  }
  cfg_nosubdir = pct(15);
  cfg_flags = rand_env_flags();
  unsigned r = rn(100);
  cfg_mapsize = r < 30 ? 4096u * (16 + rn(48)) : r < 80 ? 0 : (size_t)(2 + rn(7)) << 20;
  /* maxdbs is 0 (no named database can ever exist) or covers every pool
   * name, so that digests never depend on free handle slots; MDB_DBS_FULL is
   * still reached: with maxdbs 0, and by the extra-name probe when every
   * slot holds a pool handle (maxdbs == pool size) */
  r = rn(100);
  if (main_only)
    cfg_maxdbs = pct(50) ? -1 : (int)rn(3);
  else if (r < 40)
    cfg_maxdbs = ndb - 1;
  else if (r < 88)
    cfg_maxdbs = ndb - 1 + 1 + (int)rn(3);
  else if (r < 94 && !opt_avoid_main)
    cfg_maxdbs = 0;
  else if (!opt_avoid_main)
    cfg_maxdbs = -1;
  else
    cfg_maxdbs = ndb - 1;
  cfg_maxreaders = pct(15) ? 1 + (int)rn(4) : -1;
  int nops = opt_ops / 2 + (int)rn((unsigned)opt_ops);

  snprintf(seqdir, sizeof seqdir, "%s/seq-%llu", dir_opt, (unsigned long long)seed);
  rm_rf(seqdir);
  char ed[4200];
  snprintf(ed, sizeof ed, "%s/env", seqdir);
  mkdir_p(ed);
  snprintf(envpath, sizeof envpath, "%s%s", ed, cfg_nosubdir ? "/data.mdb" : "");

  lput("SEQ %llu flags=%x mapsize=%zu maxdbs=%d maxreaders=%d ops=%d pool=", (unsigned long long)seed,
       cfg_flags, cfg_mapsize, cfg_maxdbs, cfg_maxreaders, nops);
  for (int p = 1; p < ndb; p++) {
    lput("%sD%d:", p > 1 ? "," : "", p);
    lhex(db[p].name, strlen(db[p].name));
    lput(":%x:%d:%d:%u", db[p].flags, db[p].kk, db[p].vk, db[p].vsize);
  }
  lend();

  if (env_open_now(cfg_flags, cfg_mapsize) == 0) {
    quiet_digest("COMMITTED");
    for (int i = 0; i < nops && env && !map_full; i++) step();
    if (!map_full && env) env_close_now(); /* its commit may be the MAP_FULL */
    if (map_full) {
      /* the MAP_FULL may have come from the commit in a close */
      if (env) {
        close_all();
        mdb_env_close(env);
        env = NULL;
      }
      printf("MAP_FULL\n");
      if (env_open_now(cfg_flags & ~MDB_RDONLY, 0) == 0) {
        quiet_digest("FINAL");
        mdb_env_close(env);
        env = NULL;
      }
    }
  }
  printf("END %llu\n", (unsigned long long)seed);
  fflush(stdout);
  if (opt_clean) rm_rf(seqdir);
}

int main(int argc, char **argv) {
  unsigned long long seed = 1, count = 1;
  int expect_shim = -1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--seed") && i + 1 < argc)
      seed = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--count") && i + 1 < argc)
      count = strtoull(argv[++i], NULL, 0);
    else if (!strcmp(argv[i], "--ops") && i + 1 < argc)
      opt_ops = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
      dir_opt = argv[++i];
    else if (!strcmp(argv[i], "--clean"))
      opt_clean = 1;
    else if (!strcmp(argv[i], "--dump"))
      opt_dump = 1;
    else if (!strcmp(argv[i], "--linebuf"))
      opt_linebuf = 1;
    else if (!strcmp(argv[i], "--avoid-main"))
      opt_avoid_main = 1;
    else if (!strcmp(argv[i], "--expect-shim") && i + 1 < argc)
      expect_shim = atoi(argv[++i]);
    else {
      fprintf(stderr,
              "usage: %s --seed S [--count N] [--ops K] --dir DIR [--clean] [--dump] [--linebuf]\n"
              "          [--avoid-main]\n"
              "          [--expect-shim 0|1]\n",
              argv[0]);
      return 2;
    }
  }
  if (!dir_opt || opt_ops < 2) {
    fprintf(stderr, "difftest: --dir is required\n");
    return 2;
  }
  if (expect_shim >= 0) {
    /* make sure the mode under test is in effect: the shim exports trlmdb_* */
    int has = dlsym(RTLD_DEFAULT, "trlmdb_version") != NULL;
    if (has != expect_shim) {
      fprintf(stderr, "difftest: expected %s, but trlmdb_version is %s\n",
              expect_shim ? "the trlmdb shim" : "the real liblmdb", has ? "present" : "absent");
      return 3;
    }
  }
  static char obuf[1 << 16];
  if (opt_linebuf)
    setvbuf(stdout, NULL, _IOLBF, 0);
  else
    setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
  mkdir_p(dir_opt);
  for (unsigned long long i = 0; i < count; i++) run_seq(seed + i);
  return 0;
}
