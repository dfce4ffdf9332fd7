#include "real_lmdb.h"

#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <mutex>

#ifndef TRLMDB_REAL_LMDB_PATH
#error "TRLMDB_REAL_LMDB_PATH must name the system's liblmdb"
#endif

namespace trlmdb {
namespace detail {

RealLmdb g_real;
bool g_real_ready = false;

namespace {
std::once_flag g_once;

[[noreturn]] void die(const char *what, const char *detail) {
  std::fprintf(stderr, "trlmdb: cannot load the real LMDB (%s): %s\n", what,
               detail ? detail : "unknown error");
  std::abort();
}

void load_once() {
  // An absolute path, never a search: when this library is itself installed
  // as liblmdb.so.0, a search by soname would find ourselves.
  const char *path = real_lmdb_path();
  void *handle = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (!handle) die(path, dlerror());
#define TRLMDB_RESOLVE(name)                                               \
  g_real.name = reinterpret_cast<decltype(&::name)>(dlsym(handle, #name)); \
  if (!g_real.name) die(#name, dlerror());
  TRLMDB_LMDB_FUNCTIONS(TRLMDB_RESOLVE)
#undef TRLMDB_RESOLVE
  std::atomic_thread_fence(std::memory_order_release);
  g_real_ready = true;
}
}  // namespace

void load_real_lmdb() { std::call_once(g_once, load_once); }

// Resolve at load time so the hot path never takes the slow branch; the lazy
// path remains for calls made before constructors run (other constructors).
__attribute__((constructor)) static void load_at_startup() { load_real_lmdb(); }

}  // namespace detail

const char *real_lmdb_path() {
  const char *env = std::getenv("TRLMDB_REAL_LMDB");
  return (env && *env) ? env : TRLMDB_REAL_LMDB_PATH;
}

}  // namespace trlmdb
