// The replicator behind the shim's hooks and the trlmdb_repl_* functions.
#include <cerrno>

#include "env_repl.h"
#include "env_state.h"
#include "repl_hooks.h"
#include "replicator.h"

namespace trlmdb::repl {

namespace {

EnvRepl *repl_of(EnvState *st) {
  return st ? static_cast<EnvRepl *>(st->repl.load(std::memory_order_acquire)) : nullptr;
}

void on_opened(EnvState *st, const char *path, unsigned flags) { EnvRepl::open(st, path, flags); }

void on_committed(EnvState *st) {
  if (EnvRepl *r = repl_of(st)) r->committed();
}

void on_comparator(EnvState *st) {
  if (EnvRepl *r = repl_of(st)) r->comparator_registered();
}

void on_closing(EnvState *st) {
  if (EnvRepl *r = repl_of(st)) EnvRepl::close(r);
}

int on_exclusive(EnvState *st, int (*fn)(void *), void *arg) {
  EnvRepl *r = repl_of(st);
  return r ? r->run_exclusive([&] { return fn(arg); }) : fn(arg);
}

const ReplHooks kHooks{on_opened, on_committed, on_comparator, on_closing, on_exclusive};

}  // namespace

void install() { install_repl_hooks(&kHooks); }

int status(MDB_env *env, TRLMDB_repl_status *out) {
  EnvState *st = env_state(env);
  if (!st || !out) return EINVAL;
  *out = TRLMDB_repl_status{};
  if (EnvRepl *r = repl_of(st)) r->fill_status(out);
  return 0;
}

int sync(MDB_env *env, unsigned timeout_ms) {
  EnvRepl *r = repl_of(env_state(env));
  return r ? r->sync(timeout_ms) : EINVAL;
}

bool running(MDB_env *env, std::string *why) {
  EnvState *st = env_state(env);
  EnvRepl *r = repl_of(st);
  if (r && r->holder()) return true;
  if (why)
    *why = r ? r->why_not_running() : "no replication configured (see TRLMDB_LISTEN, TRLMDB_PEERS)";
  return false;
}

}  // namespace trlmdb::repl
