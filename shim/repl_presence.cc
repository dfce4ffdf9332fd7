#include "repl_presence.h"

#include <fcntl.h>

#include <cerrno>

namespace trlmdb {

namespace {

// Beyond any content the lock file will ever have (it holds a pid).
constexpr off_t kPresenceByte = 1 << 20;

struct flock presence_range(short type) {
  struct flock fl {};
  fl.l_type = type;
  fl.l_whence = SEEK_SET;
  fl.l_start = kPresenceByte;
  fl.l_len = 1;
  return fl;
}

}  // namespace

std::string env_sibling_path(const std::string &env_path, bool no_subdir, const char *name) {
  return no_subdir ? env_path + "-" + name : env_path + "/" + name;
}

std::string repl_lock_path(const std::string &env_path, bool no_subdir) {
  return env_sibling_path(env_path, no_subdir, "trlmdb.lock");
}

int mark_replicator_present(int lock_fd) {
  struct flock fl = presence_range(F_WRLCK);
  return fcntl(lock_fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
}

void unmark_replicator_present(int lock_fd) {
  struct flock fl = presence_range(F_UNLCK);
  fcntl(lock_fd, F_OFD_SETLK, &fl);
}

int replicator_present(int lock_fd) {
  struct flock fl = presence_range(F_WRLCK);
  if (fcntl(lock_fd, F_OFD_GETLK, &fl) != 0) return -1;
  return fl.l_type == F_UNLCK ? 0 : 1;
}

}  // namespace trlmdb
