// Cursors on the main database, which holds the reserved databases' records.
// The program must see the main database as if those records were not there,
// including where LMDB leaves a cursor after a miss (DESIGN.md section 2).
// When the real cursor cannot be placed where LMDB's would be, the cursor gets
// a virtual state in a side table; cursors that never meet a hidden record
// never get one, and the table is only consulted while it is not empty.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <vector>

namespace trlmdb::main_cursor {

bool reserved_key(const MDB_val *key);

// Cursors with a virtual state; while zero, reads take the fast path below.
extern std::atomic<std::size_t> g_virtual_count;

// mdb_cursor_get for every cursor: everything but the fast path.
int get(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op);
// The fast path's real call landed on a hidden record; `orig_*` are the
// program's key and data before it.
int landed(MDB_cursor *mc, MDB_val *key, MDB_val *data, MDB_cursor_op op, const MDB_val &orig_key,
           const MDB_val &orig_data);

inline bool maybe_reserved_key(const MDB_val *k) {
  static_assert(sizeof "_trlmdb_" - 1 == 8);
  uint64_t head;
  if (k->mv_size < 8) return false;
  std::memcpy(&head, k->mv_data, 8);
  uint64_t prefix;
  std::memcpy(&prefix, "_trlmdb_", 8);
  return head == prefix;
}

inline bool is_seek(MDB_cursor_op op) {
  return op == MDB_SET || op == MDB_SET_KEY || op == MDB_SET_RANGE;
}

// Before mdb_cursor_del (is_del) or mdb_cursor_put(MDB_CURRENT) on a cursor of
// the main database: LMDB's answer in the cursor's virtual state, or 0 to
// go ahead with the real call.
int check_write(MDB_cursor *mc, bool is_del);
// Before `key` is deleted from the main database in txn: the cursors, other
// than `except`, that LMDB would move off it (their item is the deleted one).
std::vector<MDB_cursor *> standing_on(MDB_txn *txn, const MDB_val &key, MDB_cursor *except);
// After `deleted` was deleted from the main database in txn, through
// `deleter` (null for mdb_del): it and `others` (the cursors that stood on
// it) now stand, as LMDB's would, on its visible successor with the next
// MDB_NEXT returning it; and if nothing visible is left, every cursor of txn
// is uninitialised.
void after_delete(MDB_txn *txn, const MDB_val &deleted, std::vector<MDB_cursor *> others,
                  MDB_cursor *deleter);
// A cursor was opened (or renewed) on the main database.
void opened(MDB_cursor *mc, bool writable);
// The main database was emptied (mdb_drop) in txn: its cursors are reset.
void emptied(MDB_txn *txn);
// A put of `key` through the cursor ended with rc (0 or MDB_KEYEXIST): it
// moved. real_put: rc is mdb_cursor_put's own.
void repositioned(MDB_cursor *mc, int rc, const MDB_val *key, bool real_put);
// The cursor is closed or renewed.
void forget(MDB_cursor *mc);
// Before deleting at a cursor standing on `*current`: never a hidden record
// (the cursor moves on to the visible key it stands for, updating *current).
int guard_delete(MDB_cursor *mc, MDB_val *current);
// A write transaction ended: LMDB freed its cursors.
void forget_txn(MDB_txn *txn);

}  // namespace trlmdb::main_cursor
