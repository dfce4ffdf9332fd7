// The process's one replication loop (DESIGN.md section 3): a libuv loop on
// a thread of its own that owns every socket and timer. Other threads reach
// it only through post()/call(), which go through one uv_async_t.
#pragma once

#include <uv.h>

#include <atomic>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "config.h"

namespace trlmdb::repl {

class EnvRepl;
class Listener;

class Loop {
 public:
  // The loop, started on first use; nullptr in a forked child or once the
  // process is exiting.
  static Loop *get();

  uv_loop_t *uv() { return &loop_; }
  bool on_loop_thread() const { return std::this_thread::get_id() == thread_.get_id(); }

  // Runs fn on the loop thread; post() returns at once, call() when fn has run.
  void post(std::function<void()> fn);
  void call(std::function<void()> fn);
  // Marks env as having new commits to ship; safe from any thread.
  void wake(EnvRepl *env);

  // Loop thread only.
  Listener *listen(const HostPort &addr, std::string *error);
  void release(Listener *l);
  void add_env(EnvRepl *env);
  void remove_env(EnvRepl *env);
  EnvRepl *find_env(const std::string &name) const;

  // Stops every environment's replication (bounded flush) and the thread.
  void shutdown();

 private:
  Loop();
  void run();
  static void on_async(uv_async_t *h);

  uv_loop_t loop_;
  uv_async_t async_;
  std::thread thread_;
  std::mutex mu_;
  std::deque<std::function<void()>> queue_;
  std::vector<EnvRepl *> envs_;
  std::vector<Listener *> listeners_;
  bool stopping_ = false;
};

// File descriptors a forked child must close so it does not keep the
// parent's sockets or locks alive (pthread_atfork child handler).
void register_fd(int fd);
void unregister_fd(int fd);
bool in_forked_child();

}  // namespace trlmdb::repl
