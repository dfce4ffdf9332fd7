/* Scenario: copies of a live environment.
 * mdb_env_copy, mdb_env_copy2(MDB_CP_COMPACT) and mdb_env_copyfd2 of an
 * environment with named databases (one DUPSORT) and deleted data, taken
 * while a read-only transaction is open; each copy is then opened and read.
 * Under the shim a copy must carry the bookkeeping too (the driver runs
 * `trlmdb verify` on every environment under the work directory). */
#include <fcntl.h>
#include <unistd.h>

#include "scen_common.h"

static void fill(MDB_env *env) {
  MDB_txn *txn;
  MDB_dbi a, b;
  char kb[32], vb[64];
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "a", MDB_CREATE, &a));
  OK(mdb_dbi_open(txn, "b", MDB_CREATE | MDB_DUPSORT, &b));
  for (unsigned i = 0; i < 2000; i++) {
    snprintf(kb, sizeof kb, "key%05u", (i * 7919u) % 2000u);
    snprintf(vb, sizeof vb, "value %u %s", i, i % 3 ? "short" : "a somewhat longer value");
    MDB_val k = scen_sv(kb), d = scen_sv(vb);
    if (mdb_put(txn, a, &k, &d, 0)) exit(2);
    snprintf(kb, sizeof kb, "dk%02u", i % 50);
    d = scen_sv(vb);
    k = scen_sv(kb);
    if (mdb_put(txn, b, &k, &d, 0)) exit(2);
  }
  OK(mdb_txn_commit(txn));
  /* Delete half so that the compacting copy has something to leave out. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  for (unsigned i = 0; i < 2000; i += 2) {
    snprintf(kb, sizeof kb, "key%05u", i);
    MDB_val k = scen_sv(kb);
    if (mdb_del(txn, a, &k, NULL)) exit(2);
  }
  for (unsigned i = 0; i < 50; i += 3) {
    snprintf(kb, sizeof kb, "dk%02u", i);
    MDB_val k = scen_sv(kb);
    if (mdb_del(txn, b, &k, NULL)) exit(2);
  }
  OK(mdb_txn_commit(txn));
}

static void read_env(const char *dir, const char *sub) {
  MDB_env *env = scen_env(dir, sub, 4, 0, MDB_RDONLY, NULL, 0);
  MDB_txn *txn;
  MDB_dbi a, b, m;
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  OK(mdb_dbi_open(txn, "a", 0, &a));
  OK(mdb_dbi_open(txn, "b", 0, &b));
  OK(mdb_dbi_open(txn, NULL, 0, &m));
  scen_flags(txn, a, "a");
  scen_flags(txn, b, "b");
  scen_dump(txn, a, "a", 1);
  scen_dump(txn, b, "b", 0);
  scen_stat(txn, a, "a");
  scen_stat(txn, b, "b");
  scen_stat(txn, m, "main");
  mdb_txn_abort(txn);
  mdb_env_close(env);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  char path[4096];
  MDB_env *env = scen_env(dir, "src", 4, 0, MDB_NOTLS, NULL, 0);
  MDB_txn *ro;
  fill(env);
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &ro));

  snprintf(path, sizeof path, "%s/copy", dir);
  mkdir(path, 0755);
  OK(mdb_env_copy(env, path));
  snprintf(path, sizeof path, "%s/compact", dir);
  mkdir(path, 0755);
  OK(mdb_env_copy2(env, path, MDB_CP_COMPACT));
  snprintf(path, sizeof path, "%s/fd", dir);
  mkdir(path, 0755);
  snprintf(path, sizeof path, "%s/fd/data.mdb", dir);
  {
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0) exit(2);
    OK(mdb_env_copyfd2(env, fd, MDB_CP_COMPACT));
    close(fd);
  }
  snprintf(path, sizeof path, "%s/missing/dir", dir);
  CHECK(mdb_env_copy(env, path), ENOENT);
  mdb_txn_abort(ro);
  mdb_env_close(env);

  read_env(dir, "src");
  read_env(dir, "copy");
  read_env(dir, "compact");
  read_env(dir, "fd");
  printf("done\n");
  return 0;
}
