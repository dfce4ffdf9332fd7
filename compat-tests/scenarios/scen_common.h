/* Shared helpers of the scenario programs.
 *
 * Every scenario program takes one argument, an existing empty directory, and
 * creates its environment(s) there. It prints every call it makes with the
 * call's return code, and every byte it reads, to stdout. It never prints a
 * pointer, a dbi number, a page number or a page count (mdb_stat's depth /
 * branch / leaf / overflow pages, mdb_env_info's last page): those are the
 * figures that the shim's bookkeeping may change. An unexpected return code
 * ends the program with exit status 2 (after printing the call), so a
 * divergence under the shim shows both in stdout and in the exit status.
 */
#ifndef SCEN_COMMON_H
#define SCEN_COMMON_H

#include <errno.h>
#include <lmdb.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#if defined(__GNUC__)
#define SCEN_UNUSED __attribute__((unused))
#else
#define SCEN_UNUSED
#endif

static SCEN_UNUSED const char *scen_rcname(int rc) {
  static char buf[32];
  switch (rc) {
    case MDB_SUCCESS:
      return "MDB_SUCCESS";
    case MDB_KEYEXIST:
      return "MDB_KEYEXIST";
    case MDB_NOTFOUND:
      return "MDB_NOTFOUND";
    case MDB_PAGE_NOTFOUND:
      return "MDB_PAGE_NOTFOUND";
    case MDB_CORRUPTED:
      return "MDB_CORRUPTED";
    case MDB_PANIC:
      return "MDB_PANIC";
    case MDB_VERSION_MISMATCH:
      return "MDB_VERSION_MISMATCH";
    case MDB_INVALID:
      return "MDB_INVALID";
    case MDB_MAP_FULL:
      return "MDB_MAP_FULL";
    case MDB_DBS_FULL:
      return "MDB_DBS_FULL";
    case MDB_READERS_FULL:
      return "MDB_READERS_FULL";
    case MDB_TLS_FULL:
      return "MDB_TLS_FULL";
    case MDB_TXN_FULL:
      return "MDB_TXN_FULL";
    case MDB_CURSOR_FULL:
      return "MDB_CURSOR_FULL";
    case MDB_PAGE_FULL:
      return "MDB_PAGE_FULL";
    case MDB_MAP_RESIZED:
      return "MDB_MAP_RESIZED";
    case MDB_INCOMPATIBLE:
      return "MDB_INCOMPATIBLE";
    case MDB_BAD_RSLOT:
      return "MDB_BAD_RSLOT";
    case MDB_BAD_TXN:
      return "MDB_BAD_TXN";
    case MDB_BAD_VALSIZE:
      return "MDB_BAD_VALSIZE";
    case MDB_BAD_DBI:
      return "MDB_BAD_DBI";
    case EINVAL:
      return "EINVAL";
    case EACCES:
      return "EACCES";
    case ENOENT:
      return "ENOENT";
    case ENOMEM:
      return "ENOMEM";
    case EEXIST:
      return "EEXIST";
    case EBUSY:
      return "EBUSY";
    case EAGAIN:
      return "EAGAIN";
    case ENOSPC:
      return "ENOSPC";
    default:
      snprintf(buf, sizeof buf, "rc(%d)", rc);
      return buf;
  }
}

/* Prints "expr = RC". Exits 2 when rc is not the expected one. */
static SCEN_UNUSED int scen_check(int rc, int want, const char *expr, int line) {
  printf("%s = %s\n", expr, scen_rcname(rc));
  if (rc != want) {
    fflush(stdout);
    fprintf(stderr, "line %d: %s returned %s (%d: %s), expected %s\n", line, expr, scen_rcname(rc),
            rc, mdb_strerror(rc), scen_rcname(want));
    exit(2);
  }
  return rc;
}
#define CHECK(expr, want) scen_check((expr), (want), #expr, __LINE__)
#define OK(expr) scen_check((expr), MDB_SUCCESS, #expr, __LINE__)

static SCEN_UNUSED uint32_t scen_fnv(const void *p, size_t n, uint32_t h) {
  const unsigned char *b = (const unsigned char *)p;
  for (size_t i = 0; i < n; i++) {
    h ^= b[i];
    h *= 16777619u;
  }
  return h;
}
#define SCEN_FNV_INIT 2166136261u

static SCEN_UNUSED void scen_escape(const unsigned char *b, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (b[i] >= 0x20 && b[i] < 0x7f && b[i] != '\\' && b[i] != '"')
      putchar(b[i]);
    else
      printf("\\x%02x", b[i]);
  }
}

/* Values up to 64 bytes are printed whole; longer ones as their length, the
 * first 16 bytes and a hash of all of them. */
static SCEN_UNUSED void scen_pval(const MDB_val *v) {
  const unsigned char *b = (const unsigned char *)v->mv_data;
  if (v->mv_size <= 64) {
    printf("[%zu]\"", v->mv_size);
    scen_escape(b, v->mv_size);
    printf("\"");
  } else {
    printf("[%zu]\"", v->mv_size);
    scen_escape(b, 16);
    printf("\"...#%08x", scen_fnv(b, v->mv_size, SCEN_FNV_INIT));
  }
}

static SCEN_UNUSED void scen_pkv(const char *what, const MDB_val *k, const MDB_val *d) {
  printf("  %s ", what);
  if (k) scen_pval(k);
  if (k && d) printf(" => ");
  if (d) scen_pval(d);
  printf("\n");
}

static SCEN_UNUSED const char *scen_opname(MDB_cursor_op op) {
  switch (op) {
    case MDB_FIRST:
      return "FIRST";
    case MDB_FIRST_DUP:
      return "FIRST_DUP";
    case MDB_GET_BOTH:
      return "GET_BOTH";
    case MDB_GET_BOTH_RANGE:
      return "GET_BOTH_RANGE";
    case MDB_GET_CURRENT:
      return "GET_CURRENT";
    case MDB_GET_MULTIPLE:
      return "GET_MULTIPLE";
    case MDB_LAST:
      return "LAST";
    case MDB_LAST_DUP:
      return "LAST_DUP";
    case MDB_NEXT:
      return "NEXT";
    case MDB_NEXT_DUP:
      return "NEXT_DUP";
    case MDB_NEXT_MULTIPLE:
      return "NEXT_MULTIPLE";
    case MDB_NEXT_NODUP:
      return "NEXT_NODUP";
    case MDB_PREV:
      return "PREV";
    case MDB_PREV_DUP:
      return "PREV_DUP";
    case MDB_PREV_NODUP:
      return "PREV_NODUP";
    case MDB_SET:
      return "SET";
    case MDB_SET_KEY:
      return "SET_KEY";
    case MDB_SET_RANGE:
      return "SET_RANGE";
    case MDB_PREV_MULTIPLE:
      return "PREV_MULTIPLE";
  }
  return "?";
}

/* One cursor operation, printed with its result. The data of SET is not
 * printed by LMDB's contract for the key, so both are printed as returned. */
static SCEN_UNUSED int scen_cget(MDB_cursor *c, MDB_val *k, MDB_val *d, MDB_cursor_op op, int want,
                                 int line) {
  int rc = mdb_cursor_get(c, k, d, op);
  printf("cursor_get %s = %s\n", scen_opname(op), scen_rcname(rc));
  if (rc == MDB_SUCCESS) {
    if (op == MDB_SET)
      scen_pkv("->", NULL, d);
    else
      scen_pkv("->", k, d);
  }
  if (rc != want) {
    fflush(stdout);
    fprintf(stderr, "line %d: cursor_get %s returned %s, expected %s\n", line, scen_opname(op),
            scen_rcname(rc), scen_rcname(want));
    exit(2);
  }
  return rc;
}
#define CGET(c, k, d, op, want) scen_cget((c), (k), (d), (op), (want), __LINE__)

static SCEN_UNUSED MDB_val scen_sv(const char *s) {
  MDB_val v;
  v.mv_size = strlen(s);
  v.mv_data = (void *)s;
  return v;
}

/* Walks a whole database, printing every entry, then its entry count and a
 * hash of all entries. Returns the number of entries. */
static SCEN_UNUSED size_t scen_dump(MDB_txn *txn, MDB_dbi dbi, const char *label, int quiet) {
  MDB_cursor *c;
  MDB_val k, d;
  size_t n = 0;
  uint32_t h = SCEN_FNV_INIT;
  int rc = mdb_cursor_open(txn, dbi, &c);
  if (rc) {
    printf("dump %s: mdb_cursor_open = %s\n", label, scen_rcname(rc));
    exit(2);
  }
  printf("dump %s:\n", label);
  while ((rc = mdb_cursor_get(c, &k, &d, n ? MDB_NEXT : MDB_FIRST)) == MDB_SUCCESS) {
    if (!quiet) scen_pkv("", &k, &d);
    h = scen_fnv(k.mv_data, k.mv_size, h);
    h = scen_fnv(&k.mv_size, sizeof k.mv_size, h);
    h = scen_fnv(d.mv_data, d.mv_size, h);
    h = scen_fnv(&d.mv_size, sizeof d.mv_size, h);
    n++;
  }
  printf("dump %s end: %s, %zu entries, hash %08x\n", label, scen_rcname(rc), n, h);
  mdb_cursor_close(c);
  if (rc != MDB_NOTFOUND) exit(2);
  return n;
}

/* mdb_stat without the page figures (they may differ under the shim). */
static SCEN_UNUSED void scen_stat(MDB_txn *txn, MDB_dbi dbi, const char *label) {
  MDB_stat st;
  int rc = mdb_stat(txn, dbi, &st);
  printf("stat %s = %s", label, scen_rcname(rc));
  if (rc == MDB_SUCCESS) printf(" psize=%u entries=%zu", st.ms_psize, (size_t)st.ms_entries);
  printf("\n");
  if (rc) exit(2);
}

static SCEN_UNUSED void scen_flags(MDB_txn *txn, MDB_dbi dbi, const char *label) {
  unsigned int f = 0;
  int rc = mdb_dbi_flags(txn, dbi, &f);
  printf("flags %s = %s 0x%x\n", label, scen_rcname(rc), f);
  if (rc) exit(2);
}

/* Creates DIR/sub (or uses DIR when sub is NULL) and opens an environment in
 * it. maxdbs < 0: mdb_env_set_maxdbs is not called. */
static SCEN_UNUSED MDB_env *scen_env(const char *dir, const char *sub, int maxdbs, size_t mapsize,
                                     unsigned int flags, char *pathbuf, size_t pathlen) {
  MDB_env *env = NULL;
  char local[4096];
  char *path = pathbuf ? pathbuf : local;
  size_t plen = pathbuf ? pathlen : sizeof local;
  if (sub) {
    snprintf(path, plen, "%s/%s", dir, sub);
    mkdir(path, 0755);
  } else {
    snprintf(path, plen, "%s", dir);
  }
  printf("open env %s maxdbs=%d mapsize=%zu flags=0x%x\n", sub ? sub : ".", maxdbs, mapsize, flags);
  OK(mdb_env_create(&env));
  if (maxdbs >= 0) OK(mdb_env_set_maxdbs(env, (MDB_dbi)maxdbs));
  if (mapsize) OK(mdb_env_set_mapsize(env, mapsize));
  OK(mdb_env_open(env, path, flags, 0644));
  return env;
}

/* Deterministic xorshift64* generator. */
typedef struct {
  uint64_t s;
} scen_rng;
static SCEN_UNUSED uint64_t scen_rand(scen_rng *r) {
  r->s ^= r->s >> 12;
  r->s ^= r->s << 25;
  r->s ^= r->s >> 27;
  return r->s * 2685821657736338717ull;
}
static SCEN_UNUSED void scen_shuffle(unsigned *a, size_t n, scen_rng *r) {
  for (size_t i = n; i > 1; i--) {
    size_t j = (size_t)(scen_rand(r) % i);
    unsigned t = a[i - 1];
    a[i - 1] = a[j];
    a[j] = t;
  }
}

static SCEN_UNUSED const char *scen_dir(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s EMPTY-DIRECTORY\n", argv[0]);
    exit(64);
  }
  setvbuf(stdout, NULL, _IOLBF, 1 << 16); /* line by line: a crash keeps what was printed */
  return argv[1];
}

#endif /* SCEN_COMMON_H */
