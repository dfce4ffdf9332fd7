// The C ABI: LMDB's whole API (and trlmdb_*), each a thin forward to the real
// library or to the C++ core in ops.cc. The thread-local guard lets calls made
// from inside the shim or the real library (builds of LMDB that route
// internal calls through the PLT) reach the real function untouched.
#include <lmdb.h>

#include <cerrno>

#include "dbi_gate.h"
#include "midl_abi.h"
#include "ops.h"
#include "real_lmdb.h"
#include "replicator.h"
#include "trlmdb.h"

#define TRLMDB_API extern "C" __attribute__((visibility("default")))

using trlmdb::real;
namespace ops = trlmdb::ops;

namespace {
// initial-exec: one %fs-relative load on every call, where the default model
// would call __tls_get_addr; the 4 bytes fit glibc's reserve for libraries
// loaded by dlopen (the drop-in is, under Python).
__attribute__((tls_model("initial-exec"))) thread_local int t_inside = 0;

struct Inside {
  Inside() { ++t_inside; }
  ~Inside() { --t_inside; }
  Inside(const Inside &) = delete;
  Inside &operator=(const Inside &) = delete;
};
}  // namespace

// A call that needs the shim: straight to the real function when nested.
#define TRLMDB_CORE(name, op, ...)               \
  if (t_inside) return real().name(__VA_ARGS__); \
  Inside inside_;                                \
  return ops::op(__VA_ARGS__)

// Reads need no guard of their own: they only ever call the real library.
#define TRLMDB_READ(name, op, ...)               \
  if (t_inside) return real().name(__VA_ARGS__); \
  return ops::op(__VA_ARGS__)

// Calls that leave a handle owned by the program: handles of the reserved
// databases are refused as if never opened.
#define TRLMDB_USER_DBI(txn, dbi, name, ...)                         \
  if (!t_inside && ops::is_reserved_handle(txn, dbi)) return EINVAL; \
  return real().name(__VA_ARGS__)

TRLMDB_API char *mdb_version(int *major, int *minor, int *patch) {
  return real().mdb_version(major, minor, patch);
}
TRLMDB_API char *mdb_strerror(int err) { return real().mdb_strerror(err); }

TRLMDB_API int mdb_env_create(MDB_env **env) { TRLMDB_CORE(mdb_env_create, env_create, env); }
TRLMDB_API int mdb_env_open(MDB_env *env, const char *path, unsigned int flags, mdb_mode_t mode) {
  TRLMDB_CORE(mdb_env_open, env_open, env, path, flags, mode);
}
TRLMDB_API int mdb_env_copy(MDB_env *env, const char *path) {
  return real().mdb_env_copy(env, path);
}
TRLMDB_API int mdb_env_copyfd(MDB_env *env, mdb_filehandle_t fd) {
  return real().mdb_env_copyfd(env, fd);
}
TRLMDB_API int mdb_env_copy2(MDB_env *env, const char *path, unsigned int flags) {
  return real().mdb_env_copy2(env, path, flags);
}
TRLMDB_API int mdb_env_copyfd2(MDB_env *env, mdb_filehandle_t fd, unsigned int flags) {
  return real().mdb_env_copyfd2(env, fd, flags);
}
TRLMDB_API int mdb_env_stat(MDB_env *env, MDB_stat *stat) {
  TRLMDB_CORE(mdb_env_stat, env_stat, env, stat);
}
TRLMDB_API int mdb_env_info(MDB_env *env, MDB_envinfo *stat) {
  TRLMDB_READ(mdb_env_info, env_info, env, stat);
}
TRLMDB_API int mdb_env_sync(MDB_env *env, int force) { return real().mdb_env_sync(env, force); }
TRLMDB_API void mdb_env_close(MDB_env *env) { TRLMDB_CORE(mdb_env_close, env_close, env); }
TRLMDB_API int mdb_env_set_flags(MDB_env *env, unsigned int flags, int onoff) {
  return real().mdb_env_set_flags(env, flags, onoff);
}
TRLMDB_API int mdb_env_get_flags(MDB_env *env, unsigned int *flags) {
  return real().mdb_env_get_flags(env, flags);
}
TRLMDB_API int mdb_env_get_path(MDB_env *env, const char **path) {
  return real().mdb_env_get_path(env, path);
}
TRLMDB_API int mdb_env_get_fd(MDB_env *env, mdb_filehandle_t *fd) {
  return real().mdb_env_get_fd(env, fd);
}
TRLMDB_API int mdb_env_set_mapsize(MDB_env *env, size_t size) {
  TRLMDB_CORE(mdb_env_set_mapsize, env_set_mapsize, env, size);
}
TRLMDB_API int mdb_env_set_maxreaders(MDB_env *env, unsigned int readers) {
  return real().mdb_env_set_maxreaders(env, readers);
}
TRLMDB_API int mdb_env_get_maxreaders(MDB_env *env, unsigned int *readers) {
  return real().mdb_env_get_maxreaders(env, readers);
}
TRLMDB_API int mdb_env_set_maxdbs(MDB_env *env, MDB_dbi dbs) {
  TRLMDB_CORE(mdb_env_set_maxdbs, env_set_maxdbs, env, dbs);
}
TRLMDB_API int mdb_env_get_maxkeysize(MDB_env *env) { return real().mdb_env_get_maxkeysize(env); }
TRLMDB_API int mdb_env_set_userctx(MDB_env *env, void *ctx) {
  TRLMDB_CORE(mdb_env_set_userctx, env_set_userctx, env, ctx);
}
TRLMDB_API void *mdb_env_get_userctx(MDB_env *env) {
  TRLMDB_READ(mdb_env_get_userctx, env_get_userctx, env);
}
TRLMDB_API int mdb_env_set_assert(MDB_env *env, MDB_assert_func *func) {
  return real().mdb_env_set_assert(env, func);
}

TRLMDB_API int mdb_txn_begin(MDB_env *env, MDB_txn *parent, unsigned int flags, MDB_txn **txn) {
  TRLMDB_CORE(mdb_txn_begin, txn_begin, env, parent, flags, txn);
}
TRLMDB_API MDB_env *mdb_txn_env(MDB_txn *txn) { return real().mdb_txn_env(txn); }
TRLMDB_API size_t mdb_txn_id(MDB_txn *txn) { return real().mdb_txn_id(txn); }
TRLMDB_API int mdb_txn_commit(MDB_txn *txn) { TRLMDB_CORE(mdb_txn_commit, txn_commit, txn); }
TRLMDB_API void mdb_txn_abort(MDB_txn *txn) { TRLMDB_CORE(mdb_txn_abort, txn_abort, txn); }
TRLMDB_API void mdb_txn_reset(MDB_txn *txn) {
  real().mdb_txn_reset(txn);
  trlmdb::dbi_gate::ended(txn);
}
TRLMDB_API int mdb_txn_renew(MDB_txn *txn) { return real().mdb_txn_renew(txn); }

TRLMDB_API int mdb_dbi_open(MDB_txn *txn, const char *name, unsigned int flags, MDB_dbi *dbi) {
  TRLMDB_CORE(mdb_dbi_open, dbi_open, txn, name, flags, dbi);
}
TRLMDB_API int mdb_stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat) {
  TRLMDB_CORE(mdb_stat, stat, txn, dbi, stat);
}
TRLMDB_API int mdb_dbi_flags(MDB_txn *txn, MDB_dbi dbi, unsigned int *flags) {
  TRLMDB_USER_DBI(txn, dbi, mdb_dbi_flags, txn, dbi, flags);
}
TRLMDB_API void mdb_dbi_close(MDB_env *env, MDB_dbi dbi) {
  TRLMDB_CORE(mdb_dbi_close, dbi_close, env, dbi);
}
TRLMDB_API int mdb_drop(MDB_txn *txn, MDB_dbi dbi, int del) {
  TRLMDB_CORE(mdb_drop, drop, txn, dbi, del);
}
TRLMDB_API int mdb_set_compare(MDB_txn *txn, MDB_dbi dbi, MDB_cmp_func *cmp) {
  if (t_inside) return real().mdb_set_compare(txn, dbi, cmp);
  if (ops::is_reserved_handle(txn, dbi)) return EINVAL;
  Inside inside_;
  return ops::set_comparator(txn, dbi, cmp, false);
}
TRLMDB_API int mdb_set_dupsort(MDB_txn *txn, MDB_dbi dbi, MDB_cmp_func *cmp) {
  if (t_inside) return real().mdb_set_dupsort(txn, dbi, cmp);
  if (ops::is_reserved_handle(txn, dbi)) return EINVAL;
  Inside inside_;
  return ops::set_comparator(txn, dbi, cmp, true);
}
TRLMDB_API int mdb_set_relfunc(MDB_txn *txn, MDB_dbi dbi, MDB_rel_func *rel) {
  TRLMDB_USER_DBI(txn, dbi, mdb_set_relfunc, txn, dbi, rel);
}
TRLMDB_API int mdb_set_relctx(MDB_txn *txn, MDB_dbi dbi, void *ctx) {
  TRLMDB_USER_DBI(txn, dbi, mdb_set_relctx, txn, dbi, ctx);
}

TRLMDB_API int mdb_get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  TRLMDB_READ(mdb_get, get, txn, dbi, key, data);
}
TRLMDB_API int mdb_put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned int flags) {
  TRLMDB_CORE(mdb_put, put, txn, dbi, key, data, flags);
}
TRLMDB_API int mdb_del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data) {
  TRLMDB_CORE(mdb_del, del, txn, dbi, key, data);
}

TRLMDB_API int mdb_cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor) {
  TRLMDB_READ(mdb_cursor_open, cursor_open, txn, dbi, cursor);
}
TRLMDB_API void mdb_cursor_close(MDB_cursor *cursor) {
  ops::cursor_forget(cursor);
  real().mdb_cursor_close(cursor);
}
TRLMDB_API int mdb_cursor_renew(MDB_txn *txn, MDB_cursor *cursor) {
  TRLMDB_READ(mdb_cursor_renew, cursor_renew, txn, cursor);
}
TRLMDB_API MDB_txn *mdb_cursor_txn(MDB_cursor *cursor) { return real().mdb_cursor_txn(cursor); }
TRLMDB_API MDB_dbi mdb_cursor_dbi(MDB_cursor *cursor) { return real().mdb_cursor_dbi(cursor); }
// No re-entry guard: the shim calls nothing of its own from here, and what the
// real library may call back (a dup sub-cursor) is never the main database.
TRLMDB_API int mdb_cursor_get(MDB_cursor *cursor, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  return ops::cursor_get(cursor, key, data, op);
}
TRLMDB_API int mdb_cursor_put(MDB_cursor *cursor, MDB_val *key, MDB_val *data, unsigned int flags) {
  TRLMDB_CORE(mdb_cursor_put, cursor_put, cursor, key, data, flags);
}
TRLMDB_API int mdb_cursor_del(MDB_cursor *cursor, unsigned int flags) {
  TRLMDB_CORE(mdb_cursor_del, cursor_del, cursor, flags);
}
TRLMDB_API int mdb_cursor_count(MDB_cursor *cursor, size_t *countp) {
  return real().mdb_cursor_count(cursor, countp);
}
TRLMDB_API int mdb_cmp(MDB_txn *txn, MDB_dbi dbi, const MDB_val *a, const MDB_val *b) {
  return real().mdb_cmp(txn, dbi, a, b);
}
TRLMDB_API int mdb_dcmp(MDB_txn *txn, MDB_dbi dbi, const MDB_val *a, const MDB_val *b) {
  return real().mdb_dcmp(txn, dbi, a, b);
}
TRLMDB_API int mdb_reader_list(MDB_env *env, MDB_msg_func *func, void *ctx) {
  return real().mdb_reader_list(env, func, ctx);
}
TRLMDB_API int mdb_reader_check(MDB_env *env, int *dead) {
  return real().mdb_reader_check(env, dead);
}

// LMDB's ID-list helpers, exported by liblmdb.so.0: forwarded unchanged.
TRLMDB_API unsigned mdb_midl_search(MDB_IDL ids, MDB_ID id) {
  return real().mdb_midl_search(ids, id);
}
TRLMDB_API MDB_IDL mdb_midl_alloc(int num) { return real().mdb_midl_alloc(num); }
TRLMDB_API void mdb_midl_free(MDB_IDL ids) { real().mdb_midl_free(ids); }
TRLMDB_API void mdb_midl_shrink(MDB_IDL *idp) { real().mdb_midl_shrink(idp); }
TRLMDB_API int mdb_midl_need(MDB_IDL *idp, unsigned num) { return real().mdb_midl_need(idp, num); }
TRLMDB_API int mdb_midl_append(MDB_IDL *idp, MDB_ID id) { return real().mdb_midl_append(idp, id); }
TRLMDB_API int mdb_midl_append_list(MDB_IDL *idp, MDB_IDL app) {
  return real().mdb_midl_append_list(idp, app);
}
TRLMDB_API int mdb_midl_append_range(MDB_IDL *idp, MDB_ID id, unsigned n) {
  return real().mdb_midl_append_range(idp, id, n);
}
TRLMDB_API void mdb_midl_xmerge(MDB_IDL idl, MDB_IDL merge) { real().mdb_midl_xmerge(idl, merge); }
TRLMDB_API void mdb_midl_sort(MDB_IDL ids) { real().mdb_midl_sort(ids); }
TRLMDB_API unsigned mdb_mid2l_search(MDB_ID2L ids, MDB_ID id) {
  return real().mdb_mid2l_search(ids, id);
}
TRLMDB_API int mdb_mid2l_insert(MDB_ID2L ids, MDB_ID2 *id) {
  return real().mdb_mid2l_insert(ids, id);
}
TRLMDB_API int mdb_mid2l_append(MDB_ID2L ids, MDB_ID2 *id) {
  return real().mdb_mid2l_append(ids, id);
}

// trlmdb's own API (include/trlmdb.h).
TRLMDB_API const char *trlmdb_version(int *major, int *minor, int *patch) {
  if (major) *major = TRLMDB_VERSION_MAJOR;
  if (minor) *minor = TRLMDB_VERSION_MINOR;
  if (patch) *patch = TRLMDB_VERSION_PATCH;
  return "trlmdb " TRLMDB_VERSION_STRING;
}
TRLMDB_API int trlmdb_env_node(MDB_env *env, uint32_t *node) { return ops::env_node(env, node); }
TRLMDB_API int trlmdb_key_ts(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key,
                             unsigned char ts[TRLMDB_TS_SIZE]) {
  return ops::key_ts(txn, dbi, key, ts);
}
TRLMDB_API int trlmdb_repl_status(MDB_env *env, TRLMDB_repl_status *status) {
  return trlmdb::repl::status(env, status);
}
TRLMDB_API int trlmdb_repl_sync(MDB_env *env, unsigned timeout_ms) {
  return trlmdb::repl::sync(env, timeout_ms);
}

// The library carries the replicator: configured environments get one.
__attribute__((constructor)) static void install_replicator() { trlmdb::repl::install(); }
TRLMDB_API int trlmdb_last_commit_ts(MDB_env *env, unsigned char ts[TRLMDB_TS_SIZE]) {
  return ops::last_commit_ts(env, ts);
}
