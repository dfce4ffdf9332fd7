#include "env_state.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "real_lmdb.h"
#include "repl_presence.h"

namespace trlmdb {

std::atomic<MDB_dbi> g_max_reserved_dbi{0};
std::mutex g_dbi_open_mu;

EnvState *env_state(MDB_env *env) {
  return env ? static_cast<EnvState *>(real().mdb_env_get_userctx(env)) : nullptr;
}

EnvState *txn_state(MDB_txn *txn) { return txn ? env_state(real().mdb_txn_env(txn)) : nullptr; }

EnvState::~EnvState() {
  if (presence_fd_ >= 0) ::close(presence_fd_);
}

bool EnvState::replicator_absent() {
  if (repl_lock.empty()) return false;
  if (presence_fd_ < 0) {
    presence_fd_ = ::open(repl_lock.c_str(), O_RDONLY | O_CLOEXEC);
    // No lock file: no replicator ever ran here. Any other failure (a
    // directory we may not read): assume one runs, and keep every entry.
    if (presence_fd_ < 0) return errno == ENOENT;
  }
  return replicator_present(presence_fd_) == 0;
}

void EnvState::on_open(unsigned total_dbi_slots) {
  std::lock_guard lock(names_mu_);
  names_ = std::vector<std::atomic<const std::string *>>(total_dbi_slots);
  program_handles_ = std::vector<std::atomic<bool>>(total_dbi_slots);
  opened = true;
}

void EnvState::set_program_handle(MDB_dbi dbi, bool open) {
  if (dbi < program_handles_.size()) program_handles_[dbi].store(open, std::memory_order_release);
}

bool EnvState::program_handle(MDB_dbi dbi) const {
  return dbi < program_handles_.size() && program_handles_[dbi].load(std::memory_order_acquire);
}

bool EnvState::is_reserved_dbi(MDB_dbi dbi) const {
  if (!reserved_ready.load(std::memory_order_acquire)) return false;
  return dbi == reserved.time || dbi == reserved.recent || dbi == reserved.meta;
}

void EnvState::set_db_name(MDB_dbi dbi, std::string_view name) {
  std::lock_guard lock(names_mu_);
  if (dbi >= names_.size()) return;
  const std::string *old = names_[dbi].load(std::memory_order_relaxed);
  if (old && *old == name) return;
  name_store_.push_back(std::make_unique<std::string>(name));
  names_[dbi].store(name_store_.back().get(), std::memory_order_release);
}

const std::string *EnvState::db_name(MDB_dbi dbi) const {
  static const std::string kMain;
  if (dbi == kMainDbi) return &kMain;
  if (dbi >= names_.size()) return nullptr;
  return names_[dbi].load(std::memory_order_acquire);
}

Frame *EnvState::push_frame(MDB_txn *txn) {
  std::lock_guard lock(frames_mu_);
  frames_.push_back(std::make_unique<Frame>());
  frames_.back()->txn = txn;
  top_.store(frames_.back().get(), std::memory_order_release);
  return frames_.back().get();
}

Frame *EnvState::find_frame(MDB_txn *txn, std::size_t *depth) {
  std::lock_guard lock(frames_mu_);
  for (std::size_t i = 0; i < frames_.size(); ++i) {
    if (frames_[i]->txn == txn) {
      *depth = i;
      return frames_[i].get();
    }
  }
  return nullptr;
}

Frame *EnvState::frame_at(std::size_t depth) {
  std::lock_guard lock(frames_mu_);
  return depth < frames_.size() ? frames_[depth].get() : nullptr;
}

std::size_t EnvState::frame_count() {
  std::lock_guard lock(frames_mu_);
  return frames_.size();
}

void EnvState::pop_frames(std::size_t depth) {
  std::lock_guard lock(frames_mu_);
  if (depth < frames_.size()) frames_.resize(depth);
  top_.store(frames_.empty() ? nullptr : frames_.back().get(), std::memory_order_release);
}

void EnvState::note_comparator(MDB_dbi dbi) {
  const std::string *name = db_name(dbi);
  if (!name) return;
  std::lock_guard lock(cmp_mu_);
  for (const std::string &n : cmp_names_)
    if (n == *name) return;
  cmp_names_.push_back(*name);
  cmp_unrecorded_.push_back(*name);
}

bool EnvState::has_comparator(std::string_view name) const {
  std::lock_guard lock(cmp_mu_);
  for (const std::string &n : cmp_names_)
    if (n == name) return true;
  return false;
}

std::vector<std::string> EnvState::take_unrecorded_comparators() {
  std::lock_guard lock(cmp_mu_);
  return std::exchange(cmp_unrecorded_, {});
}

void EnvState::repl_write_wanted(bool wanted) {
  std::lock_guard lock(turn_mu_);
  repl_waiting_.fetch_add(wanted ? 1 : -1, std::memory_order_acq_rel);
  if (!wanted) turn_cv_.notify_all();
}

void EnvState::wait_repl_turn_slow() {
  // Bounded: a replicator stuck behind another process must not stop the
  // program for long.
  std::unique_lock lock(turn_mu_);
  turn_cv_.wait_for(lock, std::chrono::milliseconds(200),
                    [this] { return repl_waiting_.load(std::memory_order_acquire) == 0; });
}

void EnvState::set_last_commit(const Ts &ts) {
  std::lock_guard lock(last_mu_);
  last_commit_ = ts;
}

std::optional<Ts> EnvState::last_commit() const {
  std::lock_guard lock(last_mu_);
  return last_commit_;
}

}  // namespace trlmdb
