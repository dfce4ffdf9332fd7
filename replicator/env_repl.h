// Replication of one environment in this process (DESIGN.md section 3):
// the replicator lock, the wake-up socket, configured peers with their
// reconnect backoff, the live stream from _trlmdb_recent with
// acknowledgements, and the status other processes read.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "config.h"
#include "env_state.h"
#include "reconcile.h"
#include "store.h"
#include "trlmdb.h"

namespace trlmdb::repl {

class Conn;
class Loop;
class Listener;

// A configured peer address: at most one outgoing connection at a time,
// redialled with exponential backoff.
struct PeerSlot {
  HostPort addr;
  Conn *conn = nullptr;
  uv_timer_t timer;
  uint32_t backoff_ms = 0;
  uint32_t last_node = 0;       // node word seen in the last handshake
  std::string last_error;       // why the last attempt ended
  bool idle_duplicate = false;  // the peer's own connection to us is the one kept
};

class EnvRepl {
 public:
  // Program thread, from the shim's "opened" hook. Returns nullptr when the
  // environment is not configured or its configuration is bad (reported).
  static EnvRepl *open(EnvState *st, const char *path, unsigned flags);
  // Program thread: lets go of the environment (bounded flush) and deletes.
  static void close(EnvRepl *r);

  // Program threads.
  void committed();  // a transaction that changed data committed
  void comparator_registered();
  // Runs fn with no replicator transaction open on the environment.
  int run_exclusive(const std::function<int()> &fn);
  void fill_status(TRLMDB_repl_status *out);
  int sync(unsigned timeout_ms);
  bool holder() const { return holder_.load(std::memory_order_acquire); }
  const std::string &why_not_running() const { return why_; }

  // Loop thread.
  const std::string &name() const { return name_; }
  const Config &config() const { return cfg_; }
  Store &store() { return *store_; }
  uint32_t node() const { return node_; }
  void conn_handshaken(Conn *c);  // may close c as a duplicate
  void conn_closed(Conn *c);
  void on_ack(Conn *c, uint64_t seq);
  // Applies changes received from c; false when they could not be written
  // (the connection is then closed and the peer retries later).
  bool apply(Conn *c, const std::vector<Change> &changes);
  void pump();
  bool accepts_from(const std::string &ip) const;
  void attach(Conn *c);  // an incoming connection routed here
  void add_sent(uint64_t n) { bytes_sent_.fetch_add(n, std::memory_order_relaxed); }
  void add_received(uint64_t n) { bytes_received_.fetch_add(n, std::memory_order_relaxed); }
  // Thread-pool work on the environment (snapshots) must end before close.
  void begin_work() { ++works_; }
  void end_work() { --works_; }
  // The snapshot thread's side of that work: waits while run_exclusive runs.
  void work_enter();
  void work_leave();
  std::atomic<bool> dirty{false};

 private:
  EnvRepl(EnvState *st, Config cfg, std::string path, bool no_subdir);
  ~EnvRepl();
  bool take_lock();
  bool announce_presence();
  bool holder_pid_alive() const;
  void start_on_loop(Loop *loop);  // loop thread
  void stop_on_loop(std::function<void()> done);
  void finish_stop();
  void handle_closed();
  void dial(PeerSlot *slot);
  void schedule_redial(PeerSlot *slot);
  void complete_batches();
  void announce_sessions();
  void drain_without_peers();
  void update_synced(uint64_t txnid_if_idle);
  void on_tick();
  void write_status_file();
  void send_wake_datagram();

  EnvState *st_;
  Config cfg_;
  std::string path_, name_, lock_path_, status_path_, wake_addr_;
  bool no_subdir_ = false;
  std::atomic<bool> holder_{false};
  std::mutex promote_mu_;
  void try_promote();
  std::string why_;
  int lock_fd_ = -1;
  int wake_fd_ = -1;  // holder: bound datagram socket; others: sending socket
  std::unique_ptr<Store> store_;
  uint32_t node_ = 0;
  Loop *loop_ = nullptr;
  Listener *listener_ = nullptr;
  uv_poll_t wake_poll_;
  uv_timer_t tick_;
  bool handles_open_ = false;

  std::vector<std::unique_ptr<PeerSlot>> slots_;
  std::vector<Conn *> conns_;  // every connection attached to this environment

  // Live stream.
  struct Batch {
    uint64_t seq = 0;
    std::vector<std::pair<std::string, Ts>> entries;
    std::set<Conn *> awaiting;
    std::map<Conn *, std::size_t> sent_counts;
  };
  std::deque<Batch> inflight_;
  // Newest in-flight ts per xkey, by key hash: a collision can only delay an
  // entry to the next pass, never lose it.
  std::unordered_map<uint64_t, Ts> inflight_keys_;
  ScanPos pos_;
  uint64_t pass_txnid_ = 0;  // read txn of the current pass's first batch
  uint64_t next_seq_ = 1;
  std::deque<std::pair<uint64_t, uint64_t>> marks_;  // (txnid, last seq of its pass)
  bool closing_ = false;
  bool pumping_ = false;
  bool resyncing_ = false;
  bool deferred_ = false;  // changes waited for a comparator: re-sync once it comes
  int works_ = 0;
  int running_works_ = 0;   // under mu_
  bool exclusive_ = false;  // under mu_
  // Read by program threads (trlmdb_repl_status) while the loop runs.
  std::atomic<uint64_t> bytes_sent_{0}, bytes_received_{0}, applied_{0};
  std::atomic<std::size_t> backlog_{0};
  std::atomic<unsigned> peers_connected_{0}, listen_port_{0};
  uint64_t tick_count_ = 0;
  void refresh_counts();
  uv_timer_t flush_timer_;
  uint64_t flush_deadline_ = 0;
  int closing_handles_ = 0;
  std::function<void()> on_stopped_;
  bool stopped_ = false;  // loop side finished (shutdown or close)

  // Shared with program threads.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t synced_txnid_ = 0;
  std::string status_text_;

  friend class Loop;
};

}  // namespace trlmdb::repl
