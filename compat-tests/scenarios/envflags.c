/* Scenario: environment flags.
 * The same small workload in environments opened with MDB_NOSUBDIR,
 * MDB_WRITEMAP (where nested transactions are refused), MDB_NOSYNC |
 * MDB_NOMETASYNC, MDB_MAPASYNC | MDB_WRITEMAP, MDB_NORDAHEAD | MDB_NOMEMINIT
 * and MDB_NOLOCK; mdb_env_set_flags / mdb_env_get_flags; the reopening of
 * each environment. */
#include "scen_common.h"

static void workload(MDB_env *env, const char *label) {
  MDB_txn *txn, *child;
  MDB_dbi db, dups;
  MDB_val k, d;
  char kb[32], vb[32];
  unsigned int fl = 0;
  int rc;

  printf("-- %s\n", label);
  OK(mdb_env_get_flags(env, &fl));
  printf("env flags=0x%x\n", fl);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "db", MDB_CREATE, &db));
  OK(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));
  for (unsigned i = 0; i < 300; i++) {
    snprintf(kb, sizeof kb, "k%04u", (i * 37) % 300);
    snprintf(vb, sizeof vb, "v%u", i);
    k = scen_sv(kb);
    d = scen_sv(vb);
    if (mdb_put(txn, db, &k, &d, 0)) exit(2);
    k = scen_sv(i % 2 ? "odd" : "even");
    if (mdb_put(txn, dups, &k, &d, 0)) exit(2);
  }
  rc = mdb_txn_begin(env, txn, 0, &child);
  printf("nested txn = %s\n", scen_rcname(rc));
  if (rc == 0) {
    k = scen_sv("child");
    d = scen_sv("c");
    OK(mdb_put(child, db, &k, &d, 0));
    OK(mdb_txn_commit(child));
  }
  k = scen_sv("k0100");
  OK(mdb_del(txn, db, &k, NULL));
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_dump(txn, db, "db", 1);
  scen_dump(txn, dups, "dups", 1);
  scen_stat(txn, db, "db");
  mdb_txn_abort(txn);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  static const struct {
    const char *sub;
    unsigned int flags;
  } cases[] = {
      {"plain", 0},
      {"writemap", MDB_WRITEMAP},
      {"nosync", MDB_NOSYNC | MDB_NOMETASYNC},
      {"mapasync", MDB_WRITEMAP | MDB_MAPASYNC},
      {"nordahead", MDB_NORDAHEAD | MDB_NOMEMINIT},
      {"nolock", MDB_NOLOCK},
  };
  char path[4096];
  MDB_env *env;

  for (unsigned i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    env = scen_env(dir, cases[i].sub, 4, 0, cases[i].flags, NULL, 0);
    workload(env, cases[i].sub);
    mdb_env_close(env);
    env = scen_env(dir, cases[i].sub, 4, 0, cases[i].flags | MDB_RDONLY, NULL, 0);
    {
      MDB_txn *txn;
      MDB_dbi db;
      OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
      OK(mdb_dbi_open(txn, "db", 0, &db));
      scen_dump(txn, db, "db reopened", 1);
      mdb_txn_abort(txn);
    }
    mdb_env_close(env);
  }

  /* MDB_NOSUBDIR: the path names the data file; the lock file is path-lock. */
  snprintf(path, sizeof path, "%s/nosubdir.mdb", dir);
  printf("open env nosubdir.mdb flags=MDB_NOSUBDIR\n");
  OK(mdb_env_create(&env));
  OK(mdb_env_set_maxdbs(env, 4));
  OK(mdb_env_open(env, path, MDB_NOSUBDIR, 0644));
  workload(env, "nosubdir");
  mdb_env_close(env);

  /* mdb_env_set_flags at run time. */
  env = scen_env(dir, "setflags", 4, 0, 0, NULL, 0);
  OK(mdb_env_set_flags(env, MDB_NOSYNC, 1));
  workload(env, "setflags NOSYNC on");
  OK(mdb_env_set_flags(env, MDB_NOSYNC, 0));
  CHECK(mdb_env_set_flags(env, MDB_WRITEMAP, 1), EINVAL);
  {
    unsigned int fl = 0;
    OK(mdb_env_get_flags(env, &fl));
    printf("env flags=0x%x\n", fl);
  }
  OK(mdb_env_sync(env, 1));
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
