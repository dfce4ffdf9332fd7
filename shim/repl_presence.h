// Whether a replicator holds an environment, asked without disturbing it.
//
// The replicator is elected by an exclusive flock on its lock file. Asking
// with flock means taking the lock for an instant, which can make a
// replicator that starts at that moment believe another one runs. So the
// holder also keeps a write lock on one byte of the same file (an open file
// description lock, independent of flock), and anyone can ask with
// F_OFD_GETLK, which takes nothing. The lock goes with the holder's file
// description: a killed holder stops counting at once.
#pragma once

#include <string>

namespace trlmdb {

// <env>/<name>, or <env>-<name> for an MDB_NOSUBDIR environment.
std::string env_sibling_path(const std::string &env_path, bool no_subdir, const char *name);

// The replicator's lock file of an environment.
std::string repl_lock_path(const std::string &env_path, bool no_subdir);

// Called by the elected replicator on its lock file (open for writing).
// Returns 0 or an errno value.
int mark_replicator_present(int lock_fd);
void unmark_replicator_present(int lock_fd);

// 1 if a replicator holds the environment whose lock file `lock_fd` is open
// (read-only is enough), 0 if none does, -1 if the question failed (errno).
int replicator_present(int lock_fd);

}  // namespace trlmdb
