// The shim's side tables (DESIGN.md section 2): LMDB's handles pass through
// unchanged and the shim's state for an environment hangs off the real
// userctx slot (the program's own userctx is kept here and returned by the
// shim's mdb_env_get_userctx). Write transactions form a stack of frames, one
// per nesting level, each with the xkeys it touched.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "clock.h"
#include "format.h"
#include "meta.h"
#include "pending.h"

namespace trlmdb {

inline constexpr MDB_dbi kMainDbi = 1;  // LMDB's MAIN_DBI

struct Frame {
  MDB_txn *txn = nullptr;
  PendingSet pending;
  bool opened_reserved = false;  // this txn opened the reserved databases
  bool recent_checked = false;   // whether _trlmdb_recent may be cleared was asked
  std::optional<Ts> last_stamp;  // newest timestamp written in this txn
};

class EnvState {
 public:
  explicit EnvState(MDB_env *env) : env_(env) {}
  ~EnvState();
  EnvState(const EnvState &) = delete;
  EnvState &operator=(const EnvState &) = delete;

  MDB_env *env() const { return env_; }

  // Program-visible settings the shim adjusts before forwarding.
  void *user_ctx = nullptr;
  unsigned user_maxdbs = 0;

  // Set at mdb_env_open.
  bool opened = false;
  bool read_only = false;
  unsigned max_key = 511;
  void on_open(unsigned total_dbi_slots);
  // Where the replicator's lock file of this environment is (set at open).
  std::string repl_lock;
  // True when no replicator holds the environment, so nothing ships from
  // _trlmdb_recent (see repl_presence.h). Asked by the writer only.
  bool replicator_absent();

  // Reserved databases: opened at mdb_env_open (read-write environments) or,
  // if that failed, by the next top-level write transaction.
  std::atomic<bool> reserved_ready{false};
  // ... and their records are in the committed main database.
  std::atomic<bool> reserved_committed{false};
  ReservedDbis reserved;
  uint32_t node = 0;
  HybridClock clock;
  bool is_reserved_dbi(MDB_dbi dbi) const;
  // Reserved records in the main database as first seen by a read-only
  // transaction (-1: not looked yet); for mdb_env_stat.
  std::atomic<int> reserved_in_main{-1};
  // mdb_env_info must not count the reader slot the shim used at open.
  std::atomic<bool> phantom_reader{false};

  // Database names by handle; read by the writer while other threads may open
  // handles, hence atomics. Replaced names are kept until the env closes.
  void set_db_name(MDB_dbi dbi, std::string_view name);
  const std::string *db_name(MDB_dbi dbi) const;

  // Write transaction frames.
  Frame *writer_frame(MDB_txn *txn) const {
    Frame *top = top_.load(std::memory_order_acquire);
    return (top && top->txn == txn) ? top : nullptr;
  }
  Frame *push_frame(MDB_txn *txn);
  // The frame of txn and its depth (0 = top-level), or nullptr.
  Frame *find_frame(MDB_txn *txn, std::size_t *depth);
  Frame *frame_at(std::size_t depth);
  std::size_t frame_count();
  // Removes the frames at `depth` and above.
  void pop_frames(std::size_t depth);

  // Handles the program opened and has not closed or dropped. LMDB closes a
  // handle env-wide when its database is dropped, so the replicator must not
  // drop a database under a program that still uses the handle.
  void set_program_handle(MDB_dbi dbi, bool open);
  bool program_handle(MDB_dbi dbi) const;

  // Held shared by the replicator while a read transaction of its own uses
  // user database handles, and exclusively around a program's
  // mdb_drop(…, 1), which closes a handle env-wide at once.
  std::shared_mutex user_handles_mu;

  // The replicator's per-environment object (replicator/), if it runs.
  std::atomic<void *> repl{nullptr};

  // Databases the program gave a comparator in this process
  // (mdb_set_compare / mdb_set_dupsort). The replicator must not write such
  // a database before then; the names are also recorded in _trlmdb_meta
  // ("cmp\0name") by the next write transaction, for other processes.
  void note_comparator(MDB_dbi dbi);
  bool has_comparator(std::string_view name) const;
  // Names noted but not yet recorded in _trlmdb_meta; clears the list.
  std::vector<std::string> take_unrecorded_comparators();

  // LMDB's write lock is not fair: a program committing in a tight loop can
  // keep the replicator's write transactions waiting for seconds. While the
  // replicator waits for the lock, the program's next top-level write
  // transaction in this process waits for it to get it.
  void repl_write_wanted(bool wanted);
  void wait_repl_turn() {
    if (repl_waiting_.load(std::memory_order_acquire) != 0) wait_repl_turn_slow();
  }

  void set_last_commit(const Ts &ts);
  std::optional<Ts> last_commit() const;

 private:
  MDB_env *env_;
  int presence_fd_ = -1;  // repl_lock, opened read-only once it exists
  std::vector<std::atomic<const std::string *>> names_;
  std::vector<std::atomic<bool>> program_handles_;
  std::vector<std::unique_ptr<std::string>> name_store_;
  std::mutex names_mu_;

  std::mutex frames_mu_;
  std::vector<std::unique_ptr<Frame>> frames_;
  std::atomic<Frame *> top_{nullptr};

  void wait_repl_turn_slow();
  std::atomic<int> repl_waiting_{0};
  std::mutex turn_mu_;
  std::condition_variable turn_cv_;

  mutable std::mutex cmp_mu_;
  std::vector<std::string> cmp_names_;
  std::vector<std::string> cmp_unrecorded_;

  mutable std::mutex last_mu_;
  std::optional<Ts> last_commit_;
};

// The state of env, or nullptr for an environment the shim did not create.
EnvState *env_state(MDB_env *env);
EnvState *txn_state(MDB_txn *txn);

// LMDB forbids concurrent mdb_dbi_open calls in one process. The program keeps
// to that for its own calls; this lock keeps the shim's calls out of theirs.
extern std::mutex g_dbi_open_mu;

// Handles at or below this value may be reserved in some environment; lets
// the read path skip the lookup for every other handle.
extern std::atomic<MDB_dbi> g_max_reserved_dbi;

}  // namespace trlmdb
