/* Scenario: sorted duplicates (MDB_DUPSORT).
 * Keys with a handful of duplicates (kept in a sub-page) and one key with
 * hundreds (converted to a sub-database); every cursor operation that walks
 * duplicates; mdb_cursor_count; put of an existing pair with and without
 * NODUPDATA; mdb_del of one pair and of a whole key; mdb_cursor_del with and
 * without MDB_NODUPDATA; a REVERSEDUP database. */
#include "scen_common.h"

static void put_kv(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v, unsigned flags,
                   int want) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_put(txn, dbi, &key, &data, flags);
  printf("put \"%s\"=\"%s\" flags=0x%x = %s\n", k, v, flags, scen_rcname(rc));
  if (rc == MDB_KEYEXIST) scen_pkv("existing:", NULL, &data);
  if (rc != want) exit(2);
}

static void del_kv(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v, int want) {
  MDB_val key = scen_sv(k), data;
  if (v) data = scen_sv(v);
  int rc = mdb_del(txn, dbi, &key, v ? &data : NULL);
  printf("del \"%s\" %s%s%s = %s\n", k, v ? "\"" : "(all)", v ? v : "", v ? "\"" : "",
         scen_rcname(rc));
  if (rc != want) exit(2);
}

/* Walk key by key with NEXT_NODUP, printing each key's count and duplicates
 * (walked with NEXT_DUP). */
static void walk_by_key(MDB_txn *txn, MDB_dbi dbi, int print_dups) {
  MDB_cursor *c;
  MDB_val k, d;
  int rc;
  OK(mdb_cursor_open(txn, dbi, &c));
  printf("walk by key:\n");
  for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_NODUP)) {
    size_t cnt = 0, seen = 1;
    uint32_t h = scen_fnv(d.mv_data, d.mv_size, SCEN_FNV_INIT);
    OK(mdb_cursor_count(c, &cnt));
    printf("  key ");
    scen_pval(&k);
    printf(" count=%zu first=", cnt);
    scen_pval(&d);
    printf("\n");
    while (mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP) == 0) {
      seen++;
      h = scen_fnv(d.mv_data, d.mv_size, h);
      if (print_dups) scen_pkv("    dup", NULL, &d);
    }
    printf("  walked %zu dups, hash %08x\n", seen, h);
  }
  printf("walk by key end: %s\n", scen_rcname(rc));
  mdb_cursor_close(c);
}

/* Backwards walk with PREV, then key by key with PREV_NODUP / PREV_DUP. */
static void walk_back(MDB_txn *txn, MDB_dbi dbi) {
  MDB_cursor *c;
  MDB_val k, d;
  int rc, n = 0;
  uint32_t h = SCEN_FNV_INIT;
  OK(mdb_cursor_open(txn, dbi, &c));
  for (rc = mdb_cursor_get(c, &k, &d, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_PREV)) {
    n++;
    h = scen_fnv(k.mv_data, k.mv_size, h);
    h = scen_fnv(d.mv_data, d.mv_size, h);
  }
  printf("walk back PREV: %s, %d entries, hash %08x\n", scen_rcname(rc), n, h);
  printf("walk back by key:\n");
  for (rc = mdb_cursor_get(c, &k, &d, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_PREV_NODUP)) {
    size_t m = 1;
    MDB_val last = d;
    while (mdb_cursor_get(c, &k, &d, MDB_PREV_DUP) == 0) m++;
    printf("  key ");
    scen_pval(&k);
    printf(" last=");
    scen_pval(&last);
    printf(" first=");
    scen_pval(&d);
    printf(" dups=%zu\n", m);
  }
  printf("walk back by key end: %s\n", scen_rcname(rc));
  mdb_cursor_close(c);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 4, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi dups, rev;
  MDB_cursor *c;
  MDB_val k, d;
  scen_rng rng = {0x9e3779b97f4a7c15ull};
  char kb[32], vb[32];

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));
  OK(mdb_dbi_open(txn, "rev", MDB_CREATE | MDB_DUPSORT | MDB_REVERSEDUP, &rev));
  scen_flags(txn, dups, "dups");
  scen_flags(txn, rev, "rev");
  for (unsigned i = 0; i < 20; i++) {
    unsigned nd = i % 7 + 1, order[8];
    for (unsigned j = 0; j < nd; j++) order[j] = j;
    scen_shuffle(order, nd, &rng);
    snprintf(kb, sizeof kb, "k%02u", i);
    for (unsigned j = 0; j < nd; j++) {
      snprintf(vb, sizeof vb, "v%03u", order[j] * 13 % 100);
      put_kv(txn, dups, kb, vb, 0, 0);
    }
  }
  {
    /* 400 duplicates of one key: a sub-database. */
    unsigned order[400];
    for (unsigned j = 0; j < 400; j++) order[j] = j;
    scen_shuffle(order, 400, &rng);
    MDB_val key = scen_sv("k05");
    unsigned added = 0;
    for (unsigned j = 0; j < 400; j++) {
      snprintf(vb, sizeof vb, "d%04u-%s", order[j], "padding-to-make-it-longer");
      d = scen_sv(vb);
      if (mdb_put(txn, dups, &key, &d, 0) == 0) added++;
    }
    printf("k05: %u puts succeeded\n", added);
  }
  /* An existing pair: plain put succeeds without change, NODUPDATA refuses. */
  put_kv(txn, dups, "k03", "v013", 0, 0);
  put_kv(txn, dups, "k03", "v013", MDB_NODUPDATA, MDB_KEYEXIST);
  put_kv(txn, dups, "k03", "v014", MDB_NODUPDATA, 0);
  put_kv(txn, dups, "k05", "d0007-padding-to-make-it-longer", MDB_NODUPDATA, MDB_KEYEXIST);
  /* NOOVERWRITE on an existing key returns its first duplicate. */
  put_kv(txn, dups, "k04", "zzz", MDB_NOOVERWRITE, MDB_KEYEXIST);
  put_kv(txn, dups, "k99", "new", MDB_NOOVERWRITE, 0);
  for (unsigned j = 0; j < 10; j++) {
    snprintf(vb, sizeof vb, "r%u", (j * 7) % 10);
    put_kv(txn, rev, j % 2 ? "odd" : "even", vb, 0, 0);
  }
  put_kv(txn, rev, "ab", "x1", 0, 0);
  put_kv(txn, rev, "ab", "1x", 0, 0);
  put_kv(txn, rev, "ab", "2a", 0, 0);
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_stat(txn, dups, "dups");
  scen_stat(txn, rev, "rev");
  walk_by_key(txn, dups, 1);
  walk_back(txn, dups);
  scen_dump(txn, rev, "rev", 0);
  walk_by_key(txn, rev, 1);

  OK(mdb_cursor_open(txn, dups, &c));
  k = scen_sv("k05");
  CGET(c, &k, &d, MDB_SET, 0);
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  CGET(c, &k, &d, MDB_LAST_DUP, 0);
  CGET(c, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(c, &k, &d, MDB_PREV_DUP, 0);
  CGET(c, &k, &d, MDB_FIRST_DUP, 0);
  CGET(c, &k, &d, MDB_PREV_DUP, MDB_NOTFOUND);
  CGET(c, &k, &d, MDB_NEXT, 0);
  k = scen_sv("k05");
  d = scen_sv("d0150-padding-to-make-it-longer");
  CGET(c, &k, &d, MDB_GET_BOTH, 0);
  CGET(c, &k, &d, MDB_NEXT_DUP, 0);
  k = scen_sv("k05");
  d = scen_sv("d0150-q");
  CGET(c, &k, &d, MDB_GET_BOTH, MDB_NOTFOUND);
  k = scen_sv("k05");
  d = scen_sv("d0150-q");
  CGET(c, &k, &d, MDB_GET_BOTH_RANGE, 0);
  k = scen_sv("k05");
  d = scen_sv("w");
  CGET(c, &k, &d, MDB_GET_BOTH_RANGE, MDB_NOTFOUND);
  k = scen_sv("k07");
  d = scen_sv("v");
  CGET(c, &k, &d, MDB_GET_BOTH_RANGE, 0);
  CGET(c, &k, &d, MDB_NEXT_NODUP, 0);
  CGET(c, &k, &d, MDB_PREV_NODUP, 0);
  CGET(c, &k, &d, MDB_PREV_NODUP, 0);
  k = scen_sv("k05x");
  CGET(c, &k, &d, MDB_SET_RANGE, 0);
  k = scen_sv("k06");
  CGET(c, &k, &d, MDB_SET_KEY, 0);
  k = scen_sv("k06a");
  CGET(c, &k, &d, MDB_SET_KEY, MDB_NOTFOUND);
  k = scen_sv("zzz");
  CGET(c, &k, &d, MDB_SET_RANGE, MDB_NOTFOUND);
  CGET(c, &k, &d, MDB_LAST, 0);
  CGET(c, &k, &d, MDB_FIRST, 0);
  CGET(c, &k, &d, MDB_PREV, MDB_NOTFOUND);
  mdb_cursor_close(c);
  k = scen_sv("k03");
  OK(mdb_get(txn, dups, &k, &d));
  scen_pkv("get k03 ->", NULL, &d);
  k = scen_sv("k05");
  OK(mdb_get(txn, dups, &k, &d));
  scen_pkv("get k05 ->", NULL, &d);
  mdb_txn_abort(txn);

  /* Deletions. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  del_kv(txn, dups, "k03", "v013", 0);
  del_kv(txn, dups, "k03", "v013", MDB_NOTFOUND);
  del_kv(txn, dups, "k03", "nonexistent", MDB_NOTFOUND);
  del_kv(txn, dups, "k04", NULL, 0);
  del_kv(txn, dups, "k04", NULL, MDB_NOTFOUND);
  del_kv(txn, dups, "k00", "v000", 0); /* its only duplicate: the key goes */
  OK(mdb_cursor_open(txn, dups, &c));
  k = scen_sv("k05");
  d = scen_sv("d0100-padding-to-make-it-longer");
  CGET(c, &k, &d, MDB_GET_BOTH, 0);
  OK(mdb_cursor_del(c, 0));
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  CGET(c, &k, &d, MDB_NEXT, 0);
  {
    /* Delete all but 5 duplicates of k05 through the cursor. */
    size_t cnt = 0;
    int n = 0;
    k = scen_sv("k05");
    CGET(c, &k, &d, MDB_SET_KEY, 0);
    OK(mdb_cursor_count(c, &cnt));
    printf("k05 count before=%zu\n", cnt);
    while (cnt > 5) {
      if (mdb_cursor_del(c, 0) != 0) exit(2);
      n++;
      cnt--;
      if (n % 3 == 0) {
        int rc = mdb_cursor_get(c, &k, &d, MDB_NEXT_DUP);
        if (rc == MDB_NOTFOUND) rc = mdb_cursor_get(c, &k, &d, MDB_FIRST_DUP);
        if (rc) exit(2);
      } else {
        k = scen_sv("k05");
        if (mdb_cursor_get(c, &k, &d, MDB_SET_KEY)) exit(2);
      }
    }
    OK(mdb_cursor_count(c, &cnt));
    printf("k05 deleted %d, count after=%zu\n", n, cnt);
  }
  k = scen_sv("k06");
  CGET(c, &k, &d, MDB_SET_KEY, 0);
  OK(mdb_cursor_del(c, MDB_NODUPDATA));
  CGET(c, &k, &d, MDB_GET_CURRENT, 0);
  k = scen_sv("k06");
  CGET(c, &k, &d, MDB_SET_KEY, MDB_NOTFOUND);
  k = scen_sv("k19");
  CGET(c, &k, &d, MDB_SET_KEY, 0);
  CGET(c, &k, &d, MDB_LAST_DUP, 0);
  OK(mdb_cursor_del(c, 0));
  CGET(c, &k, &d, MDB_NEXT, 0);
  mdb_cursor_close(c);
  walk_by_key(txn, dups, 1);
  scen_stat(txn, dups, "dups");
  OK(mdb_txn_commit(txn));

  /* An aborted change leaves nothing behind. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  put_kv(txn, dups, "k01", "aborted", 0, 0);
  del_kv(txn, dups, "k02", NULL, 0);
  mdb_txn_abort(txn);

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  walk_by_key(txn, dups, 1);
  walk_back(txn, dups);
  scen_dump(txn, dups, "dups", 0);
  scen_stat(txn, dups, "dups");
  mdb_txn_abort(txn);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
