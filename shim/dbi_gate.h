// LMDB: "a transaction that uses mdb_dbi_open must finish (either commit or
// abort) before any other transaction in the process may use this function"
// — both would take the same free handle slot. The program keeps to that for
// its own transactions; the replicator, a second user inside the process,
// must wait for them. This gate records the program's transactions that
// opened a handle until they end.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>

namespace trlmdb::dbi_gate {

// A program transaction (the top-level one) opened a handle. Called with
// g_dbi_open_mu held.
void opened_in(MDB_env *env, MDB_txn *txn);

// Any transaction ends (commit, abort, reset). Costs one relaxed load when
// no transaction is recorded.
extern std::atomic<int> g_open_count;
void ended_slow(MDB_txn *txn);
inline void ended(MDB_txn *txn) {
  if (g_open_count.load(std::memory_order_relaxed) != 0) ended_slow(txn);
}

// The replicator: true once no recorded transaction of env is open (false after
// `timeout`). Check again with idle() while holding g_dbi_open_mu.
bool wait_idle(MDB_env *env, std::chrono::milliseconds timeout);
bool idle(MDB_env *env);

}  // namespace trlmdb::dbi_gate
