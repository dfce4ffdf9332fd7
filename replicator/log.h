// The replicator's messages: stderr only (stdout belongs to the host
// program), one line each, prefixed "trlmdb: " and, below error, the level
// ("trlmdb: warning: "); a message about one environment names it itself.
// Level from TRLMDB_LOG; errors are always printed.
#pragma once

#include <atomic>

#include "config.h"

namespace trlmdb::repl {

extern std::atomic<int> g_log_level;  // a LogLevel; the most verbose configured level wins

void set_log_level_at_least(LogLevel level);
bool log_enabled(LogLevel level);
void log(LogLevel level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define TRLMDB_LOG(level, ...)                                                       \
  do {                                                                               \
    if (::trlmdb::repl::log_enabled(level)) ::trlmdb::repl::log(level, __VA_ARGS__); \
  } while (0)

}  // namespace trlmdb::repl
