/* probe_reserved ENVDIR...: linked against the real liblmdb (never run under
 * the shim). For each environment prints whether its main database holds the
 * record of the reserved database _trlmdb_time, i.e. whether the shim wrote
 * bookkeeping there:
 *   ENVDIR: present | absent
 * Exit status 0; 1 if an environment cannot be read. Opens read-only without
 * the lock file, so it also reads copies that have no lock.mdb. A regular
 * file is taken as the data file of an MDB_NOSUBDIR environment. */
#include <lmdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

int main(int argc, char **argv) {
  int status = 0;
  for (int i = 1; i < argc; i++) {
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    MDB_dbi dbi;
    MDB_val k, d;
    struct stat sb;
    /* A regular file is the data file of an MDB_NOSUBDIR environment. */
    unsigned int nosubdir = stat(argv[i], &sb) == 0 && S_ISREG(sb.st_mode) ? MDB_NOSUBDIR : 0;
    int rc = mdb_env_create(&env);
    if (!rc) rc = mdb_env_open(env, argv[i], MDB_RDONLY | MDB_NOLOCK | nosubdir, 0644);
    if (!rc) rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (!rc) rc = mdb_dbi_open(txn, NULL, 0, &dbi);
    if (!rc) {
      unsigned int flags = 0;
      mdb_dbi_flags(txn, dbi, &flags);
      k.mv_data = (void *)"_trlmdb_time";
      k.mv_size = strlen("_trlmdb_time");
      if (flags & MDB_INTEGERKEY) {
        /* A main database with integer keys cannot hold a name; scan it. */
        MDB_cursor *c;
        int found = 0;
        rc = mdb_cursor_open(txn, dbi, &c);
        while (!rc && !found && (rc = mdb_cursor_get(c, &k, &d, MDB_NEXT)) == 0)
          found = k.mv_size == 12 && memcmp(k.mv_data, "_trlmdb_time", 12) == 0;
        if (!rc || rc == MDB_NOTFOUND) mdb_cursor_close(c);
        printf("%s: %s\n", argv[i], found ? "present" : "absent");
        rc = 0;
      } else {
        rc = mdb_get(txn, dbi, &k, &d);
        printf("%s: %s\n", argv[i], rc == 0 ? "present" : "absent");
        if (rc == MDB_NOTFOUND) rc = 0;
      }
    }
    if (rc) {
      printf("%s: error %s\n", argv[i], mdb_strerror(rc));
      status = 1;
    }
    if (txn) mdb_txn_abort(txn);
    if (env) mdb_env_close(env);
  }
  return status;
}
