/* Scenario: named sub-databases.
 * Creation with every key flag, the maxdbs limit (with and without
 * mdb_env_set_maxdbs), names that clash with plain keys of the main database,
 * the main database's view of the sub-database records, mdb_stat, handle
 * close/reopen, mdb_drop(0) and mdb_drop(1), re-creation after a drop. */
#include "scen_common.h"

/* The main database holds one record per named database: print the keys, and
 * the data only for records this program wrote itself (a sub-database record
 * holds page numbers, which the shim may change). */
static void dump_main(MDB_txn *txn, MDB_dbi main_dbi) {
  MDB_cursor *c;
  MDB_val k, d;
  int rc, n = 0;
  OK(mdb_cursor_open(txn, main_dbi, &c));
  printf("main db:\n");
  while ((rc = mdb_cursor_get(c, &k, &d, n ? MDB_NEXT : MDB_FIRST)) == 0) {
    n++;
    if (k.mv_size >= 5 && memcmp(k.mv_data, "plain", 5) == 0) {
      scen_pkv("", &k, &d);
    } else {
      printf("  ");
      scen_pval(&k);
      printf(" => <record of %zu bytes>\n", d.mv_size);
    }
  }
  printf("main db end: %s, %d entries\n", scen_rcname(rc), n);
  mdb_cursor_close(c);
}

static void put_str(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v, int want) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_put(txn, dbi, &key, &data, 0);
  printf("put \"%s\"=\"%s\" = %s\n", k, v, scen_rcname(rc));
  if (rc != want) exit(2);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env;
  MDB_txn *txn;
  MDB_dbi main_dbi, alpha, beta, gamma, delta, extra;
  MDB_val k, d;

  /* 1. No mdb_env_set_maxdbs: the program may not open any named database. */
  env = scen_env(dir, "nomaxdbs", -1, 0, 0, NULL, 0);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, 0, &main_dbi));
  CHECK(mdb_dbi_open(txn, "named", MDB_CREATE, &extra), MDB_DBS_FULL);
  put_str(txn, main_dbi, "plain-key", "plain value", 0);
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_dump(txn, main_dbi, "nomaxdbs main", 0);
  scen_stat(txn, main_dbi, "nomaxdbs main");
  mdb_txn_abort(txn);
  mdb_env_close(env);

  /* 2. maxdbs = 4: exactly four named databases. */
  env = scen_env(dir, "main", 4, 0, 0, NULL, 0);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, 0, &main_dbi));
  put_str(txn, main_dbi, "plain-a", "value a", 0);
  put_str(txn, main_dbi, "plain-z", "value z", 0);
  CHECK(mdb_dbi_open(txn, "plain-a", 0, &extra), MDB_INCOMPATIBLE);
  CHECK(mdb_dbi_open(txn, "plain-a", MDB_CREATE, &extra), MDB_INCOMPATIBLE);
  CHECK(mdb_dbi_open(txn, "missing", 0, &extra), MDB_NOTFOUND);
  OK(mdb_dbi_open(txn, "alpha", MDB_CREATE, &alpha));
  OK(mdb_dbi_open(txn, "beta", MDB_CREATE | MDB_DUPSORT, &beta));
  OK(mdb_dbi_open(txn, "gamma", MDB_CREATE | MDB_INTEGERKEY, &gamma));
  OK(mdb_dbi_open(txn, "delta", MDB_CREATE | MDB_REVERSEKEY, &delta));
  CHECK(mdb_dbi_open(txn, "epsilon", MDB_CREATE, &extra), MDB_DBS_FULL);
  OK(mdb_dbi_open(txn, "alpha", 0, &extra));
  printf("alpha reopened gives the same handle: %s\n", extra == alpha ? "yes" : "no");
  scen_flags(txn, main_dbi, "main");
  scen_flags(txn, alpha, "alpha");
  scen_flags(txn, beta, "beta");
  scen_flags(txn, gamma, "gamma");
  scen_flags(txn, delta, "delta");
  /* A database is visible in the main database before commit. */
  dump_main(txn, main_dbi);

  for (unsigned i = 0; i < 40; i++) {
    char kb[16], vb[32];
    snprintf(kb, sizeof kb, "a%02u", (i * 7) % 40);
    snprintf(vb, sizeof vb, "alpha value %u", i);
    put_str(txn, alpha, kb, vb, 0);
  }
  for (unsigned i = 0; i < 12; i++) {
    char kb[16], vb[32];
    snprintf(kb, sizeof kb, "b%u", i % 3);
    snprintf(vb, sizeof vb, "dup %02u", (i * 5) % 12);
    put_str(txn, beta, kb, vb, 0);
  }
  for (unsigned i = 0; i < 30; i++) {
    unsigned int ik = (i * 2654435761u) % 100000u;
    char vb[32];
    snprintf(vb, sizeof vb, "int %u", ik);
    k.mv_size = sizeof ik;
    k.mv_data = &ik;
    d = scen_sv(vb);
    OK(mdb_put(txn, gamma, &k, &d, 0));
  }
  {
    const char *rk[] = {"ab", "ba", "cab", "bac", "a", "b", "abc", "cba", "zz", "az"};
    for (unsigned i = 0; i < sizeof rk / sizeof rk[0]; i++) put_str(txn, delta, rk[i], "r", 0);
  }
  scen_stat(txn, main_dbi, "main before commit");
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  dump_main(txn, main_dbi);
  scen_stat(txn, main_dbi, "main");
  scen_dump(txn, alpha, "alpha", 0);
  scen_dump(txn, beta, "beta", 0);
  scen_dump(txn, gamma, "gamma", 0);
  scen_dump(txn, delta, "delta", 0);
  scen_stat(txn, alpha, "alpha");
  scen_stat(txn, beta, "beta");
  scen_stat(txn, gamma, "gamma");
  scen_stat(txn, delta, "delta");
  {
    MDB_stat st;
    OK(mdb_env_stat(env, &st));
    printf("env_stat entries=%zu psize=%u\n", (size_t)st.ms_entries, st.ms_psize);
  }
  mdb_txn_abort(txn);

  /* Empty one database, delete another, then use the freed name again. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_drop(txn, alpha, 0));
  scen_stat(txn, alpha, "alpha after drop(0)");
  put_str(txn, alpha, "after-empty", "x", 0);
  OK(mdb_drop(txn, beta, 1));
  CHECK(mdb_dbi_open(txn, "beta", 0, &extra), MDB_NOTFOUND);
  dump_main(txn, main_dbi);
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  CHECK(mdb_dbi_open(txn, "beta", 0, &extra), MDB_NOTFOUND);
  OK(mdb_dbi_open(txn, "beta", MDB_CREATE, &beta));
  scen_flags(txn, beta, "beta re-created without DUPSORT");
  put_str(txn, beta, "b0", "one", 0);
  put_str(txn, beta, "b0", "two", 0);
  scen_dump(txn, beta, "beta", 0);
  scen_dump(txn, alpha, "alpha", 0);
  /* Drop the main database's plain records: named databases stay. */
  k = scen_sv("plain-a");
  OK(mdb_del(txn, main_dbi, &k, NULL));
  CHECK(mdb_del(txn, main_dbi, &k, NULL), MDB_NOTFOUND);
  k = scen_sv("gamma");
  OK(mdb_get(txn, main_dbi, &k, &d));
  printf("get main \"gamma\": %zu bytes\n", d.mv_size);
  OK(mdb_txn_commit(txn));

  /* Deleting or overwriting a sub-database record through the main database
   * is refused, and the transaction is then unusable. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  k = scen_sv("gamma");
  CHECK(mdb_del(txn, main_dbi, &k, NULL), MDB_INCOMPATIBLE);
  d = scen_sv("x");
  CHECK(mdb_put(txn, main_dbi, &k, &d, 0), MDB_BAD_TXN);
  CHECK(mdb_txn_commit(txn), MDB_BAD_TXN);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  CHECK(mdb_put(txn, main_dbi, &k, &d, 0), MDB_INCOMPATIBLE);
  OK(mdb_get(txn, main_dbi, &k, &d));
  printf("get main \"gamma\": %zu bytes\n", d.mv_size);
  OK(mdb_txn_commit(txn));

  /* Close a handle and open it again with no flags: the flags come from disk. */
  mdb_dbi_close(env, gamma);
  mdb_dbi_close(env, delta);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "gamma", 0, &gamma));
  scen_flags(txn, gamma, "gamma reopened");
  scen_dump(txn, gamma, "gamma", 0);
  OK(mdb_dbi_open(txn, "epsilon", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &extra));
  CHECK(mdb_dbi_open(txn, "zeta", MDB_CREATE, &extra), MDB_DBS_FULL);
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  dump_main(txn, main_dbi);
  scen_stat(txn, main_dbi, "main");
  mdb_txn_abort(txn);
  mdb_env_close(env);

  /* Reopen: the named databases are found again. */
  env = scen_env(dir, "main", 8, 0, MDB_RDONLY, NULL, 0);
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  OK(mdb_dbi_open(txn, NULL, 0, &main_dbi));
  dump_main(txn, main_dbi);
  {
    const char *names[] = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta"};
    for (unsigned i = 0; i < 6; i++) {
      int rc = mdb_dbi_open(txn, names[i], 0, &extra);
      printf("open %s = %s\n", names[i], scen_rcname(rc));
      if (rc == 0) {
        scen_flags(txn, extra, names[i]);
        scen_dump(txn, extra, names[i], 0);
      }
    }
  }
  CHECK(mdb_dbi_open(txn, "zeta", MDB_CREATE, &extra), EACCES);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
