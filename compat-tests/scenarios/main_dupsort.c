/* Scenario: a main database opened with MDB_DUPSORT.
 * Programs that use only the main database may give it MDB_INTEGERKEY or
 * MDB_DUPSORT (LMDB then refuses named databases in that environment). The
 * shim keeps its reserved databases as named databases of the same
 * environment, so these are the programs where it has to take care. */
#include "scen_common.h"

static void run_dupsort(const char *dir) {
  MDB_env *env = scen_env(dir, "dupsort", -1, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi m;
  char kb[16], vb[16];
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, MDB_CREATE | MDB_DUPSORT, &m));
  scen_flags(txn, m, "main");
  for (unsigned i = 0; i < 60; i++) {
    snprintf(kb, sizeof kb, "k%u", i % 7);
    snprintf(vb, sizeof vb, "v%02u", (i * 37) % 60);
    MDB_val k = scen_sv(kb), d = scen_sv(vb);
    if (mdb_put(txn, m, &k, &d, 0)) exit(2);
  }
  {
    MDB_val k = scen_sv("k3"), d = scen_sv("v51");
    OK(mdb_del(txn, m, &k, &d));
    k = scen_sv("k4");
    OK(mdb_del(txn, m, &k, NULL));
  }
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_dump(txn, m, "main", 0);
  scen_stat(txn, m, "main");
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  run_dupsort(dir);
  printf("done\n");
  return 0;
}
