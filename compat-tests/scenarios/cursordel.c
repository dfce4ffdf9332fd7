/* Scenario: a cursor's "just deleted" state (LMDB's C_DEL), which decides what
 * its next MDB_NEXT / MDB_NEXT_DUP returns, and which LMDB keeps when a later
 * mdb_cursor_del fails, deletes one duplicate of several, or empties the
 * database: the shim must learn the deleted key without clearing it (the
 * state comes from the cursor's own delete or from another handle's).
 * Also in a child transaction. And main-database cursors that the shim
 * models (its real cursor stands among the reserved records): a refused
 * mdb_cursor_put moves the cursor onto the key it found (a named database's
 * record), mdb_drop(..., 1) deletes the record a cursor stands on, and a
 * failed transaction refuses writes before the cursor is looked at.
 * (Not under MDB_WRITEMAP, where the shim differs: README.) */
#include "scen_common.h"

static void put(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  printf("put \"%s\"=\"%s\"\n", k, v);
  OK(mdb_put(txn, dbi, &key, &data, 0));
}

/* The main database's records of named databases hold page numbers: only
 * their keys are printed. */
static void expect(const char *what, int rc, int want) {
  if (rc == want) return;
  fflush(stdout);
  fprintf(stderr, "%s returned %s, expected %s\n", what, scen_rcname(rc), scen_rcname(want));
  exit(2);
}

/* key: the key to seek, or NULL for an operation that takes none. */
static void cget(MDB_cursor *c, const char *key, MDB_cursor_op op, int want) {
  MDB_val k = key ? scen_sv(key) : (MDB_val){0, NULL}, d;
  int rc = mdb_cursor_get(c, &k, &d, op);
  if (key)
    printf("cursor_get %s \"%s\" = %s\n", scen_opname(op), key, scen_rcname(rc));
  else
    printf("cursor_get %s = %s\n", scen_opname(op), scen_rcname(rc));
  if (rc == MDB_SUCCESS) scen_pkv("->", &k, NULL);
  char what[64];
  snprintf(what, sizeof what, "cursor_get %s", scen_opname(op));
  expect(what, rc, want);
}

static void mseek(MDB_cursor *c, const char *key, MDB_cursor_op op, int want) {
  cget(c, key, op, want);
}

static void mget(MDB_cursor *c, MDB_cursor_op op, int want) { cget(c, NULL, op, want); }

static void cdel(MDB_cursor *c, unsigned flags, int want) {
  int rc = mdb_cursor_del(c, flags);
  printf("cursor_del flags=0x%x = %s\n", flags, scen_rcname(rc));
  expect("cursor_del", rc, want);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 4, 0, 0, NULL, 0);
  MDB_txn *txn, *child;
  MDB_dbi plain, dups, main_db;
  MDB_cursor *a, *b, *x;
  MDB_val k, d;

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "plain", MDB_CREATE, &plain));
  OK(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));
  OK(mdb_dbi_open(txn, NULL, 0, &main_db));
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_cursor_open(txn, plain, &a));
  OK(mdb_cursor_open(txn, plain, &b));

  printf("-- another cursor empties the database under this one\n");
  put(txn, plain, "k1", "v1");
  CGET(a, &k, &d, MDB_FIRST, 0);
  CGET(b, &k, &d, MDB_FIRST, 0);
  cdel(a, 0, 0);
  cdel(b, 0, EINVAL);
  put(txn, plain, "k2", "v2");
  CGET(b, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(b, &k, &d, MDB_NEXT, 0);

  printf("-- two deletes in a row empty the database\n");
  put(txn, plain, "k3", "v3");
  CGET(a, &k, &d, MDB_FIRST, 0);
  cdel(a, 0, 0);
  cdel(a, 0, 0);
  put(txn, plain, "k4", "v4");
  CGET(a, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(a, &k, &d, MDB_NEXT, 0);

  printf("-- another cursor deletes the last key under this one\n");
  put(txn, plain, "k5", "v5");
  CGET(a, &k, &d, MDB_LAST, 0);
  CGET(b, &k, &d, MDB_LAST, 0);
  cdel(a, 0, 0);
  cdel(b, 0, MDB_NOTFOUND);
  put(txn, plain, "k6", "v6");
  CGET(b, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(b, &k, &d, MDB_GET_CURRENT, MDB_NOTFOUND);

  printf("-- a whole key, then one duplicate of several\n");
  OK(mdb_cursor_open(txn, dups, &x));
  put(txn, dups, "a", "1");
  put(txn, dups, "b", "1");
  put(txn, dups, "b", "2");
  put(txn, dups, "b", "3");
  put(txn, dups, "c", "1");
  CGET(x, &k, &d, MDB_FIRST, 0);
  cdel(x, 0, 0);
  cdel(x, 0, 0);
  CGET(x, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(x, &k, &d, MDB_NEXT, 0);
  cdel(x, 0, 0);
  CGET(x, &k, &d, MDB_NEXT_DUP, 0);
  cdel(x, MDB_NODUPDATA, 0);
  cdel(x, 0, 0);
  CGET(x, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(x, &k, &d, MDB_NEXT, MDB_NOTFOUND);
  scen_dump(txn, dups, "dups", 0);

  printf("-- in a child transaction, with the parent's cursor\n");
  put(txn, plain, "k7", "v7");
  OK(mdb_txn_begin(env, txn, 0, &child));
  CGET(a, &k, &d, MDB_FIRST, 0);
  cdel(a, 0, 0);
  cdel(a, 0, 0);
  cdel(a, 0, 0);
  cdel(a, 0, EINVAL);
  put(child, plain, "k8", "v8");
  CGET(a, &k, &d, MDB_NEXT_DUP, MDB_NOTFOUND);
  CGET(a, &k, &d, MDB_NEXT, 0);
  scen_dump(child, plain, "plain in the child", 0);
  mdb_txn_abort(child);
  printf("child aborted\n");
  CGET(a, &k, &d, MDB_GET_CURRENT, MDB_NOTFOUND);
  scen_dump(txn, plain, "plain", 0);
  mdb_cursor_close(x);
  mdb_cursor_close(a);
  mdb_cursor_close(b);

  OK(mdb_txn_commit(txn));

  /* The named database sorts before the reserved databases' records (there
   * once the first write transaction committed), the key after them: past
   * either, the shim's real cursor stands on hidden records. */
  printf("-- main database: a refused put moves the cursor\n");
  MDB_env *menv = scen_env(dir, "m", 4, 0, 0, NULL, 0);
  MDB_dbi named;
  OK(mdb_txn_begin(menv, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "^named", MDB_CREATE, &named));
  OK(mdb_dbi_open(txn, NULL, 0, &main_db));
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(menv, NULL, 0, &txn));
  OK(mdb_cursor_open(txn, main_db, &a));
  put(txn, main_db, "a", "last");
  k = scen_sv("a");
  CGET(a, &k, &d, MDB_SET_KEY, 0);
  cdel(a, 0, 0);
  mget(a, MDB_GET_CURRENT, MDB_NOTFOUND);
  k = scen_sv("^named");
  d = scen_sv("not a database");
  CHECK(mdb_cursor_put(a, &k, &d, 0), MDB_INCOMPATIBLE);
  mget(a, MDB_GET_CURRENT, 0);
  mget(a, MDB_NEXT, MDB_NOTFOUND);
  mget(a, MDB_PREV, MDB_NOTFOUND);
  printf("-- main database: deleting the named database deletes its record\n");
  mseek(a, "^", MDB_SET_RANGE, 0);
  OK(mdb_drop(txn, named, 1));
  cdel(a, 0, EINVAL);
  mget(a, MDB_FIRST_DUP, EINVAL);
  mget(a, MDB_GET_CURRENT, EINVAL);
  put(txn, main_db, "b", "b");
  mget(a, MDB_NEXT, 0);
  mdb_cursor_close(a);
  OK(mdb_txn_commit(txn));

  printf("-- main database: a failed transaction is refused first\n");
  OK(mdb_txn_begin(menv, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, "^other", MDB_CREATE, &named));
  OK(mdb_cursor_open(txn, main_db, &a));
  mseek(a, "b", MDB_SET_KEY, 0);
  cdel(a, 0, 0);
  cdel(a, 0, MDB_NOTFOUND);
  k = scen_sv("^other");
  CHECK(mdb_del(txn, main_db, &k, NULL), MDB_INCOMPATIBLE);
  cdel(a, 0, MDB_BAD_TXN);
  k = scen_sv("c");
  d = scen_sv("c");
  CHECK(mdb_cursor_put(a, &k, &d, MDB_CURRENT), MDB_BAD_TXN);
  mdb_cursor_close(a);
  mdb_txn_abort(txn);
  mdb_env_close(menv);

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_dump(txn, plain, "plain committed", 0);
  scen_dump(txn, dups, "dups committed", 0);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  return 0;
}
