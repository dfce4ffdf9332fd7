/* Self-test of the scenario driver: a library preloaded IN FRONT OF the shim
 * that sends every third successful-looking mdb_put straight to the real
 * liblmdb, around the shim. The program's output stays the same, but the
 * environment then holds data without bookkeeping: `trlmdb verify` must fail.
 * (Relies on the shim passing LMDB's own handles through, DESIGN.md 2.) */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lmdb.h>

int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags) {
  static int (*next)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *, unsigned int);
  static int (*real)(MDB_txn *, MDB_dbi, MDB_val *, MDB_val *, unsigned int);
  static unsigned calls;
  if (!next) *(void **)&next = dlsym(RTLD_NEXT, "mdb_put");
  if (!real) {
    void *h = dlopen(REAL_LMDB_PATH, RTLD_NOW | RTLD_NOLOAD);
    if (!h) h = dlopen(REAL_LMDB_PATH, RTLD_NOW);
    if (h) *(void **)&real = dlsym(h, "mdb_put");
  }
  if (real && ++calls % 3 == 0) return real(txn, dbi, key, data, flags);
  return next(txn, dbi, key, data, flags);
}
