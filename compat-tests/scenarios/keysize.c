/* Scenario: size limits of keys, DUPSORT values and database names.
 * LMDB accepts keys (and DUPSORT values, and database names) up to
 * mdb_env_get_maxkeysize() bytes, 511 by default, and refuses empty keys and
 * longer ones with MDB_BAD_VALSIZE. A program must get exactly that under the
 * shim, whatever the length of the database name. */
#include "scen_common.h"

static char big[1024];

static void put(MDB_txn *txn, MDB_dbi dbi, const char *label, size_t klen, size_t dlen,
                unsigned flags, int want) {
  MDB_val k = {klen, big}, d = {dlen, big + 1};
  int rc = mdb_put(txn, dbi, &k, &d, flags);
  printf("put %s key=%zu data=%zu flags=0x%x = %s\n", label, klen, dlen, flags, scen_rcname(rc));
  if (rc != want) exit(2);
}

static void cput(MDB_cursor *c, const char *label, size_t klen, size_t dlen, unsigned flags,
                 int want) {
  MDB_val k = {klen, big}, d = {dlen, big + 2};
  int rc = mdb_cursor_put(c, &k, &d, flags);
  printf("cursor_put %s key=%zu data=%zu flags=0x%x = %s\n", label, klen, dlen, flags,
         scen_rcname(rc));
  if (rc != want) exit(2);
}

static void get(MDB_txn *txn, MDB_dbi dbi, const char *label, size_t klen, int want) {
  MDB_val k = {klen, big}, d;
  int rc = mdb_get(txn, dbi, &k, &d);
  printf("get %s key=%zu = %s", label, klen, scen_rcname(rc));
  if (rc == 0) printf(" data=%zu", d.mv_size);
  printf("\n");
  if (rc != want) exit(2);
}

static void del(MDB_txn *txn, MDB_dbi dbi, const char *label, size_t klen, int want) {
  MDB_val k = {klen, big};
  int rc = mdb_del(txn, dbi, &k, NULL);
  printf("del %s key=%zu = %s\n", label, klen, scen_rcname(rc));
  if (rc != want) exit(2);
}

int main(int argc, char **argv) {
  const char *dir = scen_dir(argc, argv);
  MDB_env *env = scen_env(dir, NULL, 6, 0, 0, NULL, 0);
  MDB_txn *txn;
  MDB_dbi m, shortname, longname, dups, maxname;
  MDB_cursor *c;
  char name[600];
  size_t max = (size_t)mdb_env_get_maxkeysize(env);

  for (size_t i = 0; i < sizeof big; i++) big[i] = (char)('a' + i % 26);
  printf("maxkeysize=%zu\n", max);
  OK(mdb_txn_begin(env, NULL, 0, &txn));
  OK(mdb_dbi_open(txn, NULL, 0, &m));
  OK(mdb_dbi_open(txn, "s", MDB_CREATE, &shortname));
  memset(name, 'n', 200);
  name[200] = 0;
  OK(mdb_dbi_open(txn, name, MDB_CREATE, &longname));
  OK(mdb_dbi_open(txn, "dups", MDB_CREATE | MDB_DUPSORT, &dups));

  put(txn, m, "main", 0, 1, 0, MDB_BAD_VALSIZE);
  put(txn, m, "main", 1, 1, 0, 0);
  put(txn, m, "main", 300, 1, 0, 0);
  put(txn, m, "main", max, 1, 0, 0);
  put(txn, m, "main", max + 1, 1, 0, MDB_BAD_VALSIZE);
  put(txn, shortname, "s", max - 2, 1, 0, 0);
  put(txn, shortname, "s", max - 1, 1, 0, 0);
  put(txn, shortname, "s", max, 10, 0, 0);
  put(txn, shortname, "s", max, 20, MDB_NOOVERWRITE, MDB_KEYEXIST);
  put(txn, shortname, "s", max + 1, 1, 0, MDB_BAD_VALSIZE);
  put(txn, longname, "n*200", max - 201, 1, 0, 0);
  put(txn, longname, "n*200", max - 200, 1, 0, 0);
  put(txn, longname, "n*200", max, 1, 0, 0);
  /* A DUPSORT value is a key of the duplicates' tree: the same limit. */
  put(txn, dups, "dups", max, max, 0, 0);
  put(txn, dups, "dups", max, max + 1, 0, MDB_BAD_VALSIZE);
  put(txn, dups, "dups", 5, max, 0, 0);
  OK(mdb_cursor_open(txn, shortname, &c));
  cput(c, "s", max, 7, 0, 0);
  cput(c, "s", max - 5, 7, MDB_NOOVERWRITE, 0);
  cput(c, "s", max + 1, 7, 0, MDB_BAD_VALSIZE);
  mdb_cursor_close(c);
  OK(mdb_txn_commit(txn));

  OK(mdb_txn_begin(env, NULL, 0, &txn));
  get(txn, m, "main", max, 0);
  get(txn, shortname, "s", max, 0);
  get(txn, longname, "n*200", max, 0);
  get(txn, m, "main", max + 1, MDB_NOTFOUND);
  del(txn, m, "main", max, 0);
  del(txn, m, "main", max, MDB_NOTFOUND);
  del(txn, shortname, "s", max, 0);
  del(txn, longname, "n*200", max - 200, 0);
  scen_dump(txn, shortname, "s", 0);
  scen_dump(txn, longname, "n*200", 0);
  scen_dump(txn, dups, "dups", 0);
  /* Database names are keys of the main database: the same limit. */
  memset(name, 'x', max);
  name[max] = 0;
  OK(mdb_dbi_open(txn, name, MDB_CREATE, &maxname));
  put(txn, maxname, "x*max", max, 1, 0, 0);
  memset(name, 'y', max + 1);
  name[max + 1] = 0;
  {
    MDB_dbi extra;
    CHECK(mdb_dbi_open(txn, name, MDB_CREATE, &extra), MDB_BAD_VALSIZE);
  }
  OK(mdb_txn_commit(txn));
  OK(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn));
  scen_dump(txn, maxname, "x*max", 0);
  scen_stat(txn, m, "main");
  mdb_txn_abort(txn);
  mdb_env_close(env);
  printf("done\n");
  return 0;
}
