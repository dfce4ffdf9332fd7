/* Scenario: fixed-size duplicates (MDB_DUPSORT | MDB_DUPFIXED).
 * Bulk puts with MDB_MULTIPLE (fresh key, key with existing duplicates, a
 * batch overlapping existing duplicates), reads with GET_MULTIPLE /
 * NEXT_MULTIPLE / PREV_MULTIPLE page by page, an INTEGERDUP database, and the
 * error returned by the MULTIPLE operations on a database without DUPFIXED. */
#include "scen_common.h"

#define ITEM 8

static void item(char *buf, unsigned v) {
  char tmp[ITEM + 1];
  snprintf(tmp, sizeof tmp, "%08u", v);
  memcpy(buf, tmp, ITEM);
}

/* MDB_MULTIPLE put of n items (item(base + i * step)). */
static void put_multiple(MDB_cursor *c, const char *key, unsigned base, unsigned step, unsigned n,
                         int want) {
  char *buf = malloc((size_t)n * ITEM);
  MDB_val k = scen_sv(key), d[2];
  for (unsigned i = 0; i < n; i++) item(buf + (size_t)i * ITEM, base + i * step);
  d[0].mv_size = ITEM;
  d[0].mv_data = buf;
  d[1].mv_size = n;
  d[1].mv_data = NULL;
  int rc = mdb_cursor_put(c, &k, d, MDB_MULTIPLE);
  printf("cursor_put MULTIPLE \"%s\" base=%u step=%u n=%u = %s, items written=%zu\n", key, base,
         step, n, scen_rcname(rc), d[1].mv_size);
  free(buf);
  if (rc != want) exit(2);
}

static void print_chunk(const char *what, int rc, const MDB_val *k, const MDB_val *d) {
  printf("%s = %s", what, scen_rcname(rc));
  if (rc == 0) {
    size_t n = d->mv_size / ITEM;
    printf(" key=");
    scen_pval(k);
    printf(" bytes=%zu items=%zu first=%.8s last=%.8s hash=%08x", d->mv_size, n,
           (const char *)d->mv_data, (const char *)d->mv_data + (n - 1) * ITEM,
           scen_fnv(d->mv_data, d->mv_size, SCEN_FNV_INIT));
  }
  printf("\n");
}

/* Reads every duplicate of key page by page, forwards then backwards. */
static void read_multiple(MDB_txn *txn, MDB_dbi dbi, const char *key) {
  MDB_cursor *c;
  MDB_val k = scen_sv(key), d;
  size_t total = 0, cnt = 0;
  int rc;
  OK(mdb_cursor_open(txn, dbi, &c));
  rc = mdb_cursor_get(c, &k, &d, MDB_SET);
  printf("SET \"%s\" = %s\n", key, scen_rcname(rc));
  if (rc) {
    mdb_cursor_close(c);
    return;
  }
  OK(mdb_cursor_count(c, &cnt));
  printf("count=%zu\n", cnt);
  rc = mdb_cursor_get(c, &k, &d, MDB_GET_MULTIPLE);
  print_chunk("GET_MULTIPLE", rc, &k, &d);
  while (rc == 0) {
    total += d.mv_size / ITEM;
    rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_MULTIPLE);
    print_chunk("NEXT_MULTIPLE", rc, &k, &d);
  }
  printf("total items forwards=%zu\n", total);
  /* Backwards: position on the last duplicate, then page by page. */
  k = scen_sv(key);
  OK(mdb_cursor_get(c, &k, &d, MDB_SET));
  OK(mdb_cursor_get(c, &k, &d, MDB_LAST_DUP));
  total = 0;
  do {
    rc = mdb_cursor_get(c, &k, &d, MDB_PREV_MULTIPLE);
    print_chunk("PREV_MULTIPLE", rc, &k, &d);
    if (rc == 0) total += d.mv_size / ITEM;
  } while (rc == 0);
  printf("total items backwards=%zu\n", total);
  mdb_cursor_close(c);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 4, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi fixed, ints, plain;
  MDB_cursor *c;
  MDB_val k, d;
  char ib[ITEM];

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "fixed", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &fixed));
  OK(mdb_dbi_open(txn, "ints", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP, &ints));
  OK(mdb_dbi_open(txn, "plain", MDB_CREATE | MDB_DUPSORT, &plain));
  scen_flags(txn, fixed, "fixed");
  scen_flags(txn, ints, "ints");
  OK(mdb_cursor_open(txn, fixed, &c));
  /* 3000 items (24000 bytes): several pages of duplicates. */
  put_multiple(c, "m1", 0, 3, 3000, 0);
  /* A key that already has duplicates, in a sub-page. */
  for (unsigned i = 0; i < 5; i++) {
    item(ib, 100000 + i * 2);
    k = scen_sv("m2");
    d.mv_size = ITEM;
    d.mv_data = ib;
    OK(mdb_cursor_put(c, &k, &d, 0));
  }
  put_multiple(c, "m2", 100001, 2, 20, 0);
  /* A batch overlapping existing duplicates. */
  put_multiple(c, "m2", 100000, 1, 50, 0);
  put_multiple(c, "m3", 5, 1, 1, 0);
  put_multiple(c, "m0", 7, 7, 600, 0);
  mdb_cursor_close(c);

  for (unsigned i = 0; i < 300; i++) {
    unsigned int v = (i * 2654435761u) % 1000003u;
    k = scen_sv(i % 2 ? "odd" : "even");
    d.mv_size = sizeof v;
    d.mv_data = &v;
    OK(mdb_put(txn, ints, &k, &d, 0));
  }
  k = scen_sv("p");
  d = scen_sv("variable");
  OK(mdb_put(txn, plain, &k, &d, 0));
  d = scen_sv("sized");
  OK(mdb_put(txn, plain, &k, &d, 0));
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_stat(txn, fixed, "fixed");
  scen_stat(txn, ints, "ints");
  read_multiple(txn, fixed, "m0");
  read_multiple(txn, fixed, "m1");
  read_multiple(txn, fixed, "m2");
  read_multiple(txn, fixed, "m3");
  read_multiple(txn, fixed, "nope");
  scen_dump(txn, fixed, "fixed m2 and m3 (m0, m1 hashed)", 1);
  {
    /* Whole database with NEXT_MULTIPLE across keys. */
    MDB_cursor *cc;
    int rc, pages = 0;
    size_t items = 0;
    OK(mdb_cursor_open(txn, fixed, &cc));
    rc = mdb_cursor_get(cc, &k, &d, MDB_FIRST);
    while (rc == 0) {
      rc = mdb_cursor_get(cc, &k, &d, MDB_GET_MULTIPLE);
      while (rc == 0) {
        pages++;
        items += d.mv_size / ITEM;
        rc = mdb_cursor_get(cc, &k, &d, MDB_NEXT_MULTIPLE);
      }
      if (rc != MDB_NOTFOUND) break;
      rc = mdb_cursor_get(cc, &k, &d, MDB_NEXT_NODUP);
    }
    printf("all keys: %d chunks, %zu items, end %s\n", pages, items, scen_rcname(rc));
    mdb_cursor_close(cc);
  }
  {
    MDB_cursor *cc;
    int rc;
    OK(mdb_cursor_open(txn, ints, &cc));
    printf("ints:\n");
    for (rc = mdb_cursor_get(cc, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cc, &k, &d, MDB_NEXT)) {
      unsigned int v;
      memcpy(&v, d.mv_data, sizeof v);
      printf("  %.*s %u\n", (int)k.mv_size, (const char *)k.mv_data, v);
    }
    printf("ints end: %s\n", scen_rcname(rc));
    k = scen_sv("odd");
    OK(mdb_cursor_get(cc, &k, &d, MDB_SET));
    rc = mdb_cursor_get(cc, &k, &d, MDB_GET_MULTIPLE);
    printf("ints GET_MULTIPLE = %s bytes=%zu hash=%08x\n", scen_rcname(rc), rc ? 0 : d.mv_size,
           rc ? 0 : scen_fnv(d.mv_data, d.mv_size, SCEN_FNV_INIT));
    mdb_cursor_close(cc);
  }
  /* MULTIPLE operations need DUPFIXED: MDB_INCOMPATIBLE. */
  OK(mdb_cursor_open(txn, plain, &c));
  k = scen_sv("p");
  CGET(c, &k, &d, MDB_SET, 0);
  CGET(c, &k, &d, MDB_GET_MULTIPLE, MDB_INCOMPATIBLE);
  CGET(c, &k, &d, MDB_NEXT_MULTIPLE, MDB_INCOMPATIBLE);
  mdb_cursor_close(c);
  mdb_txn_abort(txn);

  /* Delete some duplicates, then read page by page again. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_cursor_open(txn, fixed, &c));
  for (unsigned v = 0; v < 9000; v += 3 * 7) {
    item(ib, v);
    k = scen_sv("m1");
    d.mv_size = ITEM;
    d.mv_data = ib;
    if (mdb_cursor_get(c, &k, &d, MDB_GET_BOTH) != 0) exit(2);
    if (mdb_cursor_del(c, 0) != 0) exit(2);
  }
  item(ib, 100010);
  k = scen_sv("m2");
  d.mv_size = ITEM;
  d.mv_data = ib;
  OK(mdb_del(txn, fixed, &k, &d));
  CHECK(mdb_del(txn, fixed, &k, &d), MDB_NOTFOUND);
  k = scen_sv("m3");
  OK(mdb_del(txn, fixed, &k, NULL));
  put_multiple(c, "m4", 1, 1, 2, 0);
  mdb_cursor_close(c);
  read_multiple(txn, fixed, "m1");
  read_multiple(txn, fixed, "m2");
  read_multiple(txn, fixed, "m4");
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_stat(txn, fixed, "fixed");
  scen_dump(txn, fixed, "fixed", 1);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
