/* Scenario: read-only transactions and environment calls.
 * Snapshot isolation of a read-only transaction across commits, reset/renew
 * of the transaction and mdb_cursor_renew of its cursor, several readers with
 * MDB_NOTLS, writes refused in read-only transactions and in an MDB_RDONLY
 * environment, transaction ids (a shim that commits transactions of its own
 * would show here), mdb_env_info without the last-page figure, userctx,
 * flags, maxreaders, mdb_reader_check. */
#include "scen_common.h"

static void put(MDB_txn *txn, MDB_dbi dbi, const char *k, const char *v) {
  MDB_val key = scen_sv(k), data = scen_sv(v);
  int rc = mdb_put(txn, dbi, &key, &data, 0);
  printf("put \"%s\"=\"%s\" = %s\n", k, v, scen_rcname(rc));
  if (rc) exit(2);
}

static void info(MDB_env *env, const char *label) {
  MDB_envinfo ei;
  OK(mdb_env_info(env, &ei));
  printf("env_info %s: mapsize=%zu last_txnid=%zu maxreaders=%u numreaders=%u\n", label,
         ei.me_mapsize, (size_t)ei.me_last_txnid, ei.me_maxreaders, ei.me_numreaders);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  char path[4096];
  MDB_env *env = scen_env(dir, "env", 4, (size_t)8 << 20, MDB_NOTLS, path, sizeof path);
  MDB_txn *w, *r1, *r2;
  MDB_dbi db, main_dbi;
  MDB_cursor *c;
  MDB_val k, d;
  int token = 42;
  unsigned int fl;
  int dead = -1;

  info(env, "fresh");
  OK(mdb_env_get_flags(env, &fl));
  printf("env flags=0x%x\n", fl);
  {
    const char *p = NULL;
    OK(mdb_env_get_path(env, &p));
    printf("env path is the one given: %s\n", p && strcmp(p, path) == 0 ? "yes" : "no");
    unsigned int mr = 0;
    OK(mdb_env_get_maxreaders(env, &mr));
    printf("maxreaders=%u\n", mr);
  }
  OK(mdb_env_set_userctx(env, &token));
  printf("userctx is ours: %s\n", mdb_env_get_userctx(env) == &token ? "yes" : "no");

  OK(mdb_txn_begin(env, NULL, 0, &w));
  printf("write txn id=%zu\n", mdb_txn_id(w));
  OK(mdb_dbi_open(w, "db", MDB_CREATE, &db));
  OK(mdb_dbi_open(w, NULL, 0, &main_dbi));
  put(w, db, "a", "A1");
  put(w, db, "b", "B1");
  put(w, db, "c", "C1");
  put(w, db, "d", "D1");
  put(w, main_dbi, "m", "M1");
  OK(mdb_txn_commit(w));
  info(env, "after first commit");

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &r1));
  printf("r1 id=%zu\n", mdb_txn_id(r1));
  OK(mdb_cursor_open(r1, db, &c));
  scen_dump(r1, db, "r1", 0);
  info(env, "one reader");

  OK(mdb_txn_begin(env, NULL, 0, &w));
  put(w, db, "c", "C2");
  k = scen_sv("d");
  OK(mdb_del(w, db, &k, NULL));
  put(w, db, "e", "E2");
  put(w, main_dbi, "m", "M2");
  /* The writer sees its own changes, the reader does not. */
  scen_dump(w, db, "writer", 0);
  scen_dump(r1, db, "r1 during write", 0);
  OK(mdb_txn_commit(w));
  scen_dump(r1, db, "r1 after commit", 0);
  k = scen_sv("m");
  OK(mdb_get(r1, main_dbi, &k, &d));
  scen_pkv("r1 main m ->", NULL, &d);

  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &r2));
  printf("r2 id=%zu\n", mdb_txn_id(r2));
  scen_dump(r2, db, "r2", 0);
  info(env, "two readers");

  mdb_txn_reset(r1);
  info(env, "r1 reset");
  OK(mdb_txn_renew(r1));
  printf("r1 renewed id=%zu\n", mdb_txn_id(r1));
  OK(mdb_cursor_renew(r1, c));
  CGET(c, &k, &d, MDB_FIRST, 0);
  CGET(c, &k, &d, MDB_NEXT, 0);
  CGET(c, &k, &d, MDB_LAST, 0);
  k = scen_sv("m");
  OK(mdb_get(r1, main_dbi, &k, &d));
  scen_pkv("r1 main m ->", NULL, &d);

  /* Writes in read-only transactions are refused. */
  k = scen_sv("x");
  d = scen_sv("y");
  CHECK(mdb_put(r1, db, &k, &d, 0), EACCES);
  CHECK(mdb_cursor_put(c, &k, &d, 0), EACCES);
  CHECK(mdb_del(r1, db, &k, NULL), EACCES);
  CHECK(mdb_drop(r1, db, 0), EACCES);
  {
    MDB_dbi extra;
    int rc = mdb_dbi_open(r1, "newdb", MDB_CREATE, &extra);
    printf("mdb_dbi_open(r1, \"newdb\", MDB_CREATE) = %s\n", scen_rcname(rc));
    rc = mdb_dbi_open(r1, "newdb", 0, &extra);
    printf("mdb_dbi_open(r1, \"newdb\", 0) = %s\n", scen_rcname(rc));
  }
  mdb_cursor_close(c);
  CHECK(mdb_txn_commit(r1), MDB_SUCCESS);
  mdb_txn_reset(r2);
  mdb_txn_abort(r2);
  OK(mdb_reader_check(env, &dead));
  printf("dead readers=%d\n", dead);
  info(env, "readers gone");

  /* An empty write transaction. */
  OK(mdb_txn_begin(env, NULL, 0, &w));
  printf("empty write txn id=%zu\n", mdb_txn_id(w));
  OK(mdb_txn_commit(w));
  info(env, "after empty commit");
  /* An aborted write transaction. */
  OK(mdb_txn_begin(env, NULL, 0, &w));
  put(w, db, "f", "aborted");
  mdb_txn_abort(w);
  info(env, "after abort");
  OK(mdb_env_sync(env, 1));
  mdb_env_close(env);

  /* The same environment opened MDB_RDONLY. */
  env = scen_env(dir, "env", 4, 0, MDB_RDONLY, NULL, 0);
  info(env, "read-only env");
  {
    MDB_stat st;
    OK(mdb_env_stat(env, &st));
    printf("env_stat of the read-only env: entries=%zu\n", (size_t)st.ms_entries);
  }
  CHECK(mdb_txn_begin(env, NULL, 0, &w), EACCES);
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &r1));
  printf("r1 id=%zu\n", mdb_txn_id(r1));
  OK(mdb_dbi_open(r1, "db", 0, &db));
  OK(mdb_dbi_open(r1, NULL, 0, &main_dbi));
  {
    MDB_dbi extra;
    CHECK(mdb_dbi_open(r1, "other", MDB_CREATE, &extra), EACCES);
    CHECK(mdb_dbi_open(r1, "other", 0, &extra), MDB_NOTFOUND);
  }
  scen_dump(r1, db, "db", 0);
  {
    /* Keys only: the record of "db" holds page numbers. */
    int rc, cnt = 0;
    OK(mdb_cursor_open(r1, main_dbi, &c));
    for (rc = mdb_cursor_get(c, &k, &d, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &d, MDB_NEXT), cnt++)
      scen_pkv("main key", &k, NULL);
    printf("main keys end: %s, %d keys\n", scen_rcname(rc), cnt);
    mdb_cursor_close(c);
  }
  scen_stat(r1, db, "db");
  scen_stat(r1, main_dbi, "main");
  k = scen_sv("m");
  OK(mdb_get(r1, main_dbi, &k, &d));
  scen_pkv("main m ->", NULL, &d);
  mdb_txn_abort(r1);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
