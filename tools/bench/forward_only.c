/* libforward-only.so: the LMDB functions trlmdb-bench calls, each forwarded
 * to the real liblmdb through a table resolved once, and nothing else.
 * `trlmdb-bench --shim` pointed at it measures what any interposer costs (one
 * more call per LMDB call): the floor under the shim's read ratios. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>

#define FWD_FUNCTIONS(X)                                                                     \
  X(version) X(strerror) X(env_create) X(env_set_mapsize) X(env_set_maxdbs) X(env_open)     \
  X(env_close) X(txn_begin) X(txn_commit) X(txn_abort) X(dbi_open) X(stat) X(get) X(put)   \
  X(del) X(cursor_open) X(cursor_close) X(cursor_get)

static struct {
#define FWD_SLOT(name) __typeof__(&mdb_##name) name;
  FWD_FUNCTIONS(FWD_SLOT)
#undef FWD_SLOT
} real;

__attribute__((constructor)) static void load_real(void) {
  void *h = dlopen(TRLMDB_REAL_LMDB_PATH, RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "forward-only: %s\n", dlerror());
    abort();
  }
#define FWD_RESOLVE(name) real.name = (__typeof__(real.name))dlsym(h, "mdb_" #name);
  FWD_FUNCTIONS(FWD_RESOLVE)
#undef FWD_RESOLVE
}

char *mdb_version(int *a, int *b, int *c) { return real.version(a, b, c); }
char *mdb_strerror(int err) { return real.strerror(err); }
int mdb_env_create(MDB_env **env) { return real.env_create(env); }
int mdb_env_set_mapsize(MDB_env *env, size_t size) { return real.env_set_mapsize(env, size); }
int mdb_env_set_maxdbs(MDB_env *env, MDB_dbi dbs) { return real.env_set_maxdbs(env, dbs); }
int mdb_env_open(MDB_env *env, const char *path, unsigned int flags, mdb_mode_t mode) {
  return real.env_open(env, path, flags, mode);
}
void mdb_env_close(MDB_env *env) { real.env_close(env); }
int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn) {
  return real.txn_begin(env, parent, flags, txn);
}
int mdb_txn_commit(MDB_txn *txn) { return real.txn_commit(txn); }
void mdb_txn_abort(MDB_txn *txn) { real.txn_abort(txn); }
int mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi) {
  return real.dbi_open(txn, name, flags, dbi);
}
int mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat) { return real.stat(txn, dbi, stat); }
int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  return real.get(txn, dbi, key, data);
}
int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags) {
  return real.put(txn, dbi, key, data, flags);
}
int mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  return real.del(txn, dbi, key, data);
}
int mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor) {
  return real.cursor_open(txn, dbi, cursor);
}
void mdb_cursor_close(MDB_cursor *cursor) { real.cursor_close(cursor); }
int mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  return real.cursor_get(cursor, key, data, op);
}
