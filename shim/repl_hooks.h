// The shim's calls into the replicator. The shim's core never includes
// libuv (DESIGN.md section 5): the replicator installs these hooks when it is
// linked into the library, and the core calls them if present.
#pragma once

#include <atomic>

namespace trlmdb {

class EnvState;

struct ReplHooks {
  // After a successful mdb_env_open (path and flags as given).
  void (*opened)(EnvState *st, const char *path, unsigned flags);
  // After a top-level write transaction that changed data committed.
  void (*committed)(EnvState *st);
  // The program registered a comparator (mdb_set_compare / mdb_set_dupsort).
  void (*comparator)(EnvState *st);
  // Before the real mdb_env_close: the replicator lets go of the environment.
  void (*closing)(EnvState *st);
  // Runs fn(arg) while the replicator has no transaction open on the
  // environment (mdb_env_set_mapsize remaps it); returns fn's result.
  int (*exclusive)(EnvState *st, int (*fn)(void *), void *arg);
};

void install_repl_hooks(const ReplHooks *hooks);
const ReplHooks *repl_hooks();

}  // namespace trlmdb
