// Which database a cursor belongs to, read without a call.
//
// Only cursors of the main database need more than forwarding in
// mdb_cursor_get (they must skip the reserved records), but asking LMDB
// (mdb_cursor_dbi) costs a call of its own, a tenth of a cursor step. LMDB
// 0.9's MDB_cursor starts with four pointers (mc_next, mc_backup, mc_xcursor,
// mc_txn) and then mc_dbi. Every mdb_cursor_open and mdb_cursor_renew checks
// that guess against mdb_cursor_dbi; until one has, or once one disagrees
// (another LMDB), the guess is never used.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstring>

#include "env_state.h"  // kMainDbi

namespace trlmdb::cursor_layout {

inline constexpr std::size_t kDbiOffset = 4 * sizeof(void *);

// 0: not checked yet, 1: every check agreed, -1: a check disagreed.
extern std::atomic<int> g_state;

inline bool surely_not_main(const MDB_cursor *mc) {
  if (g_state.load(std::memory_order_relaxed) != 1) return false;
  MDB_dbi dbi;
  std::memcpy(&dbi, reinterpret_cast<const char *>(mc) + kDbiOffset, sizeof dbi);
  return dbi != kMainDbi;
}

// After LMDB opened or renewed mc, whose database LMDB says is `dbi`.
void check(const MDB_cursor *mc, MDB_dbi dbi);

}  // namespace trlmdb::cursor_layout
