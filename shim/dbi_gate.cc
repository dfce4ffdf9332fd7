#include "dbi_gate.h"

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <vector>

namespace trlmdb::dbi_gate {

std::atomic<int> g_open_count{0};

namespace {
std::mutex g_mu;
std::condition_variable g_cv;
struct Open {
  MDB_env *env;
  MDB_txn *txn;
};
std::vector<Open> *g_txns = new std::vector<Open>;  // never freed: used at exit

bool any_of_env(MDB_env *env) {
  return std::any_of(g_txns->begin(), g_txns->end(), [env](const Open &o) { return o.env == env; });
}
}  // namespace

void opened_in(MDB_env *env, MDB_txn *txn) {
  std::lock_guard lock(g_mu);
  for (const Open &o : *g_txns)
    if (o.txn == txn) return;
  g_txns->push_back(Open{env, txn});
  g_open_count.store(static_cast<int>(g_txns->size()), std::memory_order_relaxed);
}

void ended_slow(MDB_txn *txn) {
  std::lock_guard lock(g_mu);
  auto it =
      std::find_if(g_txns->begin(), g_txns->end(), [txn](const Open &o) { return o.txn == txn; });
  if (it == g_txns->end()) return;
  g_txns->erase(it);
  g_open_count.store(static_cast<int>(g_txns->size()), std::memory_order_relaxed);
  g_cv.notify_all();
}

bool wait_idle(MDB_env *env, std::chrono::milliseconds timeout) {
  std::unique_lock lock(g_mu);
  return g_cv.wait_for(lock, timeout, [env] { return !any_of_env(env); });
}

bool idle(MDB_env *env) {
  std::lock_guard lock(g_mu);
  return !any_of_env(env);
}

}  // namespace trlmdb::dbi_gate
