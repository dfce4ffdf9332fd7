/* Scenario: the main (unnamed) database around the reserved names.
 * Under the shim the main database also holds the records of the reserved
 * databases (_trlmdb_*); the program must not see them. Keys are chosen to
 * sort just before, between and after those names, and every cursor
 * operation that could land on them is used: FIRST/LAST when they would be
 * first or last, NEXT/PREV across them, SET/SET_KEY/SET_RANGE with reserved
 * names as argument, mdb_get of a reserved name, mdb_stat's entry count,
 * and mdb_drop(0) of the main database. */
#include "scen_common.h"

static void put(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_put(txn, dbi, &key, &data, 0);
  printf("put \"%s\" = %s\n", k, scen_rcname(rc));
  if (rc) exit(2);
}

static void del(MDB_txn *txn, MDB_dbi dbi, const char *k) {
  MDB_val key = scen_sv(k);
  int rc = mdb_del(txn, dbi, &key, NULL);
  printf("del \"%s\" = %s\n", k, scen_rcname(rc));
  if (rc) exit(2);
}

/* Keys only (named database records hold page numbers). */
static void keys(MDB_txn *txn, MDB_dbi dbi, const char *label) {
  MDB_cursor *c;
  MDB_val k, d;
  int rc, n = 0;
  OK(mdb_cursor_open(txn, dbi, &c));
  printf("keys %s:", label);
  for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) {
    printf(" \"");
    scen_escape(k.mv_data, k.mv_size);
    printf("\"");
    n++;
  }
  printf(" | %s, %d keys; backwards:", scen_rcname(rc), n);
  n = 0;
  for (rc = mdb_cursor_get(c, &k, &d, MDB_LAST); rc == 0;
       rc = mdb_cursor_get(c, &k, &d, MDB_PREV)) {
    printf(" \"");
    scen_escape(k.mv_data, k.mv_size);
    printf("\"");
    n++;
  }
  printf(" | %s, %d keys\n", scen_rcname(rc), n);
  mdb_cursor_close(c);
  scen_stat(txn, dbi, label);
}

/* Cursor get printing the key only. */
static void op(MDB_cursor *c, MDB_cursor_op o, const char *arg) {
  MDB_val k, d;
  if (arg) k = scen_sv(arg);
  int rc = mdb_cursor_get(c, &k, &d, o);
  printf("%s%s%s%s = %s", scen_opname(o), arg ? " \"" : "", arg ? arg : "", arg ? "\"" : "",
         scen_rcname(rc));
  if (rc == 0) {
    printf(" key \"");
    scen_escape(k.mv_data, k.mv_size);
    printf("\"");
  }
  printf("\n");
}

static const char *reserved[] = {"_trlmdb_time", "_trlmdb_recent", "_trlmdb_meta",
                                 "_trlmdb_",     "_trlmdb_a",      "_trlmdb_zzzz"};
#define NRES (sizeof reserved / sizeof reserved[0])

static void probe_reserved(MDB_txn *txn, MDB_dbi dbi) {
  MDB_cursor *c;
  MDB_val k, d;
  OK(mdb_cursor_open(txn, dbi, &c));
  for (unsigned i = 0; i < NRES; i++) {
    k = scen_sv(reserved[i]);
    int rc = mdb_get(txn, dbi, &k, &d);
    printf("get \"%s\" = %s\n", reserved[i], scen_rcname(rc));
    op(c, MDB_SET, reserved[i]);
    op(c, MDB_SET_KEY, reserved[i]);
    op(c, MDB_SET_RANGE, reserved[i]);
    op(c, MDB_PREV, NULL);
    op(c, MDB_NEXT, NULL);
    op(c, MDB_GET_CURRENT, NULL);
  }
  mdb_cursor_close(c);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, "env", 2, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi m, named;
  MDB_cursor *c;

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, 0, &m));
  keys(txn, m, "empty main");
  probe_reserved(txn, m);
  OK(mdb_cursor_open(txn, m, &c));
  op(c, MDB_FIRST, NULL);
  op(c, MDB_LAST, NULL);
  op(c, MDB_NEXT, NULL);
  op(c, MDB_PREV, NULL);
  mdb_cursor_close(c);
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  put(txn, m, "A", "upper a");
  put(txn, m, "_", "underscore");
  put(txn, m, "_trlmda", "before");
  put(txn, m, "_trlmdb", "prefix without the final underscore");
  put(txn, m, "_trlmdb^", "just before the reserved names");
  put(txn, m, "_trlmdb`", "just after the reserved names");
  put(txn, m, "_trlmdc", "after");
  put(txn, m, "z", "last");
  OK(mdb_dbi_open(txn, "_trlmdbz", MDB_CREATE, &named));
  put(txn, named, "inside", "a named database whose name sorts after the reserved ones");
  keys(txn, m, "main in write txn");
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  keys(txn, m, "main");
  probe_reserved(txn, m);
  OK(mdb_cursor_open(txn, m, &c));
  op(c, MDB_SET, "_trlmdb^");
  op(c, MDB_NEXT, NULL);
  op(c, MDB_PREV, NULL);
  op(c, MDB_PREV, NULL);
  op(c, MDB_NEXT, NULL);
  op(c, MDB_NEXT, NULL);
  op(c, MDB_NEXT, NULL);
  op(c, MDB_GET_CURRENT, NULL);
  mdb_cursor_close(c);
  {
    MDB_stat st;
    OK(mdb_env_stat(env, &st));
    printf("env_stat entries=%zu\n", (size_t)st.ms_entries);
  }
  mdb_txn_abort(txn);

  /* Reserved names last in the main database. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  del(txn, m, "_trlmdb`");
  del(txn, m, "_trlmdc");
  del(txn, m, "z");
  OK(mdb_drop(txn, named, 1));
  keys(txn, m, "main, reserved names last");
  OK(mdb_cursor_open(txn, m, &c));
  op(c, MDB_LAST, NULL);
  op(c, MDB_NEXT, NULL);
  op(c, MDB_SET_RANGE, "_trlmdb_");
  op(c, MDB_SET_RANGE, "_trlmdb^");
  op(c, MDB_NEXT, NULL);
  op(c, MDB_LAST, NULL);
  op(c, MDB_PREV, NULL);
  mdb_cursor_close(c);
  OK(mdb_txn_commit(txn));

  /* Reserved names first in the main database. */
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  del(txn, m, "A");
  del(txn, m, "_");
  del(txn, m, "_trlmda");
  del(txn, m, "_trlmdb");
  del(txn, m, "_trlmdb^");
  put(txn, m, "_trlmdb`", "now first");
  put(txn, m, "zz", "now last");
  keys(txn, m, "main, reserved names first");
  OK(mdb_cursor_open(txn, m, &c));
  op(c, MDB_FIRST, NULL);
  op(c, MDB_PREV, NULL);
  op(c, MDB_SET_RANGE, "_");
  op(c, MDB_SET_RANGE, "");
  op(c, MDB_SET_RANGE, "A");
  op(c, MDB_FIRST, NULL);
  op(c, MDB_NEXT, NULL);
  op(c, MDB_NEXT, NULL);
  /* Deleting through the cursor next to the hidden records. */
  op(c, MDB_FIRST, NULL);
  CHECK(mdb_cursor_del(c, 0), MDB_SUCCESS);
  op(c, MDB_GET_CURRENT, NULL);
  op(c, MDB_PREV, NULL);
  op(c, MDB_FIRST, NULL);
  CHECK(mdb_cursor_del(c, 0), MDB_SUCCESS);
  op(c, MDB_GET_CURRENT, NULL);
  op(c, MDB_FIRST, NULL);
  op(c, MDB_LAST, NULL);
  mdb_cursor_close(c);
  keys(txn, m, "main, empty again");
  OK(mdb_txn_commit(txn));
  mdb_env_close(env);

  /* mdb_drop(0) of the main database. */
  env = scen_env(dir, "dropmain", 2, 0, 0, NULL, 0);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, 0, &m));
  put(txn, m, "one", "1");
  put(txn, m, "two", "2");
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  keys(txn, m, "main before drop");
  OK(mdb_drop(txn, m, 0));
  keys(txn, m, "main after drop(0)");
  put(txn, m, "three", "3");
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  keys(txn, m, "main after commit");
  scen_dump(txn, m, "main", 0);
  mdb_txn_abort(txn);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
