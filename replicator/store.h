// The replicator's view of one environment (DESIGN.md section 3): reading
// _trlmdb_recent and _trlmdb_time with the values they point at, applying
// received changes by last-writer-wins, forgetting acknowledged entries.
// Runs on the replicator's loop thread, on the program's own MDB_env, with
// the real LMDB functions (real_lmdb.h): its writes carry the received
// timestamps, not fresh ones, so they bypass the shim's bookkeeping.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "env_state.h"
#include "reconcile.h"
#include "wire.h"

namespace trlmdb::repl {

// Change::db_flags: the database's order comes from a comparator the program
// registers (mdb_set_compare / mdb_set_dupsort), so a receiver must not
// write it before its own program has registered one. Outside LMDB's flag
// bits; the other bits are mdb_dbi_flags' key and duplicate order flags.
inline constexpr uint32_t kDbFlagCustomCompare = 0x80000000u;

struct ApplyStats {
  std::size_t applied = 0;   // newer than the local entry: written
  std::size_t ignored = 0;   // older or equal: skipped
  std::size_t deferred = 0;  // not written yet (database needs the program's comparator)
  uint64_t max_seen = 0;     // newest ts.time received (for the clock)
};

// Where a scan stopped; empty = from the start.
struct ScanPos {
  std::string after_xkey;  // next scan starts strictly after this xkey
  bool at_start = true;
  bool finished = false;  // the scan reached the end
};

class Store {
 public:
  explicit Store(EnvState *st);
  ~Store();

  EnvState *state() const { return st_; }

  // Makes sure the reserved databases and the node word exist (creating
  // them in a write transaction of its own when needed); *node gets the node
  // word. LMDB error code, 0 on success.
  int ensure_ready(uint32_t *node);

  // Reads entries of _trlmdb_recent after `pos`, in xkey order, skipping
  // those for which skip(xkey, ts) is true, each as a Change with the value
  // read from the user database in the same read transaction. Stops after
  // `max_entries` changes or once their payload_bytes() reach `max_bytes`
  // (at least one change is returned if any is left). Advances *pos; sets
  // pos->finished at the end. *txnid gets the read transaction's id.
  // An entry whose data does not match its stamp (written around the shim)
  // is skipped with a warning.
  int read_recent(ScanPos *pos, std::size_t max_entries, std::size_t max_bytes,
                  const std::function<bool(std::string_view xkey, const Ts &ts)> &skip,
                  std::vector<Change> *out, uint64_t *txnid);

  // Same over _trlmdb_time, for entries whose key_hash is in `set`.
  int read_time(ScanPos *pos, const SendSet &set, std::size_t max_entries, std::size_t max_bytes,
                std::vector<Change> *out);

  // Number of entries in _trlmdb_recent (the backlog).
  int recent_count(std::size_t *n);

  // Applies a batch in one write transaction: for each change newer than the
  // local _trlmdb_time entry (or without one) writes or deletes the user
  // data (a DUPSORT key's whole duplicate set is replaced; a marker put
  // creates the database with db_flags; a key put creates its database if
  // missing), writes the received ts into _trlmdb_time and _trlmdb_recent,
  // and in the end drops databases whose marker is a deletion and that are
  // left empty, and raises the persisted clock and the environment's hybrid
  // clock to the newest ts seen. Older or equal: ignored. Returns an LMDB
  // code; on error (MDB_MAP_FULL, ...) nothing of the batch is written.
  int apply(const std::vector<Change> &changes, ApplyStats *stats);

  // Deletes from _trlmdb_recent each (xkey, ts) whose entry still equals ts
  // (an entry re-stamped meanwhile stays), in one write transaction.
  int forget_recent(const std::vector<std::pair<std::string, Ts>> &acked);

  // Drops the databases a received deletion left in place because the
  // program still held their handle, once it no longer does.
  int drop_pending();

  // (key hash, ts) of every _trlmdb_time entry, from one read transaction.
  int snapshot(std::vector<ReconItem> *out);

 private:
  EnvState *st_;
  struct Impl;
  Impl *impl_;
};

}  // namespace trlmdb::repl
