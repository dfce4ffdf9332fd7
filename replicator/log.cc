#include "log.h"

#include <unistd.h>

#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace trlmdb::repl {

std::atomic<int> g_log_level{static_cast<int>(LogLevel::kWarn)};

void set_log_level_at_least(LogLevel level) {
  // Several environments of one process may ask for different levels; the
  // most verbose one wins so that none of them loses the messages it wanted.
  int want = static_cast<int>(level);
  int cur = g_log_level.load(std::memory_order_relaxed);
  while (cur < want && !g_log_level.compare_exchange_weak(cur, want, std::memory_order_relaxed)) {
  }
}

bool log_enabled(LogLevel level) {
  return static_cast<int>(level) <= g_log_level.load(std::memory_order_relaxed);
}

void log(LogLevel level, const char *fmt, ...) {
  if (!log_enabled(level)) return;
  int saved_errno = errno;  // callers log between a failing call and reading errno

  // Writes of at most PIPE_BUF bytes to a pipe are atomic, so lines from
  // several threads (or processes sharing stderr) never interleave.
  constexpr size_t kMax = 4096;
  char line[kMax];
  const char *word = level == LogLevel::kWarn    ? "warning: "
                     : level == LogLevel::kInfo  ? "info: "
                     : level == LogLevel::kDebug ? "debug: "
                                                 : "";
  int prefix = snprintf(line, kMax, "trlmdb: %s", word);
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line + prefix, kMax - prefix - 1, fmt, ap);
  va_end(ap);
  if (n < 0) n = 0;
  size_t len = prefix + static_cast<size_t>(n);
  if (len > kMax - 2) {
    len = kMax - 2;
    memcpy(line + len - 3, "...", 3);
  }
  // Messages can carry peer-supplied text: keep them to one line each.
  for (size_t i = prefix; i < len; ++i)
    if (static_cast<unsigned char>(line[i]) < 0x20 || line[i] == 0x7f) line[i] = '?';
  line[len++] = '\n';

  const char *p = line;
  while (len > 0) {
    ssize_t w = write(STDERR_FILENO, p, len);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    p += w;
    len -= static_cast<size_t>(w);
  }
  errno = saved_errno;
}

}  // namespace trlmdb::repl
