// The shim's C++ core: one function per LMDB entry point that needs more than
// forwarding. The C ABI (c_api.cc) calls these; they call the real LMDB
// through real() and never the exported mdb_* symbols.
#pragma once

#include <lmdb.h>

#include <cstdint>

#include "cursor_layout.h"
#include "main_cursor.h"
#include "real_lmdb.h"

namespace trlmdb::ops {

int env_create(MDB_env **env);
int env_open(MDB_env *env, const char *path, unsigned flags, mdb_mode_t mode);
int env_info(MDB_env *env, MDB_envinfo *info);
void env_close(MDB_env *env);
int env_set_maxdbs(MDB_env *env, MDB_dbi dbs);
int env_set_mapsize(MDB_env *env, size_t size);
int env_set_userctx(MDB_env *env, void *ctx);
void *env_get_userctx(MDB_env *env);
int env_stat(MDB_env *env, MDB_stat *stat);

int txn_begin(MDB_env *env, MDB_txn *parent, unsigned flags, MDB_txn **txn);
int txn_commit(MDB_txn *txn);
void txn_abort(MDB_txn *txn);

int dbi_open(MDB_txn *txn, const char *name, unsigned flags, MDB_dbi *dbi);
void dbi_close(MDB_env *env, MDB_dbi dbi);
int stat(MDB_txn *txn, MDB_dbi dbi, MDB_stat *stat);
int drop(MDB_txn *txn, MDB_dbi dbi, int del);

int get(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);
int put(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data, unsigned flags);
int del(MDB_txn *txn, MDB_dbi dbi, MDB_val *key, MDB_val *data);

int cursor_open(MDB_txn *txn, MDB_dbi dbi, MDB_cursor **cursor);
int cursor_renew(MDB_txn *txn, MDB_cursor *mc);
// The hottest read. The common case costs one real call and a prefix check:
// no cursor has a virtual state, the key is an output, and the real cursor
// did not land on a hidden record of the main database.
inline int cursor_get(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op) {
  // Another database's cursor: nothing to hide, and the table is loaded
  // since the cursor exists.
  if (__builtin_expect(mc && cursor_layout::surely_not_main(mc), 1))
    return detail::g_real.mdb_cursor_get(mc, key, data, op);
  if (__builtin_expect(main_cursor::g_virtual_count.load(std::memory_order_relaxed) != 0 || !key ||
                           main_cursor::is_seek(op),
                       0))
    return main_cursor::get(mc, key, data, op);
  const MDB_val orig_key = *key, orig_data = data ? *data : MDB_val{};
  int rc = real().mdb_cursor_get(mc, key, data, op);
  if (__builtin_expect(rc == 0 && main_cursor::maybe_reserved_key(key), 0))
    return main_cursor::landed(mc, key, data, op, orig_key, orig_data);
  return rc;
}
int cursor_put(MDB_cursor *mc, MDB_val *key, MDB_val *data, unsigned flags);
int cursor_del(MDB_cursor *mc, unsigned flags);
// The cursor is closed or renewed: its virtual position goes.
void cursor_forget(MDB_cursor *mc);

// mdb_set_compare (dup = false) / mdb_set_dupsort (dup = true); the
// replicator must know which databases need the program's comparator.
int set_comparator(MDB_txn *txn, MDB_dbi dbi, MDB_cmp_func *cmp, bool dup);

// Handles of the reserved databases are not the program's: calls naming one
// fail as they would for a handle that was never opened.
bool is_reserved_handle(MDB_txn *txn, MDB_dbi dbi);

int last_commit_ts(MDB_env *env, unsigned char ts[12]);
int env_node(MDB_env *env, uint32_t *node);
int key_ts(MDB_txn *txn, MDB_dbi dbi, const MDB_val *key, unsigned char ts[12]);

}  // namespace trlmdb::ops
