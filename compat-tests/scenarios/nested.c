/* Scenario: nested write transactions.
 * Children that commit and children that abort, three levels deep; a named
 * database created, emptied and deleted inside children that then commit or
 * abort; DUPSORT changes inside children; the rules for children (one at a
 * time, parent blocked while a child is open, no child of a read-only
 * transaction); a parent that aborts after its children committed. */
#include "scen_common.h"

static void put(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v, int want) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_put(txn, dbi, &key, &data, 0);
  printf("put \"%s\"=\"%s\" = %s\n", k, v, scen_rcname(rc));
  if (rc != want) exit(2);
}

static void get(MDB_txn *txn, MDB_dbi dbi, const char *k) {
  MDB_val key = scen_sv(k), data;
  int rc = mdb_get(txn, dbi, &key, &data);
  printf("get \"%s\" = %s", k, scen_rcname(rc));
  if (rc == 0)
    scen_pkv("", NULL, &data);
  else
    printf("\n");
}

static void del(MDB_txn *txn, MDB_dbi dbi, const char *k, int want) {
  MDB_val key = scen_sv(k);
  int rc = mdb_del(txn, dbi, &key, NULL);
  printf("del \"%s\" = %s\n", k, scen_rcname(rc));
  if (rc != want) exit(2);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 8, 0, 0, NULL, 0);
  MDB_txn *t0, *c1, *c2, *c3, *ro;
  MDB_dbi n, d, n2, n3, extra;

  OK(mdb_txn_begin(env, NULL, 0, &t0));
  OK(mdb_dbi_open(t0, "n", MDB_CREATE, &n));
  OK(mdb_dbi_open(t0, "d", MDB_CREATE | MDB_DUPSORT, &d));
  put(t0, n, "a", "1", 0);
  put(t0, d, "k", "v1", 0);

  printf("-- child 1 aborts\n");
  OK(mdb_txn_begin(env, t0, 0, &c1));
  put(c1, n, "b", "2", 0);
  del(c1, n, "a", 0);
  put(c1, d, "k", "v2", 0);
  get(c1, n, "a");
  get(c1, n, "b");
  /* The parent is blocked while its child is open, and has one child at most. */
  {
    MDB_val key = scen_sv("x"), data = scen_sv("y");
    CHECK(mdb_put(t0, n, &key, &data, 0), MDB_BAD_TXN);
    CHECK(mdb_txn_begin(env, t0, 0, &c2), MDB_BAD_TXN);
  }
  mdb_txn_abort(c1);
  get(t0, n, "a");
  get(t0, n, "b");
  scen_dump(t0, d, "d", 0);

  printf("-- child 2 commits, with a grandchild that commits and one that aborts\n");
  OK(mdb_txn_begin(env, t0, 0, &c1));
  put(c1, n, "c", "3", 0);
  OK(mdb_txn_begin(env, c1, 0, &c2));
  put(c2, n, "d", "4", 0);
  put(c2, n, "c", "3 changed by grandchild", 0);
  put(c2, d, "k", "v3", 0);
  OK(mdb_txn_commit(c2));
  OK(mdb_txn_begin(env, c1, 0, &c2));
  put(c2, n, "e", "5", 0);
  del(c2, n, "a", 0);
  del(c2, n, "a", MDB_NOTFOUND);
  {
    MDB_val key = scen_sv("k"), data = scen_sv("v1");
    OK(mdb_del(c2, d, &key, &data));
  }
  OK(mdb_txn_begin(env, c2, 0, &c3));
  put(c3, n, "f", "6", 0);
  OK(mdb_txn_commit(c3));
  get(c2, n, "f");
  mdb_txn_abort(c2);
  get(c1, n, "e");
  get(c1, n, "f");
  get(c1, n, "a");
  scen_dump(c1, n, "n in child", 0);
  OK(mdb_txn_commit(c1));
  scen_dump(t0, n, "n", 0);
  scen_dump(t0, d, "d", 0);

  printf("-- databases created and deleted in children\n");
  OK(mdb_txn_begin(env, t0, 0, &c1));
  OK(mdb_dbi_open(c1, "n2", MDB_CREATE, &n2));
  put(c1, n2, "x", "in n2", 0);
  mdb_txn_abort(c1);
  CHECK(mdb_dbi_open(t0, "n2", 0, &extra), MDB_NOTFOUND);
  OK(mdb_txn_begin(env, t0, 0, &c1));
  OK(mdb_dbi_open(c1, "n3", MDB_CREATE | MDB_DUPSORT, &n3));
  put(c1, n3, "x", "in n3", 0);
  put(c1, n3, "x", "also in n3", 0);
  OK(mdb_txn_commit(c1));
  scen_dump(t0, n3, "n3", 0);
  OK(mdb_txn_begin(env, t0, 0, &c1));
  OK(mdb_drop(c1, n, 0));
  scen_dump(c1, n, "n emptied in child", 0);
  mdb_txn_abort(c1);
  scen_dump(t0, n, "n after aborted drop", 0);
  OK(mdb_txn_begin(env, t0, 0, &c1));
  OK(mdb_drop(c1, d, 0));
  put(c1, d, "k2", "after drop", 0);
  OK(mdb_txn_commit(c1));
  scen_dump(t0, d, "d after committed drop(0)", 0);
  OK(mdb_txn_begin(env, t0, 0, &c1));
  OK(mdb_drop(c1, n3, 1));
  OK(mdb_txn_commit(c1));
  CHECK(mdb_dbi_open(t0, "n3", 0, &extra), MDB_NOTFOUND);
  OK(mdb_txn_commit(t0));

  printf("-- after commit\n");
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &ro));
  scen_dump(ro, n, "n", 0);
  scen_dump(ro, d, "d", 0);
  CHECK(mdb_dbi_open(ro, "n2", 0, &extra), MDB_NOTFOUND);
  CHECK(mdb_dbi_open(ro, "n3", 0, &extra), MDB_NOTFOUND);
  /* No child of a read-only transaction. */
  CHECK(mdb_txn_begin(env, ro, 0, &c1), EINVAL);
  CHECK(mdb_txn_begin(env, ro, MDB_RDONLY, &c1), EINVAL);
  mdb_txn_abort(ro);

  printf("-- children commit, then the parent aborts\n");
  OK(mdb_txn_begin(env, NULL, 0, &t0));
  OK(mdb_txn_begin(env, t0, 0, &c1));
  put(c1, n, "z", "lost", 0);
  del(c1, n, "b", MDB_NOTFOUND);
  del(c1, n, "c", 0);
  OK(mdb_dbi_open(c1, "n4", MDB_CREATE, &extra));
  put(c1, extra, "q", "lost too", 0);
  OK(mdb_txn_commit(c1));
  get(t0, n, "z");
  mdb_txn_abort(t0);

  printf("-- a child that commits nothing\n");
  OK(mdb_txn_begin(env, NULL, 0, &t0));
  OK(mdb_txn_begin(env, t0, 0, &c1));
  OK(mdb_txn_commit(c1));
  put(t0, n, "y", "kept", 0);
  OK(mdb_txn_commit(t0));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &ro));
  scen_dump(ro, n, "n", 0);
  scen_dump(ro, d, "d", 0);
  CHECK(mdb_dbi_open(ro, "n4", 0, &extra), MDB_NOTFOUND);
  mdb_txn_abort(ro);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
