#include "loop.h"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "env_repl.h"
#include "listener.h"
#include "log.h"

namespace trlmdb::repl {

namespace {

std::mutex g_mu;
Loop *g_loop = nullptr;
bool g_exiting = false;
std::atomic<bool> g_forked_child{false};

std::mutex g_fds_mu;
std::vector<int> *g_fds = new std::vector<int>;  // never freed: used at exit

void close_fds_in_child() {
  // Only async-signal-safe work here: the child may be a fork of a
  // multi-threaded parent. The parent's locks and sockets stay the parent's.
  g_forked_child.store(true);
  g_loop = nullptr;
  for (int fd : *g_fds) ::close(fd);
}

void at_exit() {
  Loop *loop;
  {
    std::lock_guard lock(g_mu);
    g_exiting = true;
    loop = g_loop;
  }
  if (loop && !g_forked_child.load()) loop->shutdown();
}

}  // namespace

void register_fd(int fd) {
  std::lock_guard lock(g_fds_mu);
  g_fds->push_back(fd);
}

void unregister_fd(int fd) {
  std::lock_guard lock(g_fds_mu);
  g_fds->erase(std::remove(g_fds->begin(), g_fds->end(), fd), g_fds->end());
}

bool in_forked_child() { return g_forked_child.load(std::memory_order_relaxed); }

Loop *Loop::get() {
  std::lock_guard lock(g_mu);
  if (g_exiting || in_forked_child()) return nullptr;
  if (!g_loop) {
    static bool registered = false;
    if (!registered) {
      registered = true;
      std::atexit(at_exit);
      pthread_atfork(nullptr, nullptr, close_fds_in_child);
    }
    g_loop = new Loop();  // never deleted: its thread may outlive static destructors
  }
  return g_loop;
}

Loop::Loop() {
  uv_loop_init(&loop_);
  uv_async_init(&loop_, &async_, on_async);
  async_.data = this;
  // The thread starts with every signal blocked: the host's handlers never
  // run on it, and a write to a reset connection gets EPIPE instead of a
  // SIGPIPE that would kill the host. Threads it starts inherit the mask.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  thread_ = std::thread([this] { run(); });
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void Loop::run() {
  pthread_setname_np(pthread_self(), "trlmdb-repl");
  uv_run(&loop_, UV_RUN_DEFAULT);
}

void Loop::post(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    queue_.push_back(std::move(fn));
  }
  uv_async_send(&async_);
}

void Loop::call(std::function<void()> fn) {
  if (on_loop_thread()) {
    fn();
    return;
  }
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  post([&] {
    fn();
    std::lock_guard lock(m);
    done = true;
    cv.notify_one();
  });
  std::unique_lock lock(m);
  cv.wait(lock, [&] { return done; });
}

void Loop::wake(EnvRepl *env) {
  if (env->dirty.exchange(true, std::memory_order_acq_rel)) return;  // already pending
  uv_async_send(&async_);
}

void Loop::on_async(uv_async_t *h) {
  auto *self = static_cast<Loop *>(h->data);
  std::deque<std::function<void()>> work;
  {
    std::lock_guard lock(self->mu_);
    work.swap(self->queue_);
  }
  for (auto &fn : work) fn();
  // Copy: pump() may remove an environment (a failed write closing it).
  std::vector<EnvRepl *> envs = self->envs_;
  for (EnvRepl *env : envs)
    if (env->dirty.exchange(false, std::memory_order_acq_rel)) env->pump();
}

Listener *Loop::listen(const HostPort &addr, std::string *error) {
  for (Listener *l : listeners_)
    if (l->addr() == addr) {
      ++l->users;
      return l;
    }
  Listener *l = Listener::open(this, addr, error);
  if (l) {
    l->users = 1;
    listeners_.push_back(l);
  }
  return l;
}

void Loop::release(Listener *l) {
  if (--l->users > 0) return;
  listeners_.erase(std::remove(listeners_.begin(), listeners_.end(), l), listeners_.end());
  l->close();
}

void Loop::add_env(EnvRepl *env) { envs_.push_back(env); }

void Loop::remove_env(EnvRepl *env) {
  envs_.erase(std::remove(envs_.begin(), envs_.end(), env), envs_.end());
}

EnvRepl *Loop::find_env(const std::string &name) const {
  for (EnvRepl *e : envs_)
    if (e->name() == name && !e->closing_) return e;
  return nullptr;
}

void Loop::shutdown() {
  // At exit, with environments the program never closed: ship what can be
  // shipped within a bound, then stop the thread before libc tears down.
  auto state = std::make_shared<std::pair<std::mutex, std::condition_variable>>();
  auto finished = std::make_shared<bool>(false);
  post([this, state, finished] {
    std::vector<EnvRepl *> envs = envs_;
    auto remaining = std::make_shared<std::size_t>(envs.size());
    auto stop = [this, state, finished] {
      uv_close(reinterpret_cast<uv_handle_t *>(&async_), nullptr);
      uv_stop(&loop_);
      std::lock_guard lock(state->first);
      *finished = true;
      state->second.notify_all();
    };
    if (envs.empty()) return stop();
    for (EnvRepl *e : envs)
      e->stop_on_loop([remaining, stop] {
        if (--*remaining == 0) stop();
      });
  });
  std::unique_lock lock(state->first);
  if (state->second.wait_for(lock, std::chrono::seconds(3), [&] { return *finished; })) {
    lock.unlock();
    thread_.join();
  } else {
    thread_.detach();  // stuck (a write lock held by the exiting program?): leave it
  }
}

}  // namespace trlmdb::repl
