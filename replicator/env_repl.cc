#include "env_repl.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "conn.h"
#include "listener.h"
#include "log.h"
#include "loop.h"
#include "real_lmdb.h"
#include "repl_presence.h"

namespace trlmdb::repl {

namespace {

// Live stream: batches in flight per environment, and their size.
constexpr std::size_t kWindow = 16;
constexpr std::size_t kBatchEntries = 1024;
constexpr std::size_t kBatchBytes = 1u << 20;
// Batches one pump writes before it yields to the rest of the loop.
constexpr int kPumpBatches = 64;
constexpr uint64_t kTickMs = 200;
constexpr uint32_t kMaxBackoffMs = 5000;

sockaddr_un wake_sockaddr(const std::string &name, socklen_t *len) {
  sockaddr_un sa{};
  sa.sun_family = AF_UNIX;
  // Abstract namespace: no file to go stale, no path length limit to hit.
  std::memcpy(sa.sun_path + 1, name.data(), std::min(name.size(), sizeof sa.sun_path - 2));
  *len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  return sa;
}

uint32_t node_key(uint32_t node_word) { return node_word & ~0xffu; }

}  // namespace

EnvRepl::EnvRepl(EnvState *st, Config cfg, std::string path, bool no_subdir)
    : st_(st), cfg_(std::move(cfg)), path_(std::move(path)), no_subdir_(no_subdir) {
  name_ = wire_name(cfg_, path_);
  lock_path_ = repl_lock_path(path_, no_subdir_);
  status_path_ = env_sibling_path(path_, no_subdir_, "trlmdb.status");
}

EnvRepl::~EnvRepl() {
  if (wake_fd_ >= 0) {
    unregister_fd(wake_fd_);
    ::close(wake_fd_);
  }
  if (lock_fd_ >= 0) {
    unregister_fd(lock_fd_);
    ::close(lock_fd_);
  }
}

EnvRepl *EnvRepl::open(EnvState *st, const char *path, unsigned flags) {
  if (in_forked_child() || !path) return nullptr;
  const bool no_subdir = flags & MDB_NOSUBDIR;
  Config cfg;
  std::string error;
  if (!load_config(inputs_from_process(path, no_subdir), &cfg, &error)) {
    log(LogLevel::kError, "%s: replication is off, bad configuration: %s", path, error.c_str());
    return nullptr;
  }
  if (!cfg.configured) return nullptr;
  set_log_level_at_least(cfg.log);
  auto *r = new EnvRepl(st, std::move(cfg), path, no_subdir);
  if (!r->take_lock()) {
    // Another process replicates this environment: wake it after commits.
    r->wake_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (r->wake_fd_ >= 0) register_fd(r->wake_fd_);
    st->repl.store(r, std::memory_order_release);
    return r;
  }
  Loop *loop = Loop::get();
  r->store_ = std::make_unique<Store>(st);
  int rc = loop ? r->store_->ensure_ready(&r->node_) : EINVAL;
  if (rc) {
    log(LogLevel::kError, "%s: replication is off: cannot prepare the environment: %s", path,
        real().mdb_strerror(rc));
    delete r;
    return nullptr;
  }
  loop->call([r, loop] { r->start_on_loop(loop); });
  if (!r->holder_) {  // refused on the loop (duplicate name)
    delete r;
    return nullptr;
  }
  st->repl.store(r, std::memory_order_release);
  return r;
}

// The lock file names the process that last held it.
bool EnvRepl::holder_pid_alive() const {
  char buf[32] = {};
  ssize_t n = pread(lock_fd_, buf, sizeof buf - 1, 0);
  const long pid = n > 0 ? std::strtol(buf, nullptr, 10) : 0;
  return pid > 0 && pid != getpid() && (::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM);
}

// Writers clear _trlmdb_recent while no replicator is present, so the holder
// says it is before it reads anything (see shim/repl_presence.h).
bool EnvRepl::announce_presence() {
  if (int err = mark_replicator_present(lock_fd_)) {
    why_ = "cannot lock " + lock_path_ + ": " + std::strerror(err);
    log(LogLevel::kError, "%s: replication is off: %s", path_.c_str(), why_.c_str());
    return false;
  }
  return true;
}

bool EnvRepl::take_lock() {
  lock_fd_ = ::open(lock_path_.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    why_ = "cannot open " + lock_path_ + ": " + std::strerror(errno);
    log(LogLevel::kError, "%s: replication is off: %s", path_.c_str(), why_.c_str());
    return false;
  }
  register_fd(lock_fd_);
  struct stat sb;
  fstat(lock_fd_, &sb);
  char name[96];
  std::snprintf(name, sizeof name, "trlmdb-wake-%llx-%llx",
                static_cast<unsigned long long>(sb.st_dev),
                static_cast<unsigned long long>(sb.st_ino));
  wake_addr_ = name;
  // Whoever asks by taking the lock for an instant (a `trlmdb stat` of an
  // earlier version; today's asks with F_OFD_GETLK) must not look like a
  // replicator: a few retries.
  int locked = -1;
  for (int attempt = 0; attempt < 20 && locked != 0; ++attempt) {
    locked = flock(lock_fd_, LOCK_EX | LOCK_NB);
    if (locked != 0 && errno != EWOULDBLOCK && errno != EINTR) break;
    if (locked != 0 && holder_pid_alive()) break;  // a real replicator: no need to wait
    if (locked != 0) usleep(5000);
  }
  if (locked != 0) {
    char buf[32] = {};
    ssize_t n = pread(lock_fd_, buf, sizeof buf - 1, 0);
    why_ = "the replicator of this environment runs in process " +
           std::string(buf, n > 0 ? static_cast<std::size_t>(n) : 0);
    while (!why_.empty() && (why_.back() == '\n' || why_.back() == ' ')) why_.pop_back();
    return false;
  }
  if (!announce_presence()) {
    flock(lock_fd_, LOCK_UN);
    return false;
  }
  char pid[32];
  int n = std::snprintf(pid, sizeof pid, "%d\n", static_cast<int>(getpid()));
  if (ftruncate(lock_fd_, 0) == 0 && pwrite(lock_fd_, pid, n, 0) != n) {
    // The pid is only for messages; the lock itself is what counts.
  }
  holder_ = true;
  return true;
}

void EnvRepl::start_on_loop(Loop *loop) {
  loop_ = loop;
  if (loop->find_env(name_)) {
    log(LogLevel::kError,
        "%s: replication is off: this process already replicates an environment named \"%s\"; "
        "give one of them another name (TRLMDB_NAME or name = in its trlmdb.conf)",
        path_.c_str(), name_.c_str());
    holder_ = false;
    why_ = "duplicate environment name \"" + name_ + "\" in this process";
    return;
  }
  loop->add_env(this);
  if (cfg_.listen) {
    std::string error;
    listener_ = loop->listen(*cfg_.listen, &error);
    if (!listener_) log(LogLevel::kError, "[%s] %s", name_.c_str(), error.c_str());
  }
  // Wake-ups from other processes writing this environment.
  wake_fd_ = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  socklen_t len;
  sockaddr_un sa = wake_sockaddr(wake_addr_, &len);
  if (wake_fd_ >= 0 && bind(wake_fd_, reinterpret_cast<sockaddr *>(&sa), len) == 0) {
    register_fd(wake_fd_);
    uv_poll_init(loop->uv(), &wake_poll_, wake_fd_);
    wake_poll_.data = this;
    uv_poll_start(&wake_poll_, UV_READABLE, [](uv_poll_t *h, int, int) {
      auto *self = static_cast<EnvRepl *>(h->data);
      char buf[64];
      while (recv(self->wake_fd_, buf, sizeof buf, 0) > 0) {
      }
      self->pump();
    });
    ++closing_handles_;
  } else {
    log(LogLevel::kWarn,
        "[%s] no wake-up socket (%s): other processes' commits are seen by polling", name_.c_str(),
        std::strerror(errno));
    if (wake_fd_ >= 0) ::close(wake_fd_);
    wake_fd_ = -1;
  }
  uv_timer_init(loop->uv(), &tick_);
  tick_.data = this;
  uv_timer_start(
      &tick_, [](uv_timer_t *t) { static_cast<EnvRepl *>(t->data)->on_tick(); }, kTickMs, kTickMs);
  uv_timer_init(loop->uv(), &flush_timer_);
  flush_timer_.data = this;
  closing_handles_ += 2;
  for (const HostPort &hp : cfg_.peers) {
    auto slot = std::make_unique<PeerSlot>();
    slot->addr = hp;
    uv_timer_init(loop->uv(), &slot->timer);
    slot->timer.data = this;
    ++closing_handles_;
    slots_.push_back(std::move(slot));
  }
  for (auto &slot : slots_) dial(slot.get());
  TRLMDB_LOG(LogLevel::kInfo, "[%s] replicating %s as node %08" PRIx32 "%s%s", name_.c_str(),
             path_.c_str(), node_, listener_ ? ", listening on port " : "",
             listener_ ? std::to_string(listener_->bound_port()).c_str() : "");
  on_tick();
  pump();
}

void EnvRepl::dial(PeerSlot *slot) {
  if (closing_ || slot->conn) return;
  if (slot->idle_duplicate) {
    // The peer's own connection to us carries this environment; dial again
    // only once it is gone.
    for (Conn *c : conns_)
      if (c->ready() && node_key(c->remote_node()) == node_key(slot->last_node)) {
        schedule_redial(slot);
        return;
      }
    slot->idle_duplicate = false;
  }
  Conn *c = Conn::dial(loop_, this, slot);
  if (c->state() != Conn::State::kClosing) {
    slot->conn = c;
    conns_.push_back(c);
  }
}

void EnvRepl::schedule_redial(PeerSlot *slot) {
  if (closing_) return;
  slot->backoff_ms = slot->idle_duplicate ? kMaxBackoffMs
                     : slot->backoff_ms   ? std::min(slot->backoff_ms * 2, kMaxBackoffMs)
                                          : 100;
  const uint64_t jitter = static_cast<uint64_t>(std::rand()) % (slot->backoff_ms / 4 + 1);
  uv_timer_start(
      &slot->timer,
      [](uv_timer_t *t) {
        auto *self = static_cast<EnvRepl *>(t->data);
        for (auto &s : self->slots_)
          if (&s->timer == t) self->dial(s.get());
      },
      slot->backoff_ms + jitter, 0);
}

void EnvRepl::attach(Conn *c) { conns_.push_back(c); }

bool EnvRepl::accepts_from(const std::string &ip) const {
  if (cfg_.accept.empty()) return true;
  for (const std::string &a : cfg_.accept)
    if (a == ip || (a == "localhost" && is_loopback_host(ip))) return true;
  return false;
}

void EnvRepl::conn_handshaken(Conn *c) {
  // Two nodes that both list each other connect twice; both keep the one
  // dialled by the smaller node word, so they agree without talking.
  auto dialler = [this](Conn *x) { return node_key(x->initiator() ? node_ : x->remote_node()); };
  for (Conn *d : conns_) {
    if (d == c || !d->ready() || node_key(d->remote_node()) != node_key(c->remote_node())) continue;
    Conn *loser = dialler(c) > dialler(d) ? c : d;
    if (dialler(c) == dialler(d)) loser = c;  // same dialler twice: keep the older
    if (loser->slot()) {
      loser->slot()->idle_duplicate = true;
      loser->slot()->last_node = loser->remote_node();
    }
    loser->close("duplicate connection to the same node", LogLevel::kDebug);
    if (loser == c) return;
    break;
  }
  if (c->remote_node() == node_) {
    c->close("the peer is this very environment (same node word)", LogLevel::kWarn);
    return;
  }
  if (PeerSlot *slot = c->slot()) {
    slot->backoff_ms = 0;
    slot->last_node = c->remote_node();
    slot->last_error.clear();
  }
  TRLMDB_LOG(LogLevel::kInfo, "[%s] %s %s (node %08" PRIx32 ") connected", name_.c_str(),
             c->initiator() ? "peer" : "incoming", c->remote().c_str(), c->remote_node());
  announce_sessions();
  pump();
}

// Tells every peer which nodes this one has a session with, so that in a
// mesh a change is not relayed to a peer that gets it from its origin.
void EnvRepl::announce_sessions() {
  PeersMsg m;
  for (Conn *c : conns_)
    if (c->ready() &&
        std::find(m.nodes.begin(), m.nodes.end(), node_key(c->remote_node())) == m.nodes.end())
      m.nodes.push_back(node_key(c->remote_node()));
  std::string out;
  encode_peers(m, &out);
  for (Conn *c : conns_)
    if (c->ready()) c->send(out);
}

void EnvRepl::conn_closed(Conn *c) {
  conns_.erase(std::remove(conns_.begin(), conns_.end(), c), conns_.end());
  if (c->was_ready() && !closing_ && !resyncing_) {
    const uint32_t lost = node_key(c->remote_node());
    bool still = false;
    for (Conn *d : conns_) still = still || (d->ready() && node_key(d->remote_node()) == lost);
    if (!still) {
      // Our other peers may have left changes from `lost` to our session with
      // it; reconnecting makes them reconcile with us.
      resyncing_ = true;
      std::vector<Conn *> others = conns_;
      for (Conn *d : others)
        if (d->ready())
          d->close(
              "re-synchronising: the session with node " + std::to_string(lost >> 8) + " ended",
              LogLevel::kInfo);
      resyncing_ = false;
    } else {
      announce_sessions();
    }
  }
  for (Batch &b : inflight_) {
    b.awaiting.erase(c);
    b.sent_counts.erase(c);
  }
  if (PeerSlot *slot = c->slot()) {
    slot->conn = nullptr;
    c->detach_slot();
    if (!c->close_reason().empty()) slot->last_error = c->close_reason();
    schedule_redial(slot);
  }
  if (!closing_) complete_batches();
}

void EnvRepl::on_ack(Conn *c, uint64_t seq) {
  for (Batch &b : inflight_) {
    if (b.seq != seq) continue;
    if (b.awaiting.erase(c)) {
      c->awaiting_entries -= std::min(c->awaiting_entries, b.sent_counts[c]);
      b.sent_counts.erase(c);
    }
    break;
  }
  complete_batches();
}

void EnvRepl::complete_batches() {
  std::vector<std::pair<std::string, Ts>> done;
  for (auto it = inflight_.begin(); it != inflight_.end();) {
    if (!it->awaiting.empty()) {
      ++it;
      continue;
    }
    for (auto &e : it->entries) {
      auto k = inflight_keys_.find(key_hash(e.first));
      if (k != inflight_keys_.end() && k->second == e.second) inflight_keys_.erase(k);
      done.push_back(std::move(e));
    }
    it = inflight_.erase(it);
  }
  if (!done.empty()) {
    int rc = store_->forget_recent(done);
    if (rc)
      log(LogLevel::kError, "[%s] cannot remove shipped entries from _trlmdb_recent: %s",
          name_.c_str(), real().mdb_strerror(rc));
  }
  update_synced(0);
  refresh_counts();
  if (!done.empty() && !closing_) loop_->wake(this);  // room in the window: read on
}

void EnvRepl::update_synced(uint64_t) {
  uint64_t lowest = UINT64_MAX;
  for (const Batch &b : inflight_) lowest = std::min(lowest, b.seq);
  uint64_t synced = 0;
  while (!marks_.empty() && marks_.front().second < lowest) {
    synced = std::max(synced, marks_.front().first);
    marks_.pop_front();
  }
  if (synced) {
    std::lock_guard lock(mu_);
    synced_txnid_ = std::max(synced_txnid_, synced);
    cv_.notify_all();
  }
}

void EnvRepl::pump() {
  if (!holder_ || !store_ || stopped_) return;
  if (pumping_) {
    dirty.store(true);
    return;
  }
  pumping_ = true;
  std::vector<Conn *> ready;
  for (Conn *c : conns_)
    if (c->ready()) ready.push_back(c);
  auto skip = [this](std::string_view xkey, const Ts &ts) {
    auto it = inflight_keys_.find(key_hash(xkey));
    return it != inflight_keys_.end() && it->second == ts;
  };
  int batches = 0;
  while (inflight_.size() < kWindow) {
    if (++batches > kPumpBatches) {
      loop_->wake(this);  // more to read: come back after other work
      break;
    }
    std::vector<Change> changes;
    uint64_t txnid = 0;
    const bool pass_start = pos_.at_start;
    int rc = store_->read_recent(&pos_, kBatchEntries, kBatchBytes, skip, &changes, &txnid);
    if (rc) {
      log(LogLevel::kError, "[%s] cannot read _trlmdb_recent: %s", name_.c_str(),
          real().mdb_strerror(rc));
      pos_ = ScanPos{};
      break;
    }
    if (pass_start) pass_txnid_ = txnid;
    if (!changes.empty()) {
      Batch b;
      b.seq = next_seq_++;
      b.entries.reserve(changes.size());
      for (const Change &ch : changes) {
        b.entries.emplace_back(ch.xkey, ch.ts);
        inflight_keys_[key_hash(ch.xkey)] = ch.ts;
      }
      for (Conn *c : ready) {
        // A peer never needs its own changes back, nor those of a node it
        // has a session with (they come from there).
        ChangesMsg m{b.seq, {}};
        const uint32_t peer = node_key(c->remote_node()), self = node_key(node_);
        auto wanted = [&](const Change &ch) {
          const uint32_t origin = node_key(ch.ts.node);
          return origin != peer && (origin == self || !c->peer_has_session_with(origin));
        };
        std::size_t n = 0;
        for (const Change &ch : changes)
          if (wanted(ch)) ++n;
        if (n == 0) continue;
        if (n == changes.size()) {
          m.changes = changes;
        } else {
          m.changes.reserve(n);
          for (const Change &ch : changes)
            if (wanted(ch)) m.changes.push_back(ch);
        }
        std::string out;
        encode_changes(m, &out);
        c->send(out);
        b.awaiting.insert(c);
        b.sent_counts[c] = n;
        c->awaiting_entries += n;
      }
      inflight_.push_back(std::move(b));
    }
    if (pos_.finished) {
      marks_.emplace_back(pass_txnid_, next_seq_ - 1);
      pos_ = ScanPos{};
      break;
    }
  }
  pumping_ = false;
  complete_batches();
}

bool EnvRepl::apply(Conn *c, const std::vector<Change> &changes) {
  ApplyStats stats;
  int rc = store_->apply(changes, &stats);
  if (rc) {
    const char *hint = rc == MDB_MAP_FULL
                           ? "; the map is full: enlarge it (mdb_env_set_mapsize); the peer "
                             "resends after reconnecting"
                           : "";
    c->close(std::string("cannot apply ") + std::to_string(changes.size()) +
                 " received changes: " + real().mdb_strerror(rc) + hint,
             LogLevel::kError);
    return false;
  }
  applied_.fetch_add(stats.applied);
  refresh_counts();
  if (stats.deferred) {
    if (!deferred_)
      log(LogLevel::kWarn,
          "[%s] %zu changes wait until the program registers its comparator for their database",
          name_.c_str(), stats.deferred);
    deferred_ = true;
  }
  if (stats.applied) loop_->wake(this);  // they travel on to the other peers
  return true;
}

void EnvRepl::refresh_counts() {
  std::size_t backlog = 0;
  if (store_ && store_->recent_count(&backlog) == 0) backlog_.store(backlog);
  unsigned connected = 0;
  for (Conn *c : conns_)
    if (c->ready()) ++connected;
  peers_connected_.store(connected);
  listen_port_.store(listener_ ? listener_->bound_port() : 0);
}

void EnvRepl::on_tick() {
  ++tick_count_;
  if (tick_count_ % 5 == 0) {
    pump();  // safety net: commits whose wake-up was lost
    if (int rc = store_ ? store_->drop_pending() : 0)
      TRLMDB_LOG(LogLevel::kWarn, "[%s] cannot drop a deleted database yet: %s", name_.c_str(),
                 real().mdb_strerror(rc));
  }
  refresh_counts();
  TRLMDB_repl_status s{};
  fill_status(&s);
  char line[512];
  std::string text;
  std::snprintf(line, sizeof line, "pid %d\nenv %s\npath %s\nnode %08" PRIx32 "\nbacklog %zu\n",
                static_cast<int>(getpid()), name_.c_str(), path_.c_str(), node_, backlog_.load());
  text += line;
  if (cfg_.listen) {
    std::snprintf(line, sizeof line, "listen %s:%u\n", cfg_.listen->host.c_str(), s.listen_port);
    text += line;
  }
  std::snprintf(line, sizeof line, "sent %" PRIu64 "\nreceived %" PRIu64 "\napplied %" PRIu64 "\n",
                bytes_sent_.load(), bytes_received_.load(), applied_.load());
  text += line;
  auto peer_line = [&](const std::string &addr, const char *dir, const char *state, Conn *c,
                       const std::string &note) {
    std::snprintf(line, sizeof line,
                  "peer %s %s state=%s node=%08" PRIx32 " last_contact=%" PRIu64
                  " awaiting_ack=%zu sent=%" PRIu64 " received=%" PRIu64 "%s%s\n",
                  addr.c_str(), dir, state, c ? c->remote_node() : 0, c ? c->last_contact_wall : 0,
                  c ? c->awaiting_entries : 0, c ? c->bytes_sent : 0, c ? c->bytes_received : 0,
                  note.empty() ? "" : " note=", note.c_str());
    text += line;
  };
  for (auto &slot : slots_) {
    Conn *c = slot->conn;
    const char *state = !c           ? (slot->idle_duplicate ? "connected-inbound" : "backoff")
                        : c->ready() ? "connected"
                        : c->state() == Conn::State::kConnecting ? "connecting"
                                                                 : "handshake";
    peer_line(slot->addr.str(), "out", state, c, c && c->ready() ? "" : slot->last_error);
  }
  for (Conn *c : conns_)
    if (!c->slot()) peer_line(c->remote(), "in", c->ready() ? "connected" : "handshake", c, "");
  if (text != status_text_) {
    status_text_ = text;
    write_status_file();
  }
}

void EnvRepl::write_status_file() {
  const std::string tmp = status_path_ + ".tmp";
  FILE *f = std::fopen(tmp.c_str(), "we");
  if (!f) return;
  std::fwrite(status_text_.data(), 1, status_text_.size(), f);
  if (std::fclose(f) == 0) std::rename(tmp.c_str(), status_path_.c_str());
}

void EnvRepl::committed() {
  if (in_forked_child()) return;
  if (holder_) {
    if (Loop *loop = Loop::get()) loop->wake(this);
    return;
  }
  send_wake_datagram();
}

void EnvRepl::send_wake_datagram() {
  if (wake_fd_ < 0) return;
  socklen_t len;
  sockaddr_un sa = wake_sockaddr(wake_addr_, &len);
  const char b = 1;
  // Best effort: a full queue means a wake-up is pending anyway.
  if (sendto(wake_fd_, &b, 1, MSG_DONTWAIT | MSG_NOSIGNAL, reinterpret_cast<sockaddr *>(&sa), len) <
          0 &&
      errno == ECONNREFUSED) {
    // Nobody replicates the environment any more: this process takes over.
    try_promote();
  }
}

void EnvRepl::try_promote() {
  std::lock_guard guard(promote_mu_);
  if (holder_ || flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) return;
  Loop *loop = Loop::get();
  auto store = std::make_unique<Store>(st_);
  uint32_t node = 0;
  if (!loop || store->ensure_ready(&node) != 0 || !announce_presence()) {
    unmark_replicator_present(lock_fd_);
    flock(lock_fd_, LOCK_UN);
    return;
  }
  char pid[32];
  int n = std::snprintf(pid, sizeof pid, "%d\n", static_cast<int>(getpid()));
  if (ftruncate(lock_fd_, 0) == 0 && pwrite(lock_fd_, pid, n, 0) != n) {
  }
  if (wake_fd_ >= 0) {  // the sending socket; the holder binds its own
    unregister_fd(wake_fd_);
    ::close(wake_fd_);
    wake_fd_ = -1;
  }
  store_ = std::move(store);
  node_ = node;
  holder_ = true;
  why_.clear();
  loop->call([this, loop] { start_on_loop(loop); });
  if (holder_) TRLMDB_LOG(LogLevel::kInfo, "[%s] took over replication", name_.c_str());
}

void EnvRepl::comparator_registered() {
  if (!holder_) return;
  Loop *loop = Loop::get();
  if (!loop) return;
  loop->post([this] {
    if (!deferred_ || closing_) return;
    deferred_ = false;
    // Changes were held back for want of the comparator: reconnecting runs
    // reconciliation again, which brings them.
    std::vector<Conn *> conns = conns_;
    for (Conn *c : conns)
      c->close("re-synchronising: a comparator was registered", LogLevel::kInfo);
  });
}

void EnvRepl::work_enter() {
  std::unique_lock lock(mu_);
  cv_.wait(lock, [this] { return !exclusive_; });
  ++running_works_;
}

void EnvRepl::work_leave() {
  std::lock_guard lock(mu_);
  --running_works_;
  cv_.notify_all();
}

int EnvRepl::run_exclusive(const std::function<int()> &fn) {
  Loop *loop = holder_ ? Loop::get() : nullptr;
  if (!loop || stopped_ || loop->on_loop_thread()) return fn();
  int rc = 0;
  // While the loop thread runs this it holds no transaction; thread-pool
  // snapshots are held at their start or waited for.
  loop->call([&] {
    std::unique_lock lock(mu_);
    exclusive_ = true;
    cv_.wait(lock, [this] { return running_works_ == 0; });
    lock.unlock();
    rc = fn();
    lock.lock();
    exclusive_ = false;
    cv_.notify_all();
  });
  return rc;
}

void EnvRepl::fill_status(TRLMDB_repl_status *out) {
  *out = TRLMDB_repl_status{};
  out->peers_configured = static_cast<unsigned>(cfg_.peers.size());
  if (!holder_) return;
  {
    std::lock_guard lock(mu_);
    out->running = stopped_ ? 0 : 1;
  }
  out->listen_port = listen_port_.load();
  out->peers_connected = peers_connected_.load();
  out->backlog = backlog_.load();
  out->bytes_sent = bytes_sent_.load();
  out->bytes_received = bytes_received_.load();
  out->changes_applied = applied_.load();
}

int EnvRepl::sync(unsigned timeout_ms) {
  if (!holder_ || stopped_) return EINVAL;
  MDB_envinfo info;
  int rc = real().mdb_env_info(st_->env(), &info);
  if (rc) return rc;
  const uint64_t target = info.me_last_txnid;
  Loop *loop = Loop::get();
  if (!loop) return EINVAL;
  loop->wake(this);
  std::unique_lock lock(mu_);
  const bool ok = cv_.wait_for(lock, std::chrono::milliseconds(timeout_ms),
                               [&] { return synced_txnid_ >= target || stopped_; });
  return ok && !stopped_ ? 0 : (stopped_ ? EINVAL : ETIMEDOUT);
}

void EnvRepl::stop_on_loop(std::function<void()> done) {
  if (closing_) return;
  closing_ = true;
  on_stopped_ = std::move(done);
  pump();  // ship what the program committed last
  flush_deadline_ = uv_now(loop_->uv()) + std::min<uint32_t>(cfg_.timeout_ms, 2000);
  uv_timer_start(
      &flush_timer_,
      [](uv_timer_t *t) {
        auto *self = static_cast<EnvRepl *>(t->data);
        const bool flushed = self->inflight_.empty() && self->works_ == 0;
        if (flushed || uv_now(self->loop_->uv()) >= self->flush_deadline_) {
          if (self->works_ == 0) self->finish_stop();
        }
      },
      10, 10);
}

void EnvRepl::finish_stop() {
  if (stopped_) return;
  std::vector<Conn *> conns = conns_;
  for (Conn *c : conns) c->close("environment closed", LogLevel::kDebug);
  loop_->remove_env(this);
  if (listener_) loop_->release(listener_);
  listener_ = nullptr;
  auto closed = [](uv_handle_t *h) { static_cast<EnvRepl *>(h->data)->handle_closed(); };
  for (auto &slot : slots_) {
    slot->timer.data = this;
    uv_close(reinterpret_cast<uv_handle_t *>(&slot->timer), closed);
  }
  if (wake_fd_ >= 0) uv_close(reinterpret_cast<uv_handle_t *>(&wake_poll_), closed);
  uv_close(reinterpret_cast<uv_handle_t *>(&tick_), closed);
  uv_close(reinterpret_cast<uv_handle_t *>(&flush_timer_), closed);
  std::remove(status_path_.c_str());
}

void EnvRepl::handle_closed() {
  if (--closing_handles_ > 0) return;
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
    cv_.notify_all();
  }
  if (on_stopped_) on_stopped_();
}

void EnvRepl::close(EnvRepl *r) {
  r->st_->repl.store(nullptr, std::memory_order_release);
  if (r->holder_ && !r->stopped_) {
    Loop *loop = Loop::get();
    if (loop) {
      std::mutex m;
      std::condition_variable cv;
      bool done = false;
      loop->post([&] {
        r->stop_on_loop([&] {
          std::lock_guard lock(m);
          done = true;
          cv.notify_one();
        });
      });
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return done; });
    }
  }
  if (r->holder_ && r->lock_fd_ >= 0) {
    unmark_replicator_present(r->lock_fd_);
    flock(r->lock_fd_, LOCK_UN);
  }
  delete r;
}

}  // namespace trlmdb::repl
