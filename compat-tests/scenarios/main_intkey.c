/* Scenario: a main database opened with MDB_INTEGERKEY.
 * Programs that use only the main database may give it MDB_INTEGERKEY or
 * MDB_DUPSORT (LMDB then refuses named databases in that environment). The
 * shim keeps its reserved databases as named databases of the same
 * environment, so these are the programs where it has to take care. */
#include "scen_common.h"

static void run_intkey(const char *dir) {
  MDB_env *env = scen_env(dir, "intkey", -1, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi m, extra;
  MDB_val k, d;
  char vb[32];
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, MDB_CREATE | MDB_INTEGERKEY, &m));
  scen_flags(txn, m, "main");
  for (unsigned i = 0; i < 500; i++) {
    size_t key = (i * 2654435761u) % 100003u;
    snprintf(vb, sizeof vb, "value %zu", key);
    k.mv_size = sizeof key;
    k.mv_data = &key;
    d = scen_sv(vb);
    if (mdb_put(txn, m, &k, &d, 0)) exit(2);
  }
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  {
    MDB_cursor *c;
    int rc, n = 0;
    OK(mdb_cursor_open(txn, m, &c));
    for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &d, MDB_NEXT), n++) {
      size_t key;
      if (k.mv_size != sizeof key) exit(2);
      memcpy(&key, k.mv_data, sizeof key);
      if (n < 10 || n % 50 == 0) printf("  %zu => %.*s\n", key, (int)d.mv_size, (char *)d.mv_data);
    }
    printf("walk: %s, %d entries\n", scen_rcname(rc), n);
    size_t probe = 50000;
    k.mv_size = sizeof probe;
    k.mv_data = &probe;
    CGET(c, &k, &d, MDB_SET_RANGE, 0);
    CGET(c, &k, &d, MDB_LAST, 0);
    mdb_cursor_close(c);
  }
  scen_stat(txn, m, "main");
  {
    size_t key = 7;
    k.mv_size = sizeof key;
    k.mv_data = &key;
    d = scen_sv("seven");
    OK(mdb_put(txn, m, &k, &d, MDB_NOOVERWRITE));
    OK(mdb_del(txn, m, &k, NULL));
  }
  CHECK(mdb_dbi_open(txn, "named", MDB_CREATE, &extra), MDB_DBS_FULL);
  OK(mdb_txn_commit(txn));
  mdb_env_close(env);

  /* With room for named databases, LMDB refuses them in this environment. */
  env = scen_env(dir, "intkey", 4, 0, 0, NULL, 0);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  CHECK(mdb_dbi_open(txn, "named", MDB_CREATE, &extra), MDB_INCOMPATIBLE);
  CHECK(mdb_dbi_open(txn, "named", 0, &extra), MDB_NOTFOUND);
  OK(mdb_dbi_open(txn, NULL, 0, &m));
  scen_flags(txn, m, "main reopened");
  scen_stat(txn, m, "main");
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  run_intkey(dir);
  printf("done\n");
  return 0;
}
