// Writing a transaction's bookkeeping (DESIGN.md sections 1-2): the touched
// xkeys, sorted and de-duplicated, each with a fresh timestamp from the
// environment's hybrid clock, into _trlmdb_time and _trlmdb_recent.
#pragma once

#include <lmdb.h>

#include "env_state.h"

namespace trlmdb {

// Opens (creating in a write txn) the reserved databases, the node word and
// the persisted clock of st in txn.
int setup_reserved(EnvState *st, MDB_txn *txn, bool create);

// Writes and clears the frame's pending set in the frame's transaction.
int flush_pending(EnvState *st, Frame *frame);

// A frame flushes early, inside its transaction, once it holds this many
// records (top-level transactions only), which bounds the shim's memory.
inline constexpr std::size_t kEarlyFlushRecords = 1u << 18;
// Entries of earlier transactions in _trlmdb_recent from which a commit
// without a replicator clears them: a leaf page's worth.
inline constexpr std::size_t kClearRecentAt = 64;

// Records a deletion for every key of dbi (all of them, before the drop), and
// for every key of that database pending in any open frame.
int record_drop(EnvState *st, MDB_txn *txn, MDB_dbi dbi, bool del, PendingSet *out);

}  // namespace trlmdb
